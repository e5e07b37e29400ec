"""PLAT-02: SQL metacharacters and markup in every text field of the main write RPCs are
stored and returned verbatim by the read RPCs (five services as processes), and markup in
messages stays inert text in the transcripts: conversation's print-ready text, the help-desk
ticket made from a message, and the transcript crm_bridge attaches to the CRM record (PDF
or text/plain, never HTML). The web console's rendering of markup is proven by
test_plat04_console_browser.py in a real browser.
"""

from __future__ import annotations

import io
from urllib.parse import quote

import grpc
import pytest
from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as crm
from kaiwa.crm_bridge.v1 import desk_pb2 as desk
from kaiwa.routing.v1 import routing_pb2 as rt
from kaiwa.visitor.v1 import visitor_pb2 as vis
from pypdf import PdfReader

from kaiwa_common.auth import bearer
from tests.e2e.suite import Suite
from tests.e2e.tenant_objects import Stubs, TenantObjects, populate
from tests.fixtures import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOSTILE = [
    "'; DROP TABLE messages; --",
    '" OR 1=1 --',
    "back\\slash",
    "100%_done",
    "$1 $2",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "&amp; &lt;",
]


@pytest.fixture(scope="module")
async def suite():
    async with Suite.start() as running_suite:
        yield running_suite


def _url(value: str) -> str:
    return f"https://shop.example.com/p?q={quote(value)}"


async def _write_everything(stubs: Stubs, o: TenantObjects, i: int, value: str) -> dict[str, list[str]]:
    """Each main write RPC with `value` in its text fields; the texts only a write's answer
    shows, by kind."""
    chat, record = o.ids["chat"], o.ids["record"]
    await stubs.conversation.SendMessage(conv.SendMessageRequest(chat_id=chat, text=f"visitor {value}"), metadata=o.visitor)
    await stubs.conversation.SendMessage(conv.SendMessageRequest(chat_id=chat, text=f"agent {value}"), metadata=o.agent)
    await stubs.conversation.AddNote(conv.AddNoteRequest(chat_id=chat, text=value), metadata=o.agent)
    await stubs.conversation.PutCannedResponse(conv.PutCannedResponseRequest(shortcut=f"inj{i}", text=value), metadata=o.admin)
    await stubs.routing.UpsertDepartment(rt.UpsertDepartmentRequest(name=value), metadata=o.admin)
    await stubs.routing.UpsertAgent(rt.UpsertAgentRequest(email=f"inj{i}@example.com", name=value, max_chats=1), metadata=o.admin)
    condition = rt.Condition(field="lead.Company", op=rt.OPERATOR_EQUALS, value=value)
    rule = rt.Rule(kind=rt.RULE_KIND_PRIORITY, name=value, order=i + 1, conditions=[condition])
    await stubs.routing.UpsertRule(rule, metadata=o.admin)
    trigger = vis.Trigger(name=value, page_pattern="*", action=vis.TRIGGER_ACTION_OPEN_CHAT, message=value)
    await stubs.visitor.UpsertTrigger(trigger, metadata=o.admin)
    await stubs.visitor.TrackPageView(vis.TrackPageViewRequest(url=_url(value), title=value), metadata=o.visitor)
    await stubs.visitor.BlockVisitor(vis.BlockVisitorRequest(ip=f"203.0.113.{i + 1}", reason=value), metadata=o.admin)
    key = await stubs.visitor.CreateWidgetKey(vis.CreateWidgetKeyRequest(label=value), metadata=o.admin)
    await stubs.routing.SendTeamMessage(rt.SendTeamMessageRequest(text=value), metadata=o.agent)
    await stubs.crm.AddNote(crm.AddNoteRequest(record_id=record, text=value), metadata=o.admin)
    await stubs.crm.UpsertRecord(
        crm.UpsertRecordRequest(type=crm.RECORD_TYPE_LEAD, email=f"inj{i}@example.com", name=value), metadata=o.admin
    )
    return {"widget key label": [key.label]} | await _new_visitor_chat(stubs, o, i, value)


async def _new_visitor_chat(stubs: Stubs, o: TenantObjects, i: int, value: str) -> dict[str, list[str]]:
    """A new visitor names itself `value` and starts a chat asking it; read back as staff."""
    issued = await stubs.visitor.IssueVisitorToken(vis.IssueVisitorTokenRequest(widget_key=o.ids["widget_key"]))
    as_visitor = bearer(issued.token)
    identified = vis.IdentifyVisitorRequest(name=value, email=f"visitor{i}@example.com")
    await stubs.visitor.IdentifyVisitor(identified, metadata=as_visitor)
    started = conv.StartChatRequest(
        channel=conv.CHANNEL_WEB, department_id=o.ids["department"], question=value, visitor_name=value
    )
    chat = await stubs.conversation.StartChat(started, metadata=as_visitor)
    shown = await stubs.conversation.GetChat(conv.GetChatRequest(chat_id=chat.id), metadata=o.admin)
    visitor = await stubs.visitor.GetVisitor(vis.GetVisitorRequest(visitor_id=issued.visitor_id), metadata=o.admin)
    return {"chat question": [shown.question], "chat visitor name": [shown.visitor_name], "visitor name": [visitor.name]}


