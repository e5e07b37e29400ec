"""The XMPP bridge's settings, from environment variables (the only place it reads any;
Kaiwa's shared ones, service addresses and the JWT keys, are kaiwa_common.config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kaiwa_common.config import env_float, env_int, env_str


@dataclass(frozen=True)
class XmppSettings:
    # The XMPP host agents sign in to ("<portal>|<user name>@<domain>"), e.g. kaiwa.example.com.
    domain: str = field(default_factory=lambda: env_str("KAIWA_XMPP_DOMAIN"))
    # The bridge's component address: visitors, colleagues and the board are contacts there.
    component: str = field(default_factory=lambda: env_str("KAIWA_XMPP_COMPONENT"))
    # The XMPP server's component port (XEP-0114), and the secret shared with the server
    # (the component's, also the one mod_auth_kaiwa presents to the login endpoint).
    server: str = field(default_factory=lambda: env_str("KAIWA_XMPP_SERVER", "127.0.0.1:5347"))
    secret: str = field(default_factory=lambda: env_str("KAIWA_XMPP_SECRET"))
    # Where the login endpoint listens for the XMPP server (loopback by default).
    auth_host: str = field(default_factory=lambda: env_str("KAIWA_XMPP_AUTH_HOST", "127.0.0.1"))
    auth_port: int = field(default_factory=lambda: env_int("KAIWA_XMPP_AUTH_PORT", 5381))
    # The agents' language when their client does not say (xml:lang): ja or en.
    locale: str = field(default_factory=lambda: env_str("KAIWA_XMPP_LOCALE", "ja"))
    # How often transfers waiting for an agent and chats they were added to are looked for.
    poll_seconds: float = field(default_factory=lambda: env_float("KAIWA_XMPP_POLL", 1.0))

    @property
    def configured(self) -> bool:
        return bool(self.domain and self.component and self.secret)

    @property
    def server_address(self) -> tuple[str, int]:
        host, _, port = self.server.rpartition(":")
        return host or "127.0.0.1", int(port)
