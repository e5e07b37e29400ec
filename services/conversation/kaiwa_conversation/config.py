"""Settings of the conversation service, from environment variables (the only place it
reads any; the shared ones, database, NATS, ports, are kaiwa_common.config.Settings)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kaiwa_common.config import env_str

from kaiwa_common.addresses import Network, parse_networks

TRANSCRIPT_FONT_ENV = "KAIWA_TRANSCRIPT_FONT"


@dataclass(frozen=True)
class ConversationSettings:
    # A Japanese TrueType font for transcript PDFs (CONV-09); empty: the bundled IPAexGothic.
    transcript_font: str = field(default_factory=lambda: env_str(TRANSCRIPT_FONT_ENV))
    # VIS-05: proxies (gateways, load balancers) whose X-Forwarded-For names the visitor's
    # address; a service token's X-Forwarded-For is believed as it is.
    trusted_proxies: tuple[Network, ...] = field(default_factory=lambda: parse_networks(env_str("KAIWA_TRUSTED_PROXIES")))