async def _read_everything(stubs: Stubs, o: TenantObjects) -> dict[str, list[str]]:
    """Every text the read RPCs return for the objects written, by kind."""
    chat, record = o.ids["chat"], o.ids["record"]
    messages = await stubs.conversation.ListMessages(conv.ListMessagesRequest(chat_id=chat, page_size=500), metadata=o.agent)
    notes = await stubs.conversation.ListNotes(conv.ListNotesRequest(chat_id=chat), metadata=o.agent)
    canned = await stubs.conversation.ListCannedResponses(conv.ListCannedResponsesRequest(prefix="inj"), metadata=o.agent)
    departments = await stubs.routing.ListDepartments(rt.ListDepartmentsRequest(), metadata=o.admin)
    agents = await stubs.routing.ListAgents(rt.ListAgentsRequest(), metadata=o.admin)
    rules = await stubs.routing.ListRules(rt.ListRulesRequest(), metadata=o.admin)
    triggers = await stubs.visitor.ListTriggers(vis.ListTriggersRequest(), metadata=o.admin)
    visitor = await stubs.visitor.GetVisitor(vis.GetVisitorRequest(visitor_id=o.ids["visitor"]), metadata=o.admin)
    blocks = await stubs.visitor.ListBlocks(vis.ListBlocksRequest(), metadata=o.admin)
    team = await stubs.routing.ListTeamMessages(rt.ListTeamMessagesRequest(board=True), metadata=o.agent)
    crm_notes = await stubs.crm.ListNotes(crm.ListNotesRequest(record_id=record), metadata=o.admin)
    records = [
        await stubs.crm.FindRecord(crm.FindRecordRequest(email=f"inj{i}@example.com"), metadata=o.admin)
        for i in range(len(HOSTILE))
    ]
    return {
        "message": [m.text for m in messages.messages],
        "chat note": [n.text for n in notes.notes],
        "canned response": [c.text for c in canned.responses],
        "department name": [d.name for d in departments.departments],
        "agent name": [a.name for a in agents.agents],
        "rule name": [r.name for r in rules.rules],
        "rule condition": [c.value for r in rules.rules for c in r.conditions],
        "trigger name": [t.name for t in triggers.triggers],
        "trigger message": [t.message for t in triggers.triggers],
        "page title": [p.title for p in visitor.recent_page_views],
        "page url": [p.url for p in visitor.recent_page_views],
        "block reason": [b.reason for b in blocks.blocks],
        "team message": [m.text for m in team.messages],
        "crm note": [n.text for n in crm_notes.notes],
        "record name": [r.name for r in records],
    }


async def test_plat02_sql_metacharacters_and_markup_are_stored_and_returned_verbatim(suite: Suite, tenant):
    o = await populate(suite, tenant, "inj")
    stubs = Stubs.of(suite)
    echoed = [await _write_everything(stubs, o, i, value) for i, value in enumerate(HOSTILE)]
    read = await _read_everything(stubs, o)
    missing = []
    for i, value in enumerate(HOSTILE):
        found = read | echoed[i]
        expected = {kind: value for kind in found} | {"message": f"agent {value}", "page url": _url(value)}
        missing += [(kind, text) for kind, text in expected.items() if text not in found[kind]]
    assert not missing, missing
    assert not suite.error_lines()


async def _transcript_text(stubs: Stubs, o: TenantObjects, attachment) -> str:
    content = await stubs.crm.GetAttachment(crm.GetAttachmentRequest(attachment_id=attachment.id), metadata=o.admin)
    mime = content.attachment.mime_type
    assert "html" not in mime, f"a transcript in {mime} would need escaping"
    if mime.startswith("application/pdf"):
        return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content.content)).pages)
    return content.content.decode()


async def test_plat02_markup_in_messages_stays_inert_text_in_every_transcript(suite: Suite, tenant):
    o = await populate(suite, tenant, "tr")
    stubs = Stubs.of(suite)
    chat = o.ids["chat"]
    sent = {}
    for value in HOSTILE[5:]:
        sent[value] = await stubs.conversation.SendMessage(conv.SendMessageRequest(chat_id=chat, text=value), metadata=o.visitor)
    transcript = await stubs.conversation.GetTranscript(conv.GetTranscriptRequest(chat_id=chat), metadata=o.agent)
    assert all(value in transcript.text for value in sent), transcript.text

    # A help-desk ticket made from one message carries it as its description, verbatim.
    script = HOSTILE[5]
    made = desk.ConvertChatToTicketRequest(chat_id=chat, message_seq=sent[script].seq)
    ticket = await stubs.crm.ConvertChatToTicket(made, metadata=o.agent)
    shown = await stubs.crm.GetTicket(desk.GetTicketRequest(ticket=ticket.id), metadata=o.agent)
    assert shown.description == script

    # The chat ends; crm_bridge attaches its transcript to the visitor's CRM record.
    await stubs.conversation.EndChat(conv.EndChatRequest(chat_id=chat), metadata=o.agent)

    async def attached():
        try:
            record = await stubs.crm.FindRecord(crm.FindRecordRequest(email=o.ids["visitor_email"]), metadata=o.admin)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return next((a for a in record.attachments if a.chat_id == chat), None)

    attachment = await eventually(attached, "the transcript is attached to the visitor's record", timeout=30)
    text = await _transcript_text(stubs, o, attachment)
    flat = " ".join(text.split())  # a PDF's text comes back with its line breaks
    assert all(" ".join(value.split()) in flat for value in sent), text
