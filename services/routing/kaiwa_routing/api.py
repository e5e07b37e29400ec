"""gRPC servicer: protobuf <-> use cases (convert.py), nothing else. Identity comes from
the interceptor, which also maps the use cases' domain errors (kaiwa_common.errors) to
status codes."""

from __future__ import annotations

from contextlib import aclosing

from kaiwa.routing.v1 import routing_pb2 as pb
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceServicer

from kaiwa_common.auth import current_identity
from kaiwa_common.protobuf import enum_name

from . import agents, logins, members, offers, queue, rules, team, transfers
from .context import Routing
from .convert import (
    agent_login_pb,
    agent_pb,
    assignment_pb,
    department_pb,
    member_pb,
    missed_chat_pb,
    offer_pb,
    queue_position_pb,
    queued_chat_pb,
    rule_of,
    rule_pb,
    team_message_pb,
    transfer_pb,
)


class RoutingApi(RoutingServiceServicer):
    def __init__(self, routing: Routing):
        self.r = routing

    # --- XMPP logins (CMD-02): logins.py ---

    async def CheckUserName(self, request, context):
        name, available, message, reason = await logins.check_user_name(self.r, current_identity(), request.user_name)
        return pb.UserNameCheck(user_name=name, available=available, message=message, reason=reason)

    async def SetUserName(self, request, context):
        return agent_login_pb(await logins.set_user_name(self.r, current_identity(), request.user_name, request.agent_id))

    async def SetAgentPassword(self, request, context):
        return agent_login_pb(await logins.set_password(self.r, current_identity(), request.password, request.agent_id))

    async def GetAgentLogin(self, request, context):
        return agent_login_pb(await logins.get_login(self.r, current_identity(), request.agent_id, request.user_name))

    async def VerifyAgentLogin(self, request, context):
        row = await logins.verify_login(self.r, current_identity().tenant, request.user_name, request.password)
        return agent_login_pb(row)

    # --- departments and agents: agents.py ---

    async def UpsertDepartment(self, request, context):
        strategy = enum_name(pb.Strategy, request.strategy, "strategy", default="ring_all")  # unset: ring all
        row = await agents.upsert_department(
            self.r, current_identity().tenant, request.name, strategy, request.accept_timeout_seconds, request.max_wait_seconds
        )
        return department_pb(row)

    async def ListDepartments(self, request, context):
        rows = await agents.list_departments(self.r, current_identity().tenant)
        return pb.ListDepartmentsResponse(departments=[department_pb(r) for r in rows])

    async def GetDepartment(self, request, context):
        return department_pb(await agents.get_department(self.r, current_identity().tenant, request.department_id))

    async def UpsertAgent(self, request, context):
        row = await agents.upsert_agent(
            self.r, current_identity().tenant, request.email, request.name, list(request.department_ids), request.max_chats
        )
        return agent_pb(row)

    async def GetAgent(self, request, context):
        return agent_pb(await agents.get_agent(self.r, current_identity().tenant, request.agent_id))

    async def ListAgents(self, request, context):
        rows = await agents.list_agents(self.r, current_identity().tenant, request.department_id)
        return pb.ListAgentsResponse(agents=[agent_pb(r) for r in rows])

    async def SetAvailability(self, request, context):
        availability = enum_name(pb.Availability, request.availability, "availability")
        return agent_pb(await agents.set_availability(self.r, current_identity(), availability, request.agent_id))

    # --- offers and assignment: offers.py ---

    async def ListOffers(self, request, context):
        rows = await offers.list_offers(self.r, current_identity())
        return pb.ListOffersResponse(offers=[offer_pb(r) for r in rows])

    async def StreamOffers(self, request, context):
        async with aclosing(offers.offer_updates(self.r, current_identity())) as updates:
            async for offer, withdrawn in updates:
                yield pb.OfferUpdate(offer=offer_pb(offer), withdrawn=withdrawn)

    async def AcceptChat(self, request, context):
        return assignment_pb(await offers.accept_chat(self.r, current_identity(), request.chat_id))

    async def DeclineChat(self, request, context):
        await offers.decline_chat(self.r, current_identity(), request.chat_id, request.reason)
        return pb.DeclineChatResponse()

    async def GetAssignment(self, request, context):
        return assignment_pb(await offers.get_assignment(self.r, current_identity().tenant, request.chat_id))

    async def AssignChat(self, request, context):
        row = await offers.assign_chat(self.r, current_identity(), request.chat_id, request.agent_id, request.agent_email)
        return assignment_pb(row)

    # --- rules: rules.py ---

    async def UpsertRule(self, request, context):
        return rule_pb(await rules.upsert_rule(self.r, current_identity().tenant, rule_of(request), request.request_id))

    async def ListRules(self, request, context):
        kind = enum_name(pb.RuleKind, request.kind, "kind", default="") or None  # unset: every kind
        return pb.ListRulesResponse(rules=[rule_pb(r) for r in await rules.list_rules(self.r, current_identity().tenant, kind)])

    async def DeleteRule(self, request, context):
        await rules.delete_rule(self.r, current_identity().tenant, request.rule_id)
        return pb.DeleteRuleResponse()

    # --- waiting: queue.py ---

    async def GetQueuePosition(self, request, context):
        return queue_position_pb(await queue.queue_position(self.r, current_identity(), request.chat_id))

    async def ListQueue(self, request, context):
        rows = await queue.list_queue(self.r, current_identity().tenant, request.department_id, request.limit)
        return pb.ListQueueResponse(chats=[queued_chat_pb(r) for r in rows])

    async def ListMissedChats(self, request, context):
        rows = await queue.list_missed(self.r, current_identity().tenant, request.department_id, request.limit)
        return pb.ListMissedChatsResponse(chats=[missed_chat_pb(r) for r in rows])

    # --- transfers: transfers.py; invitations: members.py ---

    async def TransferChat(self, request, context):
        row = await transfers.transfer_chat(
            self.r,
            current_identity(),
            request.chat_id,
            request.to_agent_email,
            request.to_department_name,
            request.note,
            request.request_id,
        )
        return transfer_pb(row)

    async def AnswerTransfer(self, request, context):
        row = await transfers.answer_transfer(self.r, current_identity(), request.transfer_id, request.accept, request.reason)
        return transfer_pb(row)

    async def ListTransfers(self, request, context):
        rows = await transfers.list_transfers(self.r, current_identity())
        return pb.ListTransfersResponse(transfers=[transfer_pb(r) for r in rows])

    async def InviteAgent(self, request, context):
        row = await members.invite_agent(
            self.r, current_identity(), request.chat_id, request.agent_email, request.agent_id, request.note
        )
        return member_pb(row, pb.MEMBER_ROLE_PARTICIPANT)

    async def ListMembers(self, request, context):
        owner, participants = await members.list_members(self.r, current_identity(), request.chat_id)
        listed = [member_pb(owner, pb.MEMBER_ROLE_OWNER)] if owner is not None else []
        listed += [member_pb(r, pb.MEMBER_ROLE_PARTICIPANT) for r in participants]
        return pb.ListMembersResponse(members=listed)

    # --- team messaging: team.py ---

    async def SendTeamMessage(self, request, context):
        row = await team.send_team_message(
            self.r, current_identity(), request.to_agent_id, request.to_agent_email, request.text, request.request_id
        )
        return team_message_pb(row)

    async def ListTeamMessages(self, request, context):
        rows = await team.list_team_messages(
            self.r, current_identity(), request.board, request.with_agent_id, request.after_seq, request.limit
        )
        return pb.ListTeamMessagesResponse(messages=[team_message_pb(r) for r in rows])

    async def StreamTeamMessages(self, request, context):
        async with aclosing(team.team_message_stream(self.r, current_identity(), request.after_seq)) as messages:
            async for row in messages:
                yield team_message_pb(row)
