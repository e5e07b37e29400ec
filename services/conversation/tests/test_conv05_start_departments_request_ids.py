"""CONV-05: StartChat takes only the tenant's own departments (asked of the real routing
service beside conversation), fails UNAVAILABLE without creating anything when routing
is down or slow, and is idempotent with request_id; so are AddNote, PostSystemEvent and
ResendMessage, which create something without a natural key."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import grpc
import pytest
from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.routing.v1 import routing_pb2 as rpb

from kaiwa_common.devservers import free_port
from kaiwa_conversation.main import make_spec
from services.conversation.tests.helpers import COUNTDOWN_SCALE, new_prefix, service
from tests.fixtures import auth, channel_to, eventually, status_of

AGENT = "agent-1"


def start(conv, tenant, visitor="v-1", stub=None, **fields):
    fields.setdefault("channel", pb.CHANNEL_WEB)
    return (stub or conv.stub).StartChat(pb.StartChatRequest(**fields), metadata=auth(tenant, "visitor", visitor))


async def chats_of(conv, tenant, visitor) -> list[str]:
    reply = await conv.stub.ListVisitorChats(
        pb.ListVisitorChatsRequest(visitor_id=visitor), metadata=auth(tenant, "admin", "root")
    )
    return [h.chat.id for h in reply.chats]


@contextlib.asynccontextmanager
async def silent_server():
    """A TCP port that accepts connections and never answers (a hung routing)."""
    writers = set()

    async def hold(reader, writer):
        writers.add(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in writers:  # the handlers read EOF and end by themselves
            writer.close()
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def replica_reaching_routing_at(conv, address: str):
    """A second conversation replica on the same database whose routing is at `address`."""
    schema = conv.runner.schema
    async with service(
        make_spec(schema=schema, countdown_scale=COUNTDOWN_SCALE), schema, new_prefix(), peers={"routing": address}
    ) as runner:
        async with channel_to(runner) as channel:
            yield ConversationServiceStub(channel)


async def test_conv05_start_chat_in_one_of_the_tenants_departments(conv, tenant):
    sales = await conv.department(tenant)
    chat = await start(conv, tenant, department_id=sales.upper())  # any spelling of the UUID
    assert chat.state == pb.CHAT_STATE_QUEUED and chat.department_id == sales
    started = await eventually(lambda: conv.events(tenant, "chat_started", chat.id), "chat_started")
    assert started[0].chat_started.department_id == sales
    await conv.routing_knows(tenant, chat.id)
    assignment = await conv.routing_stub.GetAssignment(
        rpb.GetAssignmentRequest(chat_id=chat.id), metadata=auth(tenant, "admin", "root")
    )
    assert (assignment.department_id, assignment.state) == (sales, rpb.ASSIGNMENT_STATE_QUEUED)


async def test_conv05_start_chat_refuses_departments_that_are_not_the_tenants(conv, tenant):
    others = await conv.department(f"other-{tenant}")
    for department, code in (
        ("sales", grpc.StatusCode.INVALID_ARGUMENT),
        ("12345", grpc.StatusCode.INVALID_ARGUMENT),
        (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
        (others, grpc.StatusCode.NOT_FOUND),
    ):
        assert await status_of(start(conv, tenant, department_id=department)) == code, department
    assert await status_of(start(conv, tenant, bot_id="faq", department_id=str(uuid.uuid4()))) == grpc.StatusCode.NOT_FOUND, (
        "a bot chat's department is checked the same"
    )
    assert await chats_of(conv, tenant, "v-1") == []
    await asyncio.sleep(0.3)
    assert await conv.events(tenant, "chat_started") == []


async def test_conv05_start_chat_without_department_is_routed_to_the_whole_tenant(conv, tenant):
    chat = await start(conv, tenant, question="hello")
    assert chat.state == pb.CHAT_STATE_QUEUED and chat.department_id == ""
    await conv.routing_knows(tenant, chat.id)


@pytest.mark.parametrize("routing", ["down", "hung"])
async def test_conv05_start_chat_unavailable_while_routing_is_down_or_slow(conv, tenant, routing):
    async with contextlib.AsyncExitStack() as stack:
        address = f"127.0.0.1:{free_port()}" if routing == "down" else await stack.enter_async_context(silent_server())
        stub = await stack.enter_async_context(replica_reaching_routing_at(conv, address))
        sales = await conv.department(tenant)
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await start(conv, tenant, stub=stub, department_id=sales)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "retry" in err.value.details()
        assert time.monotonic() - began < 3, "about a second at most"
        assert await chats_of(conv, tenant, "v-1") == []
        # A chat with no department needs no answer from routing.
        assert (await start(conv, tenant, stub=stub)).state == pb.CHAT_STATE_QUEUED


async def test_conv05_start_chat_request_id_returns_the_chat_the_first_call_created(conv, tenant):
    sales = await conv.department(tenant)
    first = await start(conv, tenant, department_id=sales, question="hi", request_id="req-1")
    again = await start(conv, tenant, department_id=sales, question="hi", request_id="req-1")
    together = await asyncio.gather(*(start(conv, tenant, department_id=sales, request_id="req-2") for _ in range(5)))
    assert again.id == first.id and len({c.id for c in together}) == 1
    assert (
        await status_of(start(conv, tenant, department_id=sales, question="other", request_id="req-1"))
        == grpc.StatusCode.INVALID_ARGUMENT
    ), "one request id never stands for two requests"
    assert await status_of(start(conv, tenant, request_id="x" * 129)) == grpc.StatusCode.INVALID_ARGUMENT
    someone_else = await start(conv, tenant, "v-2", department_id=sales, question="hi", request_id="req-1")
    assert someone_else.id != first.id, "request ids are per caller"
    assert sorted(await chats_of(conv, tenant, "v-1")) == sorted({first.id, together[0].id})
    await asyncio.sleep(0.3)
    started = await conv.events(tenant, "chat_started")
    assert sorted(e.chat_started.chat_id for e in started) == sorted([first.id, together[0].id, someone_else.id])
    # The retry is answered from conversation's own records: routing may be away by then.
    async with replica_reaching_routing_at(conv, f"127.0.0.1:{free_port()}") as stub:
        retried = await start(conv, tenant, stub=stub, department_id=sales, question="hi", request_id="req-1")
        assert retried.id == first.id
        assert (
            await status_of(start(conv, tenant, stub=stub, department_id=sales, request_id="req-3"))
            == grpc.StatusCode.UNAVAILABLE
        )


async def test_conv07_add_note_request_id_adds_the_note_once(conv, tenant):
    chat = await conv.open_chat(tenant)
    agent = auth(tenant, "agent", AGENT)
    request = pb.AddNoteRequest(chat_id=chat.id, text="VIP", request_id="n-1")
    first, again = [await conv.stub.AddNote(request, metadata=agent) for _ in range(2)]
    assert again.id == first.id and again.created_at == first.created_at
    for_visitor = pb.AddNoteRequest(visitor_id=chat.visitor_id, text="VIP", request_id="n-1")
    assert await status_of(conv.stub.AddNote(for_visitor, metadata=agent)) == grpc.StatusCode.INVALID_ARGUMENT
    assert (await conv.stub.AddNote(for_visitor, metadata=auth(tenant, "agent", "agent-2"))).id != first.id
    notes = await conv.stub.ListNotes(pb.ListNotesRequest(chat_id=chat.id), metadata=agent)
    assert [n.id for n in notes.notes] == [first.id]


async def test_conv03_post_system_event_request_id_posts_once(conv, tenant):
    chat = await conv.open_chat(tenant)
    service_md = auth(tenant, "service", "desk")
    request = pb.PostSystemEventRequest(
        chat_id=chat.id, type="converted_to_ticket", params={"ticket_number": "6165"}, request_id="ticket-6165"
    )
    first, again = [await conv.stub.PostSystemEvent(request, metadata=service_md) for _ in range(2)]
    assert (again.id, again.seq, again.system.rendered) == (first.id, first.seq, first.system.rendered)
    messages = await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id), metadata=service_md)
    assert [m.system.type for m in messages.messages].count("converted_to_ticket") == 1


async def test_conv04_resend_request_id_resends_once(conv, tenant):
    chat = await conv.open_chat(tenant, channel=pb.CHANNEL_WHATSAPP)
    agent, channel = auth(tenant, "agent", AGENT), auth(tenant, "service", "whatsapp-adapter")
    sent = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="Here is the form"), metadata=agent)
    await conv.stub.UpdateMessageStatus(
        pb.UpdateMessageStatusRequest(
            chat_id=chat.id, seq=sent.seq, status=pb.MESSAGE_STATUS_FAILED, failure_reason="channel_error"
        ),
        metadata=channel,
    )
    request = pb.ResendMessageRequest(chat_id=chat.id, seq=sent.seq, request_id="resend-1")
    first, again = [await conv.stub.ResendMessage(request, metadata=agent) for _ in range(2)]
    assert (again.id, again.seq, again.text) == (first.id, first.seq, "Here is the form")
    messages = await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id), metadata=agent)
    assert [m.resent_from_seq for m in messages.messages].count(sent.seq) == 1
    other = pb.ResendMessageRequest(chat_id=chat.id, seq=first.seq, request_id="resend-1")
    assert await status_of(conv.stub.ResendMessage(other, metadata=agent)) == grpc.StatusCode.INVALID_ARGUMENT
