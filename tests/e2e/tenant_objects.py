"""A tenant filled with one real object of every kind the RPCs take ids of, through the
public RPCs of the running suite: departments, agents (one in an open chat, one not),
a widget key, a visitor with a page view, a chat with messages, notes, a canned response,
a rule, a trigger, a block, a CRM record with a note and a task, a help-desk ticket and a
team message."""

from __future__ import annotations

from dataclasses import dataclass, field

from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as crm
from kaiwa.crm_bridge.v1 import desk_pb2 as desk
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub
from kaiwa.routing.v1 import routing_pb2 as rt
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub
from kaiwa.visitor.v1 import visitor_pb2 as vis
from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

from kaiwa_common.auth import bearer
from tests.e2e.suite import Suite
from tests.fixtures import auth, eventually


# Which kind of object a request field of that name names (an id, key, e-mail or name).
FIELD_OBJECT = {
    "chat_id": "chat",
    "visitor_id": "visitor",
    "department_id": "department",
    "agent_id": "agent",
    "to_agent_id": "agent",
    "with_agent_id": "agent",
    "rule_id": "rule",
    "trigger_id": "trigger",
    "block_id": "block",
    "visit_id": "visit",
    "page_view_id": "page_view",
    "record_id": "record",
    "ticket": "ticket",
    "key": "widget_key",
    "widget_key": "widget_key",
    "visitor_secret": "visitor_secret",
    "shortcut": "canned",
    "agent_email": "agent_email",
    "to_agent_email": "agent_email",
    "to_department_name": "department_name",
    "email": "record_email",
}


@dataclass
class Stubs:
    routing: RoutingServiceStub
    conversation: ConversationServiceStub
    visitor: VisitorServiceStub
    crm: CrmBridgeServiceStub

    @classmethod
    def of(cls, suite: Suite) -> Stubs:
        return cls(
            RoutingServiceStub(suite.channel("routing")),
            ConversationServiceStub(suite.channel("conversation")),
            VisitorServiceStub(suite.channel("visitor")),
            CrmBridgeServiceStub(suite.channel("crm_bridge")),
        )


@dataclass
class TenantObjects:
    tenant: str
    admin: tuple
    ids: dict[str, str] = field(default_factory=dict)  # kind -> id (or key, shortcut, email)
    texts: list[str] = field(default_factory=list)  # what its objects say: names, messages, notes
    agent: tuple = ()  # the agent in the chat
    outsider: tuple = ()  # an agent of the tenant who is not in the chat
    visitor: tuple = ()  # the chat's visitor

    def known(self) -> tuple[tuple[str, str], ...]:
        """(request field name, the value naming this tenant's object) for every field name
        FIELD_OBJECT knows, and ("", value) for every id."""
        named = {(name, self.ids[kind]) for name, kind in FIELD_OBJECT.items()}
        return tuple(sorted(named | {("", value) for value in self.ids.values()}))


async def populate(suite: Suite, tenant: str, label: str = "b") -> TenantObjects:
    """Every object kind once, its texts marked with `label` (lists can then be searched)."""
    objects = TenantObjects(tenant, auth(tenant, "admin", f"admin-{label}@example.com"))
    stubs = Stubs.of(suite)
    await _staff(stubs, objects, label)
    await _visitor(stubs, objects, label)
    await _chat(stubs, objects, label)
    await _records(stubs, objects, label)
    return objects


async def _staff(stubs: Stubs, o: TenantObjects, label: str) -> None:
    department = await stubs.routing.UpsertDepartment(rt.UpsertDepartmentRequest(name=f"dept-{label}"), metadata=o.admin)
    agent = await stubs.routing.UpsertAgent(
        rt.UpsertAgentRequest(
            email=f"agent-{label}@example.com", name=f"Agent {label}", department_ids=[department.id], max_chats=3
        ),
        metadata=o.admin,
    )
    outsider = await stubs.routing.UpsertAgent(
        rt.UpsertAgentRequest(email=f"other-{label}@example.com", name=f"Other {label}", max_chats=3), metadata=o.admin
    )
    o.agent, o.outsider = auth(o.tenant, "agent", agent.id), auth(o.tenant, "agent", outsider.id)
    rule = await stubs.routing.UpsertRule(
        rt.Rule(
            kind=rt.RULE_KIND_PRIORITY,
            name=f"rule-{label}",
            order=1,
            conditions=[rt.Condition(field="visitor_type", op=rt.OPERATOR_EQUALS, value="lead")],
        ),
        metadata=o.admin,
    )
    key = await stubs.visitor.CreateWidgetKey(vis.CreateWidgetKeyRequest(label=f"site-{label}"), metadata=o.admin)
    trigger = await stubs.visitor.UpsertTrigger(
        vis.Trigger(name=f"trigger-{label}", enabled=True, page_pattern="*", action=vis.TRIGGER_ACTION_NOTIFY_AGENT),
        metadata=o.admin,
    )
    o.texts += [f"Agent {label}", f"Other {label}", f"rule-{label}", f"site-{label}", f"trigger-{label}"]
    o.ids |= {
        "department": department.id,
        "department_name": department.name,
        "agent": agent.id,
        "agent_email": agent.email,
        "outsider": outsider.id,
        "rule": rule.id,
        "widget_key": key.key,
        "trigger": trigger.id,
    }


