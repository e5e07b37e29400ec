"""The visitor's CRM record, from crm_bridge over gRPC, as facts for rules and owner routing.

Routing never stalls on the CRM: a short deadline (RoutingSettings.crm_timeout), and any
failure (crm_bridge down, slow, erroring) means "no CRM facts" — the chat then goes by its
department's strategy.
"""

from __future__ import annotations

import logging

import grpc
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as crm_pb
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub

from kaiwa_common.crm_conditions import facts_from_record

log = logging.getLogger("kaiwa.routing.crm")


async def visitor_facts(ctx, tenant: str, email: str, timeout: float) -> dict | None:
    """Facts of the CRM record for this e-mail; None when unknown to the CRM or unreachable."""
    if not email:
        return None
    stub = CrmBridgeServiceStub(ctx.channel("crm_bridge"))
    try:
        record = await stub.FindRecord(
            crm_pb.FindRecordRequest(email=email), metadata=ctx.service_metadata(tenant), timeout=timeout
        )
    except grpc.aio.AioRpcError as exc:
        # NOT_FOUND: no record; FAILED_PRECONDITION: the tenant has its CRM disabled. Neither
        # is an outage worth a warning per chat.
        if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
            log.warning(
                "crm_bridge unavailable: routing by department strategy",
                extra={"fields": {"tenant": tenant, "code": exc.code().name, "error": exc.details()}},
            )
        return None
    # Not enum_name(): the facts only tell a contact's fields from a lead's, and a record of
    # any other type (unset, or one a newer crm_bridge adds) must still route, as a lead.
    record_type = "contact" if record.type == crm_pb.RECORD_TYPE_CONTACT else "lead"
    return facts_from_record(
        record_type, dict(record.fields), record.owner, [(d.amount, d.open) for d in record.deals], record.visitor_type
    )
