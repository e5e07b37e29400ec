"""Routing test kit: call metadata for a tenant's roles, its agents and departments, chats
started on the bus (as the conversation service's relay publishes them: real Event
envelopes on <prefix>.conversation.<type> with Nats-Msg-Id) or through the conversation
service itself, and routing's events read back from the bus."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from grpc.aio import AioRpcError
from kaiwa.conversation.v1 import conversation_pb2 as conv_pb
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.events.v1 import conversation_pb2 as conv
from kaiwa.events.v1.envelope_pb2 import Event
from kaiwa.routing.v1 import routing_pb2 as pb
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

from kaiwa_common.config import Settings
from kaiwa_common.events import make_event, subject
from tests.fixtures import auth, eventually


POLL = 0.025  # seconds between looks while waiting for an effect (tests.fixtures.eventually)


@dataclass
class Events:
    """Routing events of one tenant, as they arrive on the bus."""

    tenant: str
    items: list[Event] = field(default_factory=list)

    def of(self, event_type: str, **match) -> list:
        out = []
        for e in self.items:
            if e.type != event_type:
                continue
            payload = getattr(e, event_type)
            if all(getattr(payload, k) == v for k, v in match.items()):
                out.append(payload)
        return out

    async def wait(self, event_type: str, count: int = 1, **match) -> list:
        def enough():
            found = self.of(event_type, **match)
            return found if len(found) >= count else None

        try:
            return await eventually(enough, f"{count} {event_type} {match}", interval=POLL)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; got {self.of(event_type, **match)}") from None


class Kit:
    def __init__(self, stub: RoutingServiceStub, nc, tenant: str, conversation: ConversationServiceStub | None = None):
        self.stub = stub
        self.conversation = conversation
        self.nc = nc
        self.js = nc.jetstream()
        self.tenant = tenant
        self.prefix = Settings().subject_prefix

    def admin(self):
        return auth(self.tenant, "admin", "admin-1")

    def as_agent(self, agent_id: str):
        return auth(self.tenant, "agent", agent_id)

    def visitor(self, visitor_id: str):
        return auth(self.tenant, "visitor", visitor_id)

    async def department(self, name: str = "Sales", strategy=pb.STRATEGY_RING_ALL, **kw) -> pb.Department:
        return await self.stub.UpsertDepartment(
            pb.UpsertDepartmentRequest(name=name, strategy=strategy, **kw), metadata=self.admin()
        )

    async def agent(
        self, email: str, departments: list[str], max_chats: int = 2, online: bool = True, name: str | None = None
    ) -> pb.Agent:
        agent = await self.stub.UpsertAgent(
            pb.UpsertAgentRequest(
                email=email, name=name or email.split("@")[0].title(), department_ids=departments, max_chats=max_chats
            ),
            metadata=self.admin(),
        )
        if online:
            agent = await self.stub.SetAvailability(
                pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE), metadata=self.as_agent(agent.id)
            )
        return agent

    async def publish(self, payload, tenant: str | None = None) -> Event:
        event = make_event("conversation", tenant or self.tenant, payload)
        await self.js.publish(
            subject(self.prefix, "conversation", event.type), event.SerializeToString(), headers={"Nats-Msg-Id": event.id}
        )
        return event

    async def start_chat(
        self,
        department_id: str = "",
        state: str = "queued",
        visitor_email: str = "",
        visitor_id: str | None = None,
        chat_id: str | None = None,
    ) -> str:
        chat_id = chat_id or str(uuid.uuid4())
        await self.publish(
            conv.ChatStarted(
                chat_id=chat_id,
                channel="CHANNEL_WEB",
                department_id=department_id,
                visitor_id=visitor_id or f"v-{chat_id[:8]}",
                visitor_name="Visitor",
                visitor_email=visitor_email,
                question="Hello?",
                state=state,
            )
        )
        return chat_id

    async def start_chat_in_conversation(self, department_id: str, visitor_id: str = "v-1") -> str:
        """A chat started the way a visitor starts one: StartChat on the conversation
        service, which publishes chat_started for routing."""
        chat = await self.conversation.StartChat(
            conv_pb.StartChatRequest(channel=conv_pb.CHANNEL_WEB, department_id=department_id, question="Hello?"),
            metadata=self.visitor(visitor_id),
        )
        return chat.id

    async def end_chat(self, chat_id: str, agent_id: str = "") -> None:
        await self.publish(conv.ChatEnded(chat_id=chat_id, agent_id=agent_id, reason="agent"))

    async def offers(self, agent_id: str) -> list[str]:
        response = await self.stub.ListOffers(pb.ListOffersRequest(), metadata=self.as_agent(agent_id))
        return [o.chat_id for o in response.offers]

    async def wait_offers(self, agent_id: str, predicate, what: str = "offers") -> list[str]:
        async def offers_as_wanted():
            current = await self.offers(agent_id)
            return [current] if predicate(current) else None  # in a list: no offers at all may be what is wanted

        try:
            return (await eventually(offers_as_wanted, what, interval=POLL))[0]
        except AssertionError as exc:
            raise AssertionError(f"{exc}; agent {agent_id} has {await self.offers(agent_id)}") from None

    async def assignment(self, chat_id: str) -> pb.Assignment:
        return await self.stub.GetAssignment(pb.GetAssignmentRequest(chat_id=chat_id), metadata=self.admin())

    async def wait_state(self, chat_id: str, state, agent_id: str | None = None) -> pb.Assignment:
        last = None

        async def in_state():
            nonlocal last
            try:
                last = await self.assignment(chat_id)
            except AioRpcError:  # not known to routing yet
                return None
            return last if last.state == state and (agent_id is None or last.agent_id == agent_id) else None

        try:
            return await eventually(in_state, f"chat {chat_id} {pb.AssignmentState.Name(state)}", interval=POLL)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; got {last}") from None

    async def wait_agent(self, agent_id: str, active: int) -> pb.Agent:
        agent = None

        async def with_active_chats():
            nonlocal agent
            agent = await self.stub.GetAgent(pb.GetAgentRequest(agent_id=agent_id), metadata=self.admin())
            return agent if agent.active_chats == active else None

        try:
            return await eventually(with_active_chats, f"agent {agent_id} with {active} active chats", interval=POLL)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; got {agent}") from None
