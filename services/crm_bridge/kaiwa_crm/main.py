"""Composition root of the CRM bridge: `python -m kaiwa_crm.main`."""

from __future__ import annotations

import logging
from pathlib import Path

from kaiwa.crm_bridge.v1 import crm_bridge_pb2_grpc

from kaiwa_common.app import ServiceContext, ServiceSpec, run
from kaiwa_common.auth import ADMIN, AGENT, SERVICE, STAFF

from .api import CrmBridgeApi
from .config import CrmConfig
from .consumers import consumers
from .handlers.desk import TICKET_MESSAGE, post_message
from .runtime import Runtime
from .secrets import SecretBox
from .writes import WriteRunner

log = logging.getLogger("kaiwa.crm")

ADMIN_ONLY = {ADMIN}
ADMIN_SERVICE = {ADMIN, SERVICE}
# CRM-01: finer rules (an agent's own CRM user) are checked by the use cases.
POLICY = {
    "FindRecord": STAFF,
    "UpsertRecord": STAFF,
    "GetAttachment": STAFF,
    "GetContext": STAFF,
    "ConnectCrm": ADMIN_ONLY,
    "GetConnection": ADMIN_SERVICE,
    "DisableCrm": ADMIN_ONLY,
    "EnableCrm": ADMIN_ONLY,
    "UpsertCrmUser": ADMIN_ONLY,
    "ListCrmUsers": STAFF,
    "SetIntegrationKey": {ADMIN, AGENT},
    "GetCrmSettings": STAFF,
    "UpdateCrmSettings": ADMIN_ONLY,
    "DefineCustomField": ADMIN_ONLY,
    "ListCustomFields": STAFF,
    "AddRecordFromChat": STAFF,
    "AddNote": STAFF,
    "NotifySales": STAFF,
    "ListNotes": STAFF,
    "UpdateRecordFields": STAFF,
    "ConvertLead": STAFF,
    "AddDeal": STAFF,
    "AddTask": STAFF,
    "ListActivities": STAFF,
    "ListVisits": STAFF,
    "ListDeadLetters": ADMIN_SERVICE,
    "ReplayDeadLetter": ADMIN_ONLY,
    "GetWrite": STAFF,
    "SetDeskDepartment": ADMIN_ONLY,
    "ListDeskDepartments": STAFF,
    "ConvertChatToTicket": STAFF,
    "SearchTickets": STAFF,
    "AssociateChat": STAFF,
    "SetTicketStatus": STAFF,
    "ListRecentTickets": STAFF,
    "GetTicket": STAFF,
}


def make_spec(schema: str = "crm", durable: str = "crm_bridge_conversation") -> ServiceSpec:
    """The service; tests give it a schema and durable consumer names of their own."""
    runtimes: dict[int, Runtime] = {}

    def runtime(ctx: ServiceContext) -> Runtime:
        if id(ctx) not in runtimes:
            config = CrmConfig()
            if config.uses_dev_key:
                log.warning("KAIWA_CRM_ENCRYPTION_KEYS is not set: integration keys use the development key")
            rt = Runtime(ctx, config, SecretBox(config.keys), schema)
            rt.runner = WriteRunner(rt, schema)
            runtimes[id(ctx)] = rt
        return runtimes[id(ctx)]

    def add_servicers(server, ctx: ServiceContext) -> None:
        crm_bridge_pb2_grpc.add_CrmBridgeServiceServicer_to_server(CrmBridgeApi(runtime(ctx)), server)

    return ServiceSpec(
        name="crm_bridge",
        schema=schema,
        migrations=Path(__file__).resolve().parent.parent / "migrations",
        grpc_services=["kaiwa.crm_bridge.v1.CrmBridgeService"],
        policy=POLICY,
        add_servicers=add_servicers,
        consumers=lambda ctx: consumers(runtime(ctx), durable),
        workers=lambda ctx: [runtime(ctx).runner.run],
        timers=lambda ctx: {TICKET_MESSAGE: lambda timer, conn: post_message(runtime(ctx), timer, conn)},
    )


SPEC = make_spec()


def main() -> None:
    run(SPEC)


if __name__ == "__main__":
    main()
