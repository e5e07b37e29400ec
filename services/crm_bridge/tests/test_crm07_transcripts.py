"""CRM-07: when a chat ends, the visitor's lead (or existing record) gets the transcript.

The conversation service runs in-process next to the CRM bridge (real PostgreSQL, NATS
and gRPC between them); routing's assignment is published on its real subject."""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid

import grpc
import pytest
from kaiwa.conversation.v1 import conversation_pb2 as conv_pb
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub
from kaiwa.events.v1.conversation_pb2 import ChatEnded
from kaiwa.events.v1.envelope_pb2 import Event
from kaiwa.events.v1.routing_pb2 import ChatAssigned
from nats.js.api import ConsumerConfig, DeliverPolicy
from pypdf import PdfReader

from kaiwa_common.app import ServiceRunner
from kaiwa_common.config import Settings
from kaiwa_common.devservers import free_port
from kaiwa_common.events import make_event, stream_name, subject
from kaiwa_conversation.main import make_spec as conversation_spec
from kaiwa_crm.main import make_spec as crm_spec
from tests.fixtures import auth, channel_to, events_of, eventually, running

AGENT = "agent-7"


class Services:
    def __init__(self, conversation: ServiceRunner, crm: ServiceRunner, conv_stub, crm_stub):
        self.conversation, self.crm = conversation, crm
        self.conv, self.crm_stub = conv_stub, crm_stub

    async def publish(self, source: str, tenant: str, payload) -> Event:
        """Publish an event exactly as the producing service's outbox relay does."""
        event = make_event(source, tenant, payload)
        await self.crm.ctx.js.publish(
            subject(Settings().subject_prefix, source, event.type), event.SerializeToString(), headers={"Nats-Msg-Id": event.id}
        )
        return event

    async def ended_chat(self, tenant: str, email: str, name: str = "佐藤 一郎") -> conv_pb.Chat:
        """A web chat: started by a visitor, accepted by an agent, a few messages, ended by the agent."""
        return await ended_chat(self.conv, tenant, email, name, self.publish)


async def ended_chat(conv: ConversationServiceStub, tenant: str, email: str, name: str, publish) -> conv_pb.Chat:
    visitor = auth(tenant, "visitor", str(uuid.uuid4()))
    chat = await conv.StartChat(
        conv_pb.StartChatRequest(
            channel=conv_pb.CHANNEL_WEB,
            department_id="",
            question="見積もりをお願いします",
            visitor_name=name,
            visitor_email=email,
        ),
        metadata=visitor,
    )
    await publish("routing", tenant, ChatAssigned(chat_id=chat.id, agent_id=AGENT, agent_name="Kawane Taro", how="accepted"))
    agent = auth(tenant, "agent", AGENT)
    for _ in range(200):
        if (await conv.GetChat(conv_pb.GetChatRequest(chat_id=chat.id), metadata=agent)).state == conv_pb.CHAT_STATE_OPEN:
            break
        await asyncio.sleep(0.05)
    await conv.SendMessage(conv_pb.SendMessageRequest(chat_id=chat.id, text="Plan B の見積もりが欲しいです"), metadata=visitor)
    await conv.SendMessage(conv_pb.SendMessageRequest(chat_id=chat.id, text="Thanks, sending the quote today."), metadata=agent)
    return await conv.EndChat(conv_pb.EndChatRequest(chat_id=chat.id), metadata=agent)


@contextlib.asynccontextmanager
async def crm_bridge(conversation_port: int):
    """A CRM bridge with its own schema and durable consumer, talking to conversation at the port."""
    name = f"crm07_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAIWA_CONVERSATION_ADDR", f"127.0.0.1:{conversation_port}")
        async with running(crm_spec(schema=name, durable=name), schema=name) as crm:
            yield crm


