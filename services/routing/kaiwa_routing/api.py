"""gRPC servicer: protobuf <-> use cases. Errors are DomainErrors, mapped by the interceptor."""

from __future__ import annotations

import asyncio

from google.protobuf.timestamp_pb2 import Timestamp
from kaiwa.routing.v1 import routing_pb2 as pb
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceServicer

from kaiwa_common.auth import current_identity
from kaiwa_common.errors import InvalidArgument, parse_uuid

from .domain.rules import Condition, Rule
from .handlers import Routing
from .notify import OFFERS, TEAM, offers_key

AVAILABILITY = {pb.AVAILABILITY_ONLINE: "online", pb.AVAILABILITY_AWAY: "away", pb.AVAILABILITY_OFFLINE: "offline"}
AVAILABILITY_PB = {v: k for k, v in AVAILABILITY.items()}
STRATEGY = {pb.STRATEGY_UNSPECIFIED: "ring_all", pb.STRATEGY_RING_ALL: "ring_all", pb.STRATEGY_ROUND_ROBIN: "round_robin",
            pb.STRATEGY_LEAST_LOADED: "least_loaded", pb.STRATEGY_CRM_OWNER: "crm_owner"}
STRATEGY_PB = {v: k for k, v in STRATEGY.items() if k != pb.STRATEGY_UNSPECIFIED}
STATE_PB = {"queued": pb.ASSIGNMENT_STATE_QUEUED, "assigned": pb.ASSIGNMENT_STATE_ASSIGNED,
            "ended": pb.ASSIGNMENT_STATE_ENDED, "missed": pb.ASSIGNMENT_STATE_MISSED, "bot": pb.ASSIGNMENT_STATE_BOT}
RULE_KIND = {pb.RULE_KIND_ASSIGNMENT: "assignment", pb.RULE_KIND_PRIORITY: "priority"}
RULE_KIND_PB = {v: k for k, v in RULE_KIND.items()}
OPERATOR = {pb.OPERATOR_EQUALS: "equals", pb.OPERATOR_NOT_EQUALS: "not_equals", pb.OPERATOR_CONTAINS: "contains",
            pb.OPERATOR_GREATER_THAN: "greater_than", pb.OPERATOR_LESS_THAN: "less_than",
            pb.OPERATOR_AT_LEAST: "at_least", pb.OPERATOR_AT_MOST: "at_most", pb.OPERATOR_IS_SET: "is_set"}
OPERATOR_PB = {v: k for k, v in OPERATOR.items()}
TRANSFER_STATE_PB = {"pending": pb.TRANSFER_STATE_PENDING, "accepted": pb.TRANSFER_STATE_ACCEPTED,
                     "declined": pb.TRANSFER_STATE_DECLINED}
RESYNC_SECONDS = 5.0


def _ts(value) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _s(value) -> str:
    return str(value) if value else ""


def department_pb(row) -> pb.Department:
    return pb.Department(id=str(row["id"]), name=row["name"], strategy=STRATEGY_PB[row["strategy"]],
                         accept_timeout_seconds=row["accept_timeout_seconds"], max_wait_seconds=row["max_wait_seconds"])


def agent_pb(row) -> pb.Agent:
    return pb.Agent(id=str(row["id"]), email=row["email"], name=row["name"],
                    department_ids=[str(d) for d in row["department_ids"]],
                    availability=AVAILABILITY_PB[row["availability"]], max_chats=row["max_chats"],
                    active_chats=row["active_chats"])


def assignment_pb(row) -> pb.Assignment:
    return pb.Assignment(chat_id=str(row["id"]), department_id=_s(row["department_id"]), state=STATE_PB[row["state"]],
                         agent_id=_s(row["agent_id"]), queued_at=_ts(row["queued_at"]),
                         assigned_at=_ts(row["assigned_at"]))


def offer_pb(row) -> pb.Offer:
    return pb.Offer(chat_id=str(row["chat_id"]), department_id=_s(row["department_id"]),
                    offered_at=_ts(row["offered_at"]), visitor_name=row["visitor_name"], question=row["question"])


def rule_pb(rule: Rule) -> pb.Rule:
    return pb.Rule(id=rule.id, kind=RULE_KIND_PB[rule.kind], name=rule.name, order=rule.order,
                   department_id=rule.department_id or "", agent_ids=list(rule.agent_ids),
                   conditions=[pb.Condition(field=c.field, op=OPERATOR_PB[c.op], value=c.value) for c in rule.conditions])


