"""Composition root of the CRM bridge: `python -m kaiwa_crm.main`."""

from __future__ import annotations

from pathlib import Path

from kaiwa.crm_bridge.v1 import crm_bridge_pb2_grpc

from kaiwa_common.auth import STAFF
from kaiwa_common.app import ServiceContext, ServiceSpec, run

from .api import CrmBridgeApi
from .consumers import consumers


def _add_servicers(server, ctx: ServiceContext) -> None:
    crm_bridge_pb2_grpc.add_CrmBridgeServiceServicer_to_server(CrmBridgeApi(ctx), server)


def make_spec(schema: str = "crm", durable: str = "crm_bridge_chat_ended") -> ServiceSpec:
    """The service; tests give it a schema and a durable consumer name of their own."""
    return ServiceSpec(
        name="crm_bridge",
        schema=schema,
        migrations=Path(__file__).resolve().parent.parent / "migrations",
        grpc_services=["kaiwa.crm_bridge.v1.CrmBridgeService"],
        policy={"FindRecord": STAFF, "UpsertRecord": STAFF, "GetAttachment": STAFF},
        add_servicers=_add_servicers,
        consumers=lambda ctx: consumers(ctx, durable),
    )


SPEC = make_spec()


def main() -> None:
    run(SPEC)


if __name__ == "__main__":
    main()
