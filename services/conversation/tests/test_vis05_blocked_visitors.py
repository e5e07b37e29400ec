"""VIS-05 end to end: the visitor service blocks an address, a visitor or a messaging
thread; the conversation service refuses new chats and the visitor's further messages
with PERMISSION_DENIED, writes "visitor blocked"/"unblocked" into open chats, and keeps
enforcing the blocks it knows while the visitor service is down. Both services run in
this process on one bus, with real PostgreSQL and NATS."""

from __future__ import annotations

import contextlib
import uuid

import grpc
import pytest
from kaiwa.conversation.v1 import conversation_pb2 as cpb
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.visitor.v1 import visitor_pb2 as vpb
from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

from kaiwa_conversation.main import make_spec as conversation_spec
from kaiwa_visitor.main import make_spec as visitor_spec
from services.conversation.tests.helpers import new_prefix, service
from tests.fixtures import auth, channel_to, eventually

AGENT = "agent-7"


@contextlib.asynccontextmanager
async def services():
    suffix, prefix = uuid.uuid4().hex[:8], new_prefix()
    async with contextlib.AsyncExitStack() as stack:
        conv = await stack.enter_async_context(service(conversation_spec(schema=f"cb_{suffix}"), f"cb_{suffix}", prefix))
        vis = await stack.enter_async_context(service(visitor_spec(schema=f"vb_{suffix}"), f"vb_{suffix}", prefix))
        conv_stub = ConversationServiceStub(await stack.enter_async_context(channel_to(conv)))
        vis_stub = VisitorServiceStub(await stack.enter_async_context(channel_to(vis)))
        yield conv_stub, vis_stub, vis


@pytest.fixture(scope="module")
async def both():
    async with services() as (conv, vis, _):
        yield conv, vis


def staff(tenant: str):
    return auth(tenant, "agent", AGENT)


async def start(conv, metadata, **fields) -> cpb.Chat:
    return await conv.StartChat(cpb.StartChatRequest(channel=cpb.CHANNEL_WEB, **fields), metadata=metadata)


async def refusal(call) -> tuple[grpc.StatusCode, str] | None:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details()
    return None


async def system_texts(conv, tenant: str, chat_id: str) -> list[str]:
    reply = await conv.ListMessages(cpb.ListMessagesRequest(chat_id=chat_id, locale="en"), metadata=staff(tenant))
    return [m.text for m in reply.messages if m.kind == cpb.MESSAGE_KIND_SYSTEM]


async def test_vis05_blocked_ip_cannot_start_a_chat(both, tenant):
    conv, vis = both
    blocked_visitor, newcomer = str(uuid.uuid4()), str(uuid.uuid4())
    await vis.TrackPageView(
        vpb.TrackPageViewRequest(url="https://example.com/"), metadata=auth(tenant, "visitor", blocked_visitor)
    )
    block = await vis.BlockVisitor(vpb.BlockVisitorRequest(visitor_id=blocked_visitor, reason="spam"), metadata=staff(tenant))
    assert (block.kind, block.network, block.visitor_id, block.blocked_by, block.reason) == (
        vpb.BLOCK_KIND_IP,
        "127.0.0.1/32",
        blocked_visitor,
        AGENT,
        "spam",
    )
    # Another visitor id from the same address is refused too, once conversation has the block.
    refused = await eventually(lambda: refusal(start(conv, auth(tenant, "visitor", newcomer))), "StartChat refused")
    assert refused[0] == grpc.StatusCode.PERMISSION_DENIED and "blocked" in refused[1]
    # Another tenant is not affected.
    assert (await start(conv, auth(f"{tenant}-b", "visitor", newcomer))).state == cpb.CHAT_STATE_QUEUED

    again = await vis.BlockVisitor(vpb.BlockVisitorRequest(ip="127.0.0.1", reason="again"), metadata=staff(tenant))
    assert again.id == block.id  # already blocked: the active block
    await vis.UnblockVisitor(vpb.UnblockVisitorRequest(block_id=block.id), metadata=staff(tenant))
    chat = await eventually(lambda: _started(conv, tenant, newcomer), "StartChat allowed again after the unblock")
    assert chat.visitor_id == newcomer
    listed = await vis.ListBlocks(vpb.ListBlocksRequest(include_unblocked=True), metadata=staff(tenant))
    assert [(b.id, b.unblocked_by) for b in listed.blocks] == [(block.id, AGENT)]
    assert not (await vis.ListBlocks(vpb.ListBlocksRequest(), metadata=staff(tenant))).blocks


async def _started(conv, tenant: str, visitor_id: str):
    try:
        return await start(conv, auth(tenant, "visitor", visitor_id))
    except grpc.aio.AioRpcError:
        return None


async def test_vis05_blocking_posts_system_messages_and_stops_further_messages(both, tenant):
    conv, vis = both
    visitor_id = str(uuid.uuid4())
    me = auth(tenant, "visitor", visitor_id)
    chat = await start(conv, me, question="hello")
    block = await vis.BlockVisitor(
        vpb.BlockVisitorRequest(ip="127.0.0.0/16", reason="abuse", chat_id=chat.id), metadata=staff(tenant)
    )
    texts = await eventually(
        lambda: _with(system_texts(conv, tenant, chat.id), f"{AGENT} blocked the visitor"), "visitor_blocked system message"
    )
    assert texts == [f"{AGENT} blocked the visitor"]
    refused = await refusal(conv.SendMessage(cpb.SendMessageRequest(chat_id=chat.id, text="still here"), metadata=me))
    assert refused[0] == grpc.StatusCode.PERMISSION_DENIED and "blocked" in refused[1]
    await vis.UnblockVisitor(vpb.UnblockVisitorRequest(block_id=block.id), metadata=staff(tenant))
    await eventually(lambda: _with(system_texts(conv, tenant, chat.id), f"{AGENT} unblocked the visitor"), "unblocked message")
    sent = await conv.SendMessage(cpb.SendMessageRequest(chat_id=chat.id, text="back"), metadata=me)
    assert sent.text == "back"