@pytest.fixture(scope="module")
async def services():
    schema = f"crm07_conv_{uuid.uuid4().hex[:8]}"
    async with (
        running(conversation_spec(schema=schema), schema=schema) as conversation,
        crm_bridge(conversation.port) as crm,
        channel_to(conversation) as conv_channel,
        channel_to(crm) as crm_channel,
    ):
        yield Services(conversation, crm, ConversationServiceStub(conv_channel), CrmBridgeServiceStub(crm_channel))


async def record_with_attachment(
    crm: CrmBridgeServiceStub, tenant: str, email: str, chat_id: str, attempts: int = 300
) -> pb.Record:
    for _ in range(attempts):
        try:
            record = await crm.FindRecord(pb.FindRecordRequest(email=email), metadata=auth(tenant, "agent", AGENT))
            if any(a.chat_id == chat_id for a in record.attachments):
                return record
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
        await asyncio.sleep(0.05)
    raise AssertionError(f"no record for {email} with the transcript of chat {chat_id}")


async def stream_seq_of_chat_ended(js, chat_id: str) -> int:
    """Where the chat's chat_ended event sits in the conversation stream, once it is there."""
    prefix = Settings().subject_prefix
    for _ in range(100):
        sub = await js.pull_subscribe(
            subject(prefix, "conversation", "chat_ended"),
            durable=None,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, inactive_threshold=5.0),
        )
        try:
            while True:
                try:
                    batch = await sub.fetch(256, timeout=0.3)
                except asyncio.TimeoutError:
                    break
                for msg in batch:
                    if Event.FromString(msg.data).chat_ended.chat_id == chat_id:
                        return msg.metadata.sequence.stream
        finally:
            await sub.unsubscribe()
        await asyncio.sleep(0.05)
    raise AssertionError(f"chat_ended of {chat_id} never reached JetStream")


async def test_crm07_ended_chat_adds_a_lead_with_the_transcript_pdf(services, tenant):
    async with events_of(tenant, "crm_bridge", "record_created") as created:
        chat = await services.ended_chat(tenant, "Ichiro.Sato@Example.jp")
        record = await record_with_attachment(services.crm_stub, tenant, "ichiro.sato@example.jp", chat.id)
        await eventually(lambda: created, "record_created is published")

    assert (record.type, record.source, record.name, record.email) == (
        pb.RECORD_TYPE_LEAD,
        "chat",
        "佐藤 一郎",
        "Ichiro.Sato@Example.jp",
    )
    [attachment] = record.attachments
    assert (attachment.name, attachment.mime_type, attachment.chat_id) == (
        f"chat-transcript-{chat.id}.pdf",
        "application/pdf",
        chat.id,
    )
    content = await services.crm_stub.GetAttachment(
        pb.GetAttachmentRequest(attachment_id=attachment.id), metadata=auth(tenant, "admin", "root")
    )
    assert content.attachment == attachment
    assert len(content.content) == attachment.size and content.content.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(content.content)).pages)
    assert "Plan B" in text and "sending the quote today" in text

    [event] = created
    assert (event.record_created.record_id, event.record_created.chat_id, event.record_created.source) == (
        record.id,
        chat.id,
        "chat",
    )

    # Another tenant sees neither the record nor its attachment.
    other = auth(f"{tenant}-x", "admin", "root")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await services.crm_stub.GetAttachment(pb.GetAttachmentRequest(attachment_id=attachment.id), metadata=other)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_crm07_existing_contact_gets_the_transcript_once(services, tenant):
    contact = await services.crm_stub.UpsertRecord(
        pb.UpsertRecordRequest(
            email="hanako@example.com", type=pb.RECORD_TYPE_CONTACT, name="Yamada Hanako", owner="sales@example.com"
        ),
        metadata=auth(tenant, "admin", "root"),
    )
    chat = await services.ended_chat(tenant, "HANAKO@example.com", name="hana")
    record = await record_with_attachment(services.crm_stub, tenant, "hanako@example.com", chat.id)
    assert record.id == contact.id
    assert (record.type, record.name, record.owner) == (pb.RECORD_TYPE_CONTACT, "Yamada Hanako", "sales@example.com")

    # The same chat ended again (a second chat_ended fact, e.g. after a reopen) replaces the
    # transcript; it does not add a second one.
    again = await services.publish(
        "conversation",
        tenant,
        ChatEnded(chat_id=chat.id, agent_id=AGENT, visitor_email="hanako@example.com", visitor_name="hana", reason="agent"),
    )
    for _ in range(200):
        if await services.crm.ctx.pool.fetchval("SELECT count(*) FROM processed_events WHERE event_id = $1", again.id):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the repeated chat_ended was never processed")
    found = await services.crm_stub.FindRecord(
        pb.FindRecordRequest(email="hanako@example.com"), metadata=auth(tenant, "agent", AGENT)
    )
    assert [a.chat_id for a in found.attachments] == [chat.id]


