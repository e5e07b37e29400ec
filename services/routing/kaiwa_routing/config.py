"""Settings of the routing service, from environment variables (the only place routing
reads them; the shared ones, database, NATS, ports, are kaiwa_common.config.Settings)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kaiwa_common.config import env_float


@dataclass(frozen=True)
class RoutingSettings:
    # Seconds between sweeps: every replica re-runs a pass for every queue with waiting
    # chats, so a crash between a commit and its pass delays a chat, never loses it.
    sweep_interval: float = field(default_factory=lambda: env_float("KAIWA_ROUTING_SWEEP", 2.0))
    # Seconds between rounds of queue_position_changed (ROUT-04): at most one per chat per round.
    position_interval: float = field(default_factory=lambda: env_float("KAIWA_ROUTING_POSITION_INTERVAL", 1.0))
    # Deadline of crm_bridge's FindRecord when a chat is queued; slower is "no CRM facts" (ROUT-03).
    crm_timeout: float = field(default_factory=lambda: env_float("KAIWA_ROUTING_CRM_TIMEOUT", 1.0))
