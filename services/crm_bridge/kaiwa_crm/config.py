"""Settings of the CRM bridge, from environment variables (the only place it reads them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kaiwa_common.config import env_float, env_int, env_str

# Development only: a fixed Fernet key so `make run` works out of the box. Production sets
# KAIWA_CRM_ENCRYPTION_KEYS (the service logs a warning when it falls back to this one).
DEV_ENCRYPTION_KEY = "a2Fpd2EtZGV2LWNybS1lbmNyeXB0aW9uLWtleS0wMDA="


@dataclass(frozen=True)
class CrmConfig:
    # Fernet keys (urlsafe base64, 32 bytes), comma-separated: the first encrypts, every
    # one decrypts, so a key can be rotated without losing stored integration keys.
    encryption_keys: tuple[str, ...] = field(
        default_factory=lambda: tuple(k.strip() for k in env_str("KAIWA_CRM_ENCRYPTION_KEYS").split(",") if k.strip())
    )
    # Zoho: where the accounts server and the API are. Unset: Zoho's own, by the data
    # centre of the account. Set (a local stand-in in tests, a proxy): used for every DC.
    zoho_accounts_url: str = field(default_factory=lambda: env_str("KAIWA_CRM_ZOHO_ACCOUNTS_URL"))
    zoho_api_url: str = field(default_factory=lambda: env_str("KAIWA_CRM_ZOHO_API_URL"))
    # One HTTP call to Zoho: connect/read timeout, and attempts within one call (5xx,
    # network errors, short 429 waits) before the write waits for a later try.
    zoho_timeout: float = field(default_factory=lambda: env_float("KAIWA_CRM_ZOHO_TIMEOUT", 5.0))
    zoho_attempts: int = field(default_factory=lambda: env_int("KAIWA_CRM_ZOHO_ATTEMPTS", 3))
    # A 429 asking to wait longer than this is not waited for in the call: the write is
    # retried after the CRM's reset time instead.
    zoho_max_inline_wait: float = field(default_factory=lambda: env_float("KAIWA_CRM_ZOHO_MAX_INLINE_WAIT", 2.0))
    # How long a record read from an external CRM is answered from the cache.
    cache_ttl: float = field(default_factory=lambda: env_float("KAIWA_CRM_CACHE_TTL", 60.0))
    # Queued writes: how often the runner looks for due ones (it is also woken at once),
    # and the longest wait between two tries.
    writes_poll: float = field(default_factory=lambda: env_float("KAIWA_CRM_WRITES_POLL", 1.0))
    writes_max_backoff: float = field(default_factory=lambda: env_float("KAIWA_CRM_WRITES_MAX_BACKOFF", 60.0))
    # gRPC deadline for calls to conversation, routing and visitor.
    peer_timeout: float = field(default_factory=lambda: env_float("KAIWA_CRM_PEER_TIMEOUT", 5.0))
    # DESK-01: where a ticket number in a chat links to, an http(s) URL template ({number}
    # and {id} are filled in), e.g. https://desk.example.jp/tickets/{number}. Empty (the
    # default): the built-in desk has no page to link to, and no link is given.
    ticket_url: str = field(default_factory=lambda: env_str("KAIWA_DESK_TICKET_URL").strip())
    # Where an activity's "link to the log" points ({chat_id}).
    chat_log_url: str = field(
        default_factory=lambda: env_str("KAIWA_CRM_CHAT_LOG_URL", "https://app.kaiwa.local/chats/{chat_id}/transcript")
    )

    def __post_init__(self) -> None:
        if self.ticket_url:
            try:
                example = self.ticket_url.format(number=1, id="00000000-0000-0000-0000-000000000000")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"KAIWA_DESK_TICKET_URL: only {{number}} and {{id}} may be filled in ({exc!r})") from None
            if not re.match(r"^https?://[^\s/?#]+[^\s]*$", example, re.IGNORECASE):
                raise ValueError(f"KAIWA_DESK_TICKET_URL must be an http(s) URL without spaces, not {self.ticket_url!r}")

    def ticket_link(self, number: int, ticket_id: str) -> str:
        """DESK-01: the ticket's page in the desk; "" when none is configured."""
        return self.ticket_url.format(number=number, id=ticket_id) if self.ticket_url else ""

    @property
    def uses_dev_key(self) -> bool:
        return not self.encryption_keys

    @property
    def keys(self) -> tuple[str, ...]:
        return self.encryption_keys or (DEV_ENCRYPTION_KEY,)
