"""Composition root of the visitor service: `python -m kaiwa_visitor.main`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kaiwa.visitor.v1 import visitor_pb2_grpc

from kaiwa_common.app import ServiceContext, ServiceSpec, run
from kaiwa_common.auth import ADMIN, SERVICE, STAFF, VISITOR
from kaiwa_common.interceptor import PUBLIC
from kaiwa_common.loops import every

from .api import VisitorApi
from .config import VisitorSettings
from .consumers import conversation_consumer, crm_consumer
from .context import Deps
from .enrichment import Enricher
from .peers import Peers
from .profiles import refresh_crm
from .tracking import TRIGGER_TIMER
from .triggers import timer_handler
from .wakeups import visitor_fanout

TRACKERS = {VISITOR, SERVICE}
POLICY = {
    "IssueVisitorToken": PUBLIC,  # the widget has no token yet: the widget key is its credential
    "RevokeVisitorSecret": PUBLIC,  # the widget's logout: possession of the secret is the credential
    "RevokeVisitorSessions": {ADMIN},
    "CreateWidgetKey": {ADMIN},
    "RevokeWidgetKey": {ADMIN},
    "TrackPageView": TRACKERS,
    "TrackLeave": TRACKERS,
    "TrackEvents": TRACKERS,
    "GetVisitor": STAFF,
    "GetVisit": STAFF,
    "IdentifyVisitor": STAFF | {VISITOR},
    "ListVisits": STAFF,
    "ListOnlineVisitors": STAFF,
    "StreamArrivals": STAFF,
    "BlockVisitor": STAFF,
    "UnblockVisitor": STAFF,
    "ListBlocks": STAFF,
    "UpsertTrigger": {ADMIN},
    "ListTriggers": STAFF,
    "DeleteTrigger": {ADMIN},
    "StreamPrompts": {VISITOR},
    "GetTrackingSettings": STAFF,
    "UpdateTrackingSettings": {ADMIN},
}


def make_spec(schema: str = "visitor") -> ServiceSpec:
    built: dict[int, Deps] = {}

    def deps(ctx: ServiceContext) -> Deps:
        if id(ctx) not in built:
            settings = VisitorSettings()
            built[id(ctx)] = Deps(
                ctx,
                settings,
                Enricher(settings.geoip_db),
                visitor_fanout(ctx.settings.database_url),
                Peers(ctx, settings.peer_timeout, settings.rules_ttl),
            )
        return built[id(ctx)]

    def add_servicers(server, ctx: ServiceContext) -> None:
        visitor_pb2_grpc.add_VisitorServiceServicer_to_server(VisitorApi(deps(ctx)), server)

    def workers(ctx: ServiceContext):
        d = deps(ctx)

        async def crm_refresher(stop: asyncio.Event) -> None:
            await every(d.settings.crm_refresh_interval, stop, lambda: refresh_crm(d), "visitor crm refresh")

        return [d.fanout.run, crm_refresher]

    return ServiceSpec(
        name="visitor",
        schema=schema,
        migrations=Path(__file__).resolve().parent.parent / "migrations",
        grpc_services=["kaiwa.visitor.v1.VisitorService"],
        policy=POLICY,
        add_servicers=add_servicers,
        consumers=lambda ctx: [
            conversation_consumer(deps(ctx), f"{schema}-conversation"),
            crm_consumer(deps(ctx), f"{schema}-crm"),
        ],
        timers=lambda ctx: {TRIGGER_TIMER: timer_handler(deps(ctx))},
        workers=workers,
    )


SPEC = make_spec()


def main() -> None:
    run(SPEC)


if __name__ == "__main__":
    main()
