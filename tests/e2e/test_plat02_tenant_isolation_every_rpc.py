"""PLAT-02: tenant isolation on every RPC, against the five services as processes.

Tenant B gets one real object of every kind (tenant_objects.py). Then every RPC that
takes an id (a `*_id` field, or a key, shortcut, ticket, e-mail or name that finds an
object) is called by tenant A's admin and agent with B's ids in all of them: the answer
is NOT_FOUND or PERMISSION_DENIED (INVALID_ARGUMENT or FAILED_PRECONDITION where the id
is refused before any lookup), or, for the RPCs in REVIEWED_OK, an answer with nothing of
B's in it. Every List*/Search*/Stream* RPC called by A shows nothing of B's. B's rows in
every service's database are the same afterwards. A coverage table is printed.
"""

from __future__ import annotations

import asyncpg
import grpc
import pytest
from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor as F
from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as crm
from kaiwa.routing.v1 import routing_pb2 as rt
from kaiwa.visitor.v1 import visitor_pb2 as vis

from kaiwa_common.auth import ADMIN, AGENT, SERVICE
from kaiwa_common.interceptor import PUBLIC
from tests.e2e.contracts import allowed_roles, call, methods, request_class
from tests.e2e.suite import Suite
from tests.e2e.tenant_objects import FIELD_OBJECT, Stubs, TenantObjects, populate
from tests.e2e.tenant_rows import rows_of, settled_rows_of
from tests.fixtures import auth, eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

REFUSED = {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED}
REFUSED_BEFORE_LOOKUP = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}
UPSERT_IDS = {"kaiwa.routing.v1.Rule": "rule", "kaiwa.visitor.v1.Trigger": "trigger"}  # `id` of an upserted object
CREATING = ("Put", "Upsert", "Define", "Create")
TEXT_FIELDS = {"text", "note", "reason", "name", "subject", "summary", "message", "label", "title", "query"}
# Reviewed: RPCs that may answer OK to tenant A's call naming B's objects, and why (the
# answer is still checked to hold nothing of B's).
REVIEWED_OK = {
    "ListAgents": "a filter: A's agents in B's department, none",
    "ListQueue": "a filter: A's queue in B's department, empty",
    "ListMissedChats": "a filter: A's missed chats in B's department, none",
    "ListVisitorChats": "a filter: A's chats of B's visitor, none",
    "ListAgentChats": "a filter: A's chats of B's agent, none",
    "ListNotes": "a filter: A's notes on B's chat or visitor, none",
    "ListTeamMessages": "a filter: A's messages with B's agent, none",
    "FindRecord": "by e-mail: A's records with B's address, none (NOT_FOUND when the CRM is A's built-in one)",
    "GetContext": "by e-mail: A's CRM context of that address, empty",
    "ListRecentTickets": "by e-mail or chat: A's tickets, none",
    "UpsertRecord": "by e-mail: creates A's own record with that address; B's is untouched (rows checked)",
    "CheckUserName": "user names are unique across tenants (a login), so taken by B says only 'taken'",
}


@pytest.fixture(scope="module")
async def suite():
    # The visitor service's CRM refresher (every 5 s by default) checks B's newly identified
    # visitor on its own; run often, and waited for before B's rows are read the first time.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAIWA_VISITOR_CRM_REFRESH_INTERVAL", "0.2")
        async with Suite.start() as running_suite:
            yield running_suite


def _id_fields(method) -> dict[str, str]:
    """Request field -> the kind of B's object it names. A call that creates or replaces
    gets B's ids only, never B's names (it would make A an object of the same name)."""
    names = {f.name for f in method.input_type.fields if f.name in FIELD_OBJECT and not f.is_repeated}
    if method.name.startswith(CREATING):
        names = {name for name in names if name.endswith("_id")}
    found = {name: FIELD_OBJECT[name] for name in names}
    if method.input_type.full_name in UPSERT_IDS:
        found["id"] = UPSERT_IDS[method.input_type.full_name]
    return found


def _explicit(b: TenantObjects, a: TenantObjects) -> dict[str, object]:
    """Reviewed requests for the RPCs whose other fields must be right for the id to be
    looked up at all (the generic request would be refused for them first)."""
    chat, agent = b.ids["chat"], b.ids["agent"]
    condition = rt.Condition(field="visitor_type", op=rt.OPERATOR_EQUALS, value="lead")
    return {
        "TransferChat": rt.TransferChatRequest(chat_id=chat, to_agent_email=a.ids["agent_email"]),
        "AssignChat": rt.AssignChatRequest(chat_id=chat, agent_id=a.ids["agent"]),
        "InviteAgent": rt.InviteAgentRequest(chat_id=chat, agent_id=a.ids["outsider"]),
        "SetAvailability": rt.SetAvailabilityRequest(agent_id=agent, availability=rt.AVAILABILITY_ONLINE),
        "SendTeamMessage": rt.SendTeamMessageRequest(to_agent_id=agent, text="probe"),
        "UpsertRule": rt.Rule(id=b.ids["rule"], kind=rt.RULE_KIND_PRIORITY, name="probe", order=1, conditions=[condition]),
        "UpsertTrigger": vis.Trigger(id=b.ids["trigger"], name="probe", page_pattern="*", action=vis.TRIGGER_ACTION_NOTIFY_AGENT),
        "RunCommand": conv.RunCommandRequest(chat_id=chat, text="#info"),
        "StartChat": conv.StartChatRequest(
            channel=conv.CHANNEL_WEB, department_id=b.ids["department"], visitor_id=b.ids["visitor"], question="probe"
        ),
        "PostSystemEvent": conv.PostSystemEventRequest(chat_id=chat, type="converted_to_ticket", params={"ticket_number": "1"}),
        "UpdateMessageStatus": conv.UpdateMessageStatusRequest(chat_id=chat, seq=1, status=conv.MESSAGE_STATUS_READ),
        "AddTask": crm.AddTaskRequest(record_id=b.ids["record"], subject="probe", due_date="2030-01-01"),
    }


