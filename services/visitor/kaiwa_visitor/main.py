"""Composition root of the visitor service: `python -m kaiwa_visitor.main`."""

from __future__ import annotations

from pathlib import Path

from kaiwa.visitor.v1 import visitor_pb2_grpc

from kaiwa_common.auth import STAFF
from kaiwa_common.app import ServiceContext, ServiceSpec, run
from kaiwa_common.interceptor import PUBLIC

from .api import VisitorApi
from .config import VisitorSettings


def _add_servicers(server, ctx: ServiceContext) -> None:
    visitor_pb2_grpc.add_VisitorServiceServicer_to_server(VisitorApi(ctx, VisitorSettings()), server)


SPEC = ServiceSpec(
    name="visitor",
    schema="visitor",
    migrations=Path(__file__).resolve().parent.parent / "migrations",
    grpc_services=["kaiwa.visitor.v1.VisitorService"],
    policy={
        "IssueVisitorToken": PUBLIC,  # the widget has no token yet: the widget key is its credential
        "RevokeVisitorSecret": PUBLIC,  # the widget's logout: possession of the secret is the credential
        "RevokeVisitorSessions": {"admin"},
        "CreateWidgetKey": {"admin"},
        "RevokeWidgetKey": {"admin"},
        "TrackPageView": {"visitor", "service"},
        "GetVisitor": STAFF,
    },
    add_servicers=_add_servicers,
)


def main() -> None:
    run(SPEC)


if __name__ == "__main__":
    main()