async def _visitor(stubs: Stubs, o: TenantObjects, label: str) -> None:
    issued = await stubs.visitor.IssueVisitorToken(vis.IssueVisitorTokenRequest(widget_key=o.ids["widget_key"]))
    o.visitor = bearer(issued.token)
    view = await stubs.visitor.TrackPageView(
        vis.TrackPageViewRequest(url=f"https://{label}.example.com/pricing", title=f"Pricing {label}", user_agent="Mozilla/5.0"),
        metadata=o.visitor,
    )
    block = await stubs.visitor.BlockVisitor(
        vis.BlockVisitorRequest(ip="198.51.100.0/24", reason=f"spam-{label}"), metadata=o.admin
    )
    o.texts += [f"Pricing {label}", f"spam-{label}"]
    o.ids |= {
        "visitor": issued.visitor_id,
        "visitor_secret": issued.visitor_secret,
        "page_view": view.id,
        "visit": view.visit_id,
        "block": block.id,
    }


async def _chat(stubs: Stubs, o: TenantObjects, label: str) -> None:
    await stubs.routing.SetAvailability(rt.SetAvailabilityRequest(availability=rt.AVAILABILITY_ONLINE), metadata=o.agent)
    chat = await stubs.conversation.StartChat(
        conv.StartChatRequest(
            channel=conv.CHANNEL_WEB,
            department_id=o.ids["department"],
            question=f"question-{label}",
            visitor_name=f"Visitor {label}",
            visitor_email=f"visitor-{label}@example.com",
        ),
        metadata=o.visitor,
    )

    async def offered():
        offers = await stubs.routing.ListOffers(rt.ListOffersRequest(), metadata=o.agent)
        return chat.id in [offer.chat_id for offer in offers.offers]

    await eventually(offered, f"tenant {label}'s chat is offered to its agent")
    await stubs.routing.AcceptChat(rt.AcceptChatRequest(chat_id=chat.id), metadata=o.agent)

    async def is_open():
        current = await stubs.conversation.GetChat(conv.GetChatRequest(chat_id=chat.id), metadata=o.agent)
        return current.state == conv.CHAT_STATE_OPEN

    await eventually(is_open, f"tenant {label}'s chat is open")
    await stubs.conversation.SendMessage(conv.SendMessageRequest(chat_id=chat.id, text=f"hello-{label}"), metadata=o.visitor)
    await stubs.conversation.SendMessage(conv.SendMessageRequest(chat_id=chat.id, text=f"reply-{label}"), metadata=o.agent)
    note = await stubs.conversation.AddNote(conv.AddNoteRequest(chat_id=chat.id, text=f"note-{label}"), metadata=o.agent)
    canned = await stubs.conversation.PutCannedResponse(
        conv.PutCannedResponseRequest(shortcut=f"canned-{label}", text=f"canned text {label}"), metadata=o.admin
    )
    o.texts += [
        f"question-{label}",
        f"Visitor {label}",
        f"hello-{label}",
        f"reply-{label}",
        f"note-{label}",
        f"canned text {label}",
    ]
    o.ids |= {"chat": chat.id, "note": note.id, "canned": canned.shortcut, "visitor_email": f"visitor-{label}@example.com"}


async def _records(stubs: Stubs, o: TenantObjects, label: str) -> None:
    record = await stubs.crm.UpsertRecord(
        crm.UpsertRecordRequest(type=crm.RECORD_TYPE_LEAD, email=f"lead-{label}@example.com", name=f"Lead {label}"),
        metadata=o.admin,
    )
    await stubs.crm.AddNote(crm.AddNoteRequest(record_id=record.id, text=f"crm-note-{label}"), metadata=o.admin)
    await stubs.crm.SetDeskDepartment(
        desk.SetDeskDepartmentRequest(department_id=o.ids["department"], conversion_enabled=True), metadata=o.admin
    )
    ticket = await stubs.crm.ConvertChatToTicket(
        desk.ConvertChatToTicketRequest(chat_id=o.ids["chat"], subject=f"ticket-{label}"), metadata=o.agent
    )
    team = await stubs.routing.SendTeamMessage(rt.SendTeamMessageRequest(text=f"team-{label}"), metadata=o.agent)
    o.texts += [f"Lead {label}", f"crm-note-{label}", f"ticket-{label}", f"team-{label}"]
    o.ids |= {
        "record": record.id,
        "record_email": record.email,
        "ticket": ticket.id,
        "ticket_number": str(ticket.number),
        "team_message": team.id,
    }
