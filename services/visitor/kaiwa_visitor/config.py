"""Settings of the visitor service, from environment variables (the only place it reads
any; the shared ones, database, NATS, ports, are kaiwa_common.config.Settings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from kaiwa_common.config import env_float, env_str

from kaiwa_common.addresses import Network, parse_networks


@dataclass(frozen=True)
class VisitorSettings:
    # Lifetime of a visitor token: short, the widget asks for a new one when it expires.
    token_ttl: int = field(default_factory=lambda: int(env_float("KAIWA_VISITOR_TOKEN_TTL", 3600)))
    # A visitor secret (the widget's refresh credential) unused for this long is refused:
    # the widget then starts a new visitor. Every refresh starts the clock again (PLAT-02).
    secret_idle_lifetime: timedelta = field(
        default_factory=lambda: timedelta(seconds=env_float("KAIWA_VISITOR_SECRET_IDLE_TTL", 180 * 86400))
    )
    # A visit ends after this long without a page view (VIS-01); a tenant may set its own
    # (UpdateTrackingSettings).
    visit_timeout: timedelta = field(default_factory=lambda: timedelta(seconds=env_float("KAIWA_VISIT_TIMEOUT", 1800)))
    recent_page_views: int = 20
    # VIS-02: a MaxMind City-format database; empty: the embedded GeoLite2 City (2018).
    geoip_db: str = field(default_factory=lambda: env_str("KAIWA_GEOIP_DB"))
    # Proxies (gateways, load balancers) whose X-Forwarded-For names the visitor's address.
    trusted_proxies: tuple[Network, ...] = field(default_factory=lambda: parse_networks(env_str("KAIWA_TRUSTED_PROXIES")))
    # Deadline of calls to crm_bridge (FindRecord) and routing (ListRules).
    peer_timeout: float = field(default_factory=lambda: env_float("KAIWA_VISITOR_PEER_TIMEOUT", 1.0))
    # How long routing's priority rules are reused before being asked again.
    rules_ttl: float = field(default_factory=lambda: env_float("KAIWA_VISITOR_RULES_TTL", 30.0))
    # CRM facts of identified visitors seen lately are fetched again after this long.
    crm_refresh_after: float = field(default_factory=lambda: env_float("KAIWA_VISITOR_CRM_REFRESH", 600.0))
    crm_refresh_interval: float = field(default_factory=lambda: env_float("KAIWA_VISITOR_CRM_REFRESH_INTERVAL", 5.0))