def transfer_pb(row) -> pb.Transfer:
    return pb.Transfer(id=str(row["id"]), chat_id=str(row["chat_id"]), from_agent_id=str(row["from_agent_id"]),
                       to_agent_id=_s(row["to_agent_id"]), to_department_id=_s(row["to_department_id"]),
                       note=row["note"], state=TRANSFER_STATE_PB[row["state"]], decline_reason=row["decline_reason"],
                       answered_by=_s(row["answered_by"]), created_at=_ts(row["created_at"]))


def member_pb(row, role) -> pb.Member:
    return pb.Member(agent_id=str(row["id"]), name=row["name"], email=row["email"], role=role,
                     availability=AVAILABILITY_PB[row["availability"]], online=row["availability"] == "online")


def team_message_pb(row) -> pb.TeamMessage:
    return pb.TeamMessage(id=str(row["id"]), seq=row["seq"], from_agent_id=str(row["from_agent_id"]),
                          to_agent_id=_s(row["to_agent_id"]), text=row["text"], sent_at=_ts(row["sent_at"]),
                          from_name=row["from_name"] or "")


class RoutingApi(RoutingServiceServicer):
    def __init__(self, routing: Routing):
        self.routing = routing

    # --- agents and departments ---

    async def UpsertDepartment(self, request, context):
        if request.strategy not in STRATEGY:
            raise InvalidArgument(f"unknown strategy {request.strategy}")
        row = await self.routing.upsert_department(current_identity().tenant, request.name, STRATEGY[request.strategy],
                                                   request.accept_timeout_seconds, request.max_wait_seconds)
        return department_pb(row)

    async def ListDepartments(self, request, context):
        rows = await self.routing.list_departments(current_identity().tenant)
        return pb.ListDepartmentsResponse(departments=[department_pb(r) for r in rows])

    async def GetDepartment(self, request, context):
        return department_pb(await self.routing.get_department(current_identity().tenant, request.department_id))

    async def UpsertAgent(self, request, context):
        row = await self.routing.upsert_agent(current_identity().tenant, request.email, request.name,
                                              list(request.department_ids), request.max_chats)
        return agent_pb(row)

    async def GetAgent(self, request, context):
        return agent_pb(await self.routing.get_agent(current_identity().tenant, request.agent_id))

    async def ListAgents(self, request, context):
        rows = await self.routing.list_agents(current_identity().tenant, request.department_id)
        return pb.ListAgentsResponse(agents=[agent_pb(r) for r in rows])

    async def SetAvailability(self, request, context):
        availability = AVAILABILITY.get(request.availability, "")
        return agent_pb(await self.routing.set_availability(current_identity(), availability, request.agent_id))

    # --- offers and assignment ---

    async def ListOffers(self, request, context):
        rows = await self.routing.list_offers(current_identity())
        return pb.ListOffersResponse(offers=[offer_pb(r) for r in rows])

    async def StreamOffers(self, request, context):
        identity = current_identity()
        agent_id = await self.routing.my_agent_id(identity)
        notifier = self.routing.notifier
        key = offers_key(identity.tenant, agent_id)
        wake = notifier.subscribe(OFFERS, key)
        known: dict[str, pb.Offer] = {}
        try:
            while True:
                wake.clear()
                current = {str(r["chat_id"]): offer_pb(r) for r in await self.routing.offers_of(identity.tenant, agent_id)}
                for chat_id, offer in current.items():
                    if chat_id not in known:
                        yield pb.OfferUpdate(offer=offer)
                for chat_id, offer in known.items():
                    if chat_id not in current:
                        yield pb.OfferUpdate(offer=offer, withdrawn=True)
                known = current
                try:
                    await asyncio.wait_for(wake.wait(), RESYNC_SECONDS)
                except asyncio.TimeoutError:
                    pass
        finally:
            notifier.unsubscribe(OFFERS, key, wake)

    async def AcceptChat(self, request, context):
        return assignment_pb(await self.routing.accept_chat(current_identity(), request.chat_id))

    async def DeclineChat(self, request, context):
        await self.routing.decline_chat(current_identity(), request.chat_id, request.reason)
        return pb.DeclineChatResponse()

    async def GetAssignment(self, request, context):
        return assignment_pb(await self.routing.get_assignment(current_identity().tenant, request.chat_id))

    async def AssignChat(self, request, context):
        row = await self.routing.assign_chat(current_identity(), request.chat_id, request.agent_id, request.agent_email)
        return assignment_pb(row)

    # --- rules ---

    async def UpsertRule(self, request, context):
        if request.kind not in RULE_KIND:
            raise InvalidArgument("rule kind must be RULE_KIND_ASSIGNMENT or RULE_KIND_PRIORITY")
        conditions = []
        for c in request.conditions:
            if c.op not in OPERATOR:
                raise InvalidArgument(f"condition on {c.field!r} needs an operator")
            conditions.append(Condition(c.field.strip(), OPERATOR[c.op], c.value.strip()))
        rule = Rule(id=parse_uuid(request.id, "rule id") if request.id else "",
                    kind=RULE_KIND[request.kind], name=request.name.strip(), order=request.order,
                    department_id=parse_uuid(request.department_id, "department_id") if request.department_id else None,
                    conditions=tuple(conditions),
                    agent_ids=tuple(sorted({parse_uuid(a, "agent id") for a in request.agent_ids})))
        return rule_pb(await self.routing.upsert_rule(current_identity().tenant, rule, request.request_id))

    async def ListRules(self, request, context):
        kind = RULE_KIND.get(request.kind)
        return pb.ListRulesResponse(rules=[rule_pb(r) for r in await self.routing.list_rules(current_identity().tenant, kind)])

    async def DeleteRule(self, request, context):
        await self.routing.delete_rule(current_identity().tenant, request.rule_id)
        return pb.DeleteRuleResponse()

    # --- queue ---

    async def GetQueuePosition(self, request, context):
        chat, position, wait = await self.routing.queue_position(current_identity(), request.chat_id)
        return pb.QueuePosition(chat_id=str(chat["id"]), position=position, estimated_wait_seconds=wait,
                                state=STATE_PB[chat["state"]])

    async def ListQueue(self, request, context):
        rows = await self.routing.list_queue(current_identity().tenant, request.department_id, request.limit)
        return pb.ListQueueResponse(chats=[
            pb.QueuedChat(chat_id=str(r["id"]), department_id=_s(r["department_id"]), position=r["position"],
                          priority=r["priority"], queued_at=_ts(r["queued_at"])) for r in rows])

    async def ListMissedChats(self, request, context):
        rows = await self.routing.list_missed(current_identity().tenant, request.department_id, request.limit)
        return pb.ListMissedChatsResponse(chats=[
            pb.MissedChat(chat_id=str(r["id"]), department_id=_s(r["department_id"]), reason=r["missed_reason"] or "",
                          waited_seconds=r["waited_seconds"] or 0, missed_at=_ts(r["ended_at"]),
                          visitor_id=r["visitor_id"], visitor_email=r["visitor_email"]) for r in rows])

    # --- transfer and invitation ---

    async def TransferChat(self, request, context):
        row = await self.routing.transfer_chat(current_identity(), request.chat_id, request.to_agent_email,
                                               request.to_department_name, request.note, request.request_id)
        return transfer_pb(row)

    async def AnswerTransfer(self, request, context):
        row = await self.routing.answer_transfer(current_identity(), request.transfer_id, request.accept, request.reason)
        return transfer_pb(row)

    async def ListTransfers(self, request, context):
        rows = await self.routing.list_transfers(current_identity())
        return pb.ListTransfersResponse(transfers=[transfer_pb(r) for r in rows])

    async def InviteAgent(self, request, context):
        row = await self.routing.invite_agent(current_identity(), request.chat_id, request.agent_email,
                                              request.agent_id, request.note)
        return member_pb(row, pb.MEMBER_ROLE_PARTICIPANT)

    async def ListMembers(self, request, context):
        owner, participants = await self.routing.list_members(current_identity(), request.chat_id)
        members = [member_pb(owner, pb.MEMBER_ROLE_OWNER)] if owner is not None else []
        members += [member_pb(r, pb.MEMBER_ROLE_PARTICIPANT) for r in participants]
        return pb.ListMembersResponse(members=members)

    # --- team messaging ---

    async def SendTeamMessage(self, request, context):
        row = await self.routing.send_team_message(current_identity(), request.to_agent_id, request.to_agent_email,
                                                   request.text, request.request_id)
        return team_message_pb(row)

    async def ListTeamMessages(self, request, context):
        rows = await self.routing.list_team_messages(current_identity(), request.board, request.with_agent_id,
                                                     request.after_seq, request.limit)
        return pb.ListTeamMessagesResponse(messages=[team_message_pb(r) for r in rows])

    async def StreamTeamMessages(self, request, context):
        identity = current_identity()
        if request.after_seq < 0:
            raise InvalidArgument("after_seq cannot be negative")
        agent_id = await self.routing.my_agent_id(identity)
        notifier = self.routing.notifier
        wake = notifier.subscribe(TEAM, identity.tenant)
        last = request.after_seq
        try:
            while True:
                wake.clear()
                rows = await self.routing.visible_team_messages(identity.tenant, agent_id, last)
                for row in rows:
                    last = row["seq"]
                    yield team_message_pb(row)
                if len(rows) == 500:
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), RESYNC_SECONDS)
                except asyncio.TimeoutError:
                    pass
        finally:
            notifier.unsubscribe(TEAM, identity.tenant, wake)