async def _with(texts_call, wanted: str):
    texts = await texts_call
    return texts if wanted in texts else None


async def test_vis05_a_blocked_thread_on_a_messaging_channel_sends_nothing_more(both, tenant):
    conv, vis = both
    channel_service = auth(tenant, "service", "whatsapp-bridge")
    thread, other_thread = "+819012345678", "+819087654321"
    chat = await conv.StartChat(cpb.StartChatRequest(channel=cpb.CHANNEL_WHATSAPP, visitor_id=thread), metadata=channel_service)
    await conv.SendMessage(cpb.SendMessageRequest(chat_id=chat.id, text="first"), metadata=channel_service)
    await vis.BlockVisitor(
        vpb.BlockVisitorRequest(channel="whatsapp", thread_id=thread, reason="harassment"), metadata=staff(tenant)
    )

    async def refused():
        return await refusal(conv.SendMessage(cpb.SendMessageRequest(chat_id=chat.id, text="more"), metadata=channel_service))

    code, details = await eventually(refused, "the thread's messages refused")
    assert code == grpc.StatusCode.PERMISSION_DENIED and "blocked" in details
    new_chat = cpb.StartChatRequest(channel=cpb.CHANNEL_WHATSAPP, visitor_id=thread)
    assert (await refusal(conv.StartChat(new_chat, metadata=channel_service)))[0] == grpc.StatusCode.PERMISSION_DENIED
    other = await conv.StartChat(
        cpb.StartChatRequest(channel=cpb.CHANNEL_WHATSAPP, visitor_id=other_thread), metadata=channel_service
    )
    assert other.visitor_id == other_thread


async def test_vis05_blocks_still_hold_while_the_visitor_service_is_down(tenant):
    async with services() as (conv, vis, vis_runner):
        gateway = auth(tenant, "service", "gateway")
        blocked_ip = (*gateway, ("x-forwarded-for", "198.51.100.23, 10.0.0.1"))  # as the gateway saw the visitor
        await vis.BlockVisitor(vpb.BlockVisitorRequest(ip="198.51.100.0/24", reason="bot"), metadata=staff(tenant))
        await eventually(lambda: refusal(start(conv, blocked_ip, visitor_id=str(uuid.uuid4()))), "conversation knows the block")
        await vis_runner.stop(grace=0.5)  # the visitor service goes away; conversation never asks it
        code, details = await refusal(start(conv, blocked_ip, visitor_id=str(uuid.uuid4())))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "blocked" in details
        allowed = (*gateway, ("x-forwarded-for", "203.0.113.9"))
        assert (await start(conv, allowed, visitor_id=str(uuid.uuid4()))).state == cpb.CHAT_STATE_QUEUED


@pytest.mark.parametrize(
    "fields, code, words",
    [
        ({"reason": "x"}, grpc.StatusCode.INVALID_ARGUMENT, "exactly one target"),
        ({"ip": "1.2.3.4", "channel": "line", "thread_id": "u1", "reason": "x"}, grpc.StatusCode.INVALID_ARGUMENT, "exactly one"),
        ({"ip": "10.0.0.0/8", "reason": "x"}, grpc.StatusCode.INVALID_ARGUMENT, "too wide"),
        ({"ip": "not-an-ip", "reason": "x"}, grpc.StatusCode.INVALID_ARGUMENT, "not an address"),
        ({"ip": "1.2.3.4"}, grpc.StatusCode.INVALID_ARGUMENT, "reason is required"),
        ({"channel": "web", "thread_id": "u1", "reason": "x"}, grpc.StatusCode.INVALID_ARGUMENT, "not a messaging channel"),
        ({"visitor_id": "NEW", "reason": "x"}, grpc.StatusCode.NOT_FOUND, "not found"),
    ],
)
async def test_vis05_block_bad_input_blocks_nothing(both, tenant, fields, code, words):
    _, vis = both
    if fields.get("visitor_id") == "NEW":
        fields = {**fields, "visitor_id": str(uuid.uuid4())}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await vis.BlockVisitor(vpb.BlockVisitorRequest(**fields), metadata=staff(tenant))
    assert err.value.code() == code and words in err.value.details(), err.value.details()
    assert not (await vis.ListBlocks(vpb.ListBlocksRequest(include_unblocked=True), metadata=staff(tenant))).blocks
    unknown = vis.UnblockVisitor(vpb.UnblockVisitorRequest(block_id=str(uuid.uuid4())), metadata=staff(tenant))
    assert (await refusal(unknown))[0] == grpc.StatusCode.NOT_FOUND
    visitor_token = vis.BlockVisitor(vpb.BlockVisitorRequest(ip="1.2.3.4", reason="x"), metadata=auth(tenant, "visitor", "v"))
    assert (await refusal(visitor_token))[0] == grpc.StatusCode.PERMISSION_DENIED
