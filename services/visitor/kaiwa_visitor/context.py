"""What the visitor service's use cases share: `Deps` (the service context, settings,
the enricher, the LISTEN fan-out, the CRM and routing clients, the triggers cache) and
`Actor` (who calls). Use cases are plain functions taking them, one module per
capability."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kaiwa_common.app import ServiceContext
from kaiwa_common.auth import current_identity
from kaiwa_common.fanout import Fanout

from . import store
from .config import VisitorSettings
from .domain.triggers import Trigger
from .enrichment import Enricher
from .peers import Peers


class TriggerCache:
    """A tenant's enabled triggers, read again after `ttl` seconds (or at once on this
    replica after a change): page views are matched against them on every batch."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._cached: dict[str, tuple[float, list[Trigger]]] = {}

    async def enabled(self, conn, tenant: str) -> list[Trigger]:
        hit = self._cached.get(tenant)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        triggers = [t for t in await store.list_triggers(conn, tenant) if t.enabled]
        if len(self._cached) > 10_000:
            self._cached.clear()
        self._cached[tenant] = (time.monotonic(), triggers)
        return triggers

    def forget(self, tenant: str) -> None:
        self._cached.pop(tenant, None)


@dataclass
class Deps:
    ctx: ServiceContext
    settings: VisitorSettings
    enricher: Enricher
    fanout: Fanout
    peers: Peers
    triggers: TriggerCache = field(default_factory=lambda: TriggerCache(5.0))
    group: object = None  # tracking's GroupCommit, made on first use


@dataclass(frozen=True)
class Actor:
    tenant: str
    role: str
    sub: str

    @classmethod
    def current(cls) -> Actor:
        identity = current_identity()
        return cls(identity.tenant, identity.role, identity.sub)