def _request(method, id_fields: dict[str, str], b: TenantObjects, explicit: dict[str, object]):
    """B's ids in every id field; short text in the fields that need some."""
    if method.name in explicit:
        return explicit[method.name]
    request = request_class(method)()
    for field in method.input_type.fields:
        if field.name in id_fields:
            setattr(request, field.name, b.ids[id_fields[field.name]])
        elif field.name in TEXT_FIELDS and field.type == F.TYPE_STRING and not field.is_repeated:
            setattr(request, field.name, "probe")
    return request


def _callers(service: str, method, a: TenantObjects) -> list[tuple]:
    """A's admin and agent; a service of A's for the RPCs only services (and visitors) call."""
    allowed = allowed_roles(service, method)
    staff = [metadata for role, metadata in ((ADMIN, a.admin), (AGENT, a.agent)) if role in allowed]
    return staff or ([auth(a.tenant, SERVICE, "isolation")] if SERVICE in allowed else [])


async def _crm_checked(suite: Suite, tenant: str) -> bool:
    """The refresher stamps an identified visitor once on its own; B's rows are read after."""
    conn = await asyncpg.connect(suite.env["KAIWA_DATABASE_URL"])
    try:
        unchecked = "SELECT count(*) FROM visitor.visitors WHERE tenant = $1 AND email <> '' AND crm_checked_at IS NULL"
        return await conn.fetchval(unchecked, tenant) == 0
    finally:
        await conn.close()


def _leaks(reply, markers: list[str]) -> list[str]:
    shown = text_format.MessageToString(reply) if reply is not None else ""
    return [m for m in markers if m in shown]


async def test_plat02_tenant_a_never_reaches_tenant_b_through_any_rpc(suite: Suite):
    a = await populate(suite, "t-tenant-a", "tenanta")
    b = await populate(suite, "t-tenant-b", "tenantb")
    explicit = _explicit(b, a)
    markers = b.texts  # what B's objects say: a reply showing any of B's rows shows some
    await eventually(lambda: _crm_checked(suite, b.tenant), "the CRM refresher has checked B's identified visitor")
    rows_before = await settled_rows_of(suite, b.tenant)
    coverage: dict[str, str] = {}
    wrong = []
    for service, descriptor, method in methods():
        id_fields = _id_fields(method)
        listing = method.name.startswith(("List", "Search", "Stream"))
        if allowed_roles(service, method) == PUBLIC:  # no caller: B's own key or secret is the credential
            continue
        if not id_fields and not listing:
            continue
        request = _request(method, id_fields, b, explicit)
        for metadata in _callers(service, method, a):
            reply, err = await call(suite.channel(service), descriptor, method, request, metadata, stream_wait=0.3)
            code = err.code() if err is not None else grpc.StatusCode.OK
            if leaked := _leaks(reply, markers):
                wrong.append((method.full_name, "shows B's", leaked))
            elif id_fields and code not in REFUSED | REFUSED_BEFORE_LOOKUP and method.name not in REVIEWED_OK:
                wrong.append((method.full_name, code.name, err.details() if err else "OK"))
            kind = "reviewed request" if method.name in explicit else "B's ids" if id_fields else "list"
            coverage[f"{service}.{method.name}"] = f"{kind}: {code.name}"
    _print_coverage(coverage)
    assert not wrong, "\n".join(map(str, wrong))
    await _page_view_under_b_visitor_id(suite, a, b)
    rows_after = await rows_of(suite, b.tenant)
    changed = {
        t: (sorted(set(rows_before.get(t, [])) - set(rows)), sorted(set(rows) - set(rows_before.get(t, []))))
        for t, rows in rows_after.items()
        if rows != rows_before.get(t)
    }
    assert not changed, f"tenant B's rows changed (before, after): {changed}"


async def _page_view_under_b_visitor_id(suite: Suite, a: TenantObjects, b: TenantObjects) -> None:
    """A service of A reporting a page view for B's visitor id makes a visitor of A's own
    with that id (visitor ids are per tenant: services bring visitors of their channels);
    B's visitor is untouched (B's rows are compared afterwards). Last, since from then on
    A has a visitor with that id."""
    stub = Stubs.of(suite).visitor
    view = vis.TrackPageViewRequest(visitor_id=b.ids["visitor"], url="https://probe.example.com/")
    await stub.TrackPageView(view, metadata=auth(a.tenant, SERVICE, "isolation"))
    mine = await stub.GetVisitor(vis.GetVisitorRequest(visitor_id=b.ids["visitor"]), metadata=a.admin)
    assert not _leaks(mine, b.texts) and mine.page_view_count == 1


def _print_coverage(coverage: dict[str, str]) -> None:
    total = len(list(methods()))
    lines = [f"\ntenant isolation: {len(coverage)} of {total} RPCs called with B's ids or listed by A"]
    lines += [f"  {rpc:<45} {outcome}" for rpc, outcome in sorted(coverage.items())]
    others = sorted(f"{s}.{m.name}" for s, _, m in methods() if f"{s}.{m.name}" not in coverage)
    lines.append(f"  public, or neither by id nor a list (the token's tenant only): {', '.join(others)}")
    print("\n".join(lines))