@pytest.mark.expected_error_logs("event parked in dead_letters")
async def test_crm07_unknown_chat_is_parked_not_retried(services, tenant):
    chat_id = str(uuid.uuid4())
    event = await services.publish(
        "conversation", tenant, ChatEnded(chat_id=chat_id, agent_id=AGENT, visitor_email="ghost@example.com", reason="agent")
    )
    for _ in range(200):
        error = await services.crm.ctx.pool.fetchval("SELECT error FROM dead_letters WHERE event_id = $1", event.id)
        if error:
            break
        await asyncio.sleep(0.05)
    assert error and "NOT_FOUND" in error
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await services.crm_stub.FindRecord(pb.FindRecordRequest(email="ghost@example.com"), metadata=auth(tenant, "agent", AGENT))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND  # nothing half-written


async def test_crm07_conversation_unreachable_is_retried_until_it_is_back(tenant, monkeypatch):
    schema, port = f"crm07_conv_{uuid.uuid4().hex[:8]}", free_port()
    # Streams of its own: this test's new conversation must not replay the module's events.
    monkeypatch.setenv("KAIWA_SUBJECT_PREFIX", f"k{uuid.uuid4().hex[:10]}")
    spec = conversation_spec(schema=schema)

    async def publish(source, tenant_, payload):
        event = make_event(source, tenant_, payload)
        await conversation.ctx.js.publish(
            subject(Settings().subject_prefix, source, event.type), event.SerializeToString(), headers={"Nats-Msg-Id": event.id}
        )

    conversation = await ServiceRunner(spec, Settings(), port=port, schema=schema).start()
    try:
        async with channel_to(conversation) as channel:
            chat = await ended_chat(ConversationServiceStub(channel), tenant, "later@example.com", "Later", publish)
        chat_ended_seq = await stream_seq_of_chat_ended(conversation.ctx.js, chat.id)
    finally:
        await conversation.stop(grace=1)

    async with crm_bridge(port) as crm, channel_to(crm) as channel:
        stub = CrmBridgeServiceStub(channel)
        # The event is delivered, fails (conversation is down) and stays unacknowledged for a retry.
        stream = stream_name(Settings().subject_prefix, "conversation")
        durable = crm.spec.consumers(crm.ctx)[0].name
        for _ in range(300):
            info = await crm.ctx.js.consumer_info(stream, durable)
            if info.delivered.stream_seq >= chat_ended_seq and info.num_redelivered >= 1:
                break
            await asyncio.sleep(0.05)
        assert info.delivered.stream_seq >= chat_ended_seq and info.num_redelivered >= 1
        assert info.ack_floor.stream_seq < chat_ended_seq
        assert await crm.ctx.pool.fetchval("SELECT count(*) FROM dead_letters WHERE error LIKE '%' || $1 || '%'", chat.id) == 0
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.FindRecord(pb.FindRecordRequest(email="later@example.com"), metadata=auth(tenant, "agent", AGENT))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

        conversation = await ServiceRunner(spec, Settings(), port=port, schema=schema).start()
        try:
            record = await record_with_attachment(stub, tenant, "later@example.com", chat.id, attempts=600)
            assert record.source == "chat" and len(record.attachments) == 1
        finally:
            await conversation.stop(grace=1)
