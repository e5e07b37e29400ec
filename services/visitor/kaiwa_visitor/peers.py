"""What the visitor service asks other services over gRPC, with a service token of the
tenant and a short deadline; neither ever stalls tracking or a list:

- crm_bridge `FindRecord`: the CRM record of an e-mail, as facts for priority rules and
  triggers, the visitor type and the CRM link. NOT_FOUND: no record. Down or slow:
  `CrmUnavailable` (the caller keeps what it had and tries again later).
- routing `ListRules` (priority): the tenant's visitor-prioritisation rules, cached for
  `rules_ttl`; routing away: the last rules known (or none) until it answers again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import grpc
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as crm_pb
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub
from kaiwa.routing.v1 import routing_pb2 as rpb
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

from kaiwa_common.protobuf import enum_name

from kaiwa_common.crm_conditions import Condition, facts_from_record

from .domain.priority import PriorityRule

log = logging.getLogger("kaiwa.visitor.peers")


class CrmUnavailable(Exception):
    pass


@dataclass(frozen=True)
class CrmRecord:
    record_id: str
    record_type: str  # lead, contact
    owner: str
    visitor_type: str
    facts: dict


def condition_of(c) -> Condition:
    return Condition(c.field, enum_name(rpb.Operator, c.op, "op", default=""), c.value)


class Peers:
    def __init__(self, ctx, crm_timeout: float, rules_ttl: float):
        self.ctx = ctx
        self.crm_timeout = crm_timeout
        self.rules_ttl = rules_ttl
        self._rules: dict[str, tuple[float, list[PriorityRule]]] = {}

    async def crm_record(self, tenant: str, email: str) -> CrmRecord | None:
        stub = CrmBridgeServiceStub(self.ctx.channel("crm_bridge"))
        try:
            r = await stub.FindRecord(
                crm_pb.FindRecordRequest(email=email), metadata=self.ctx.service_metadata(tenant), timeout=self.crm_timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            log.warning("crm_bridge did not answer", extra={"fields": {"tenant": tenant, "code": exc.code().name}})
            raise CrmUnavailable(exc.code().name) from None
        record_type = "contact" if r.type == crm_pb.RECORD_TYPE_CONTACT else "lead"
        visitor_type = r.visitor_type if r.visitor_type in ("customer", "deal", "lead", "contact") else record_type
        facts = facts_from_record(record_type, dict(r.fields), r.owner, [(d.amount, d.open) for d in r.deals], visitor_type)
        return CrmRecord(r.id, record_type, r.owner.strip().lower(), visitor_type, facts)

    async def priority_rules(self, tenant: str) -> list[PriorityRule]:
        hit = self._rules.get(tenant)
        if hit is not None and time.monotonic() - hit[0] < self.rules_ttl:
            return hit[1]
        stub = RoutingServiceStub(self.ctx.channel("routing"))
        try:
            reply = await stub.ListRules(
                rpb.ListRulesRequest(kind=rpb.RULE_KIND_PRIORITY),
                metadata=self.ctx.service_metadata(tenant),
                timeout=self.crm_timeout,
            )
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "routing did not answer: visits ordered by the last priority rules known",
                extra={"fields": {"tenant": tenant, "code": exc.code().name}},
            )
            rules = hit[1] if hit else []
            self._rules[tenant] = (time.monotonic(), rules)  # not asked again before rules_ttl
            return rules
        rules = [
            PriorityRule(r.id, r.name, r.order, tuple(condition_of(c) for c in r.conditions))
            for r in reply.rules
            if r.kind == rpb.RULE_KIND_PRIORITY and not r.department_id
        ]
        if len(self._rules) > 10_000:
            self._rules.clear()
        self._rules[tenant] = (time.monotonic(), rules)
        return rules
