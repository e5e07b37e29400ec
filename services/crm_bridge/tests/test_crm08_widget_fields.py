"""CRM-08: widget fields whose names match CRM custom fields are copied when a record is
created (the real conversation service in this process): the chat's pre-chat form fields
(StartChatRequest.fields, carried on chat_started) named like one of the tenant's custom
fields of the new record's type (by name or label, letter case and separators alike) go
onto a lead added by the auto-add policy or a lead/contact an agent adds from the chat;
an existing record is left as it is; replaying the events changes nothing."""

from __future__ import annotations

import uuid

import grpc
import pytest
from kaiwa.conversation.v1 import conversation_pb2 as conv_pb
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1 import settings_pb2 as spb
from kaiwa.events.v1.conversation_pb2 import ChatEnded, ChatStarted

from kaiwa_common.config import Settings
from kaiwa_common.events import subject
from services.crm_bridge.tests.kit import admin, missed_chat, stack
from tests.fixtures import auth, eventually, events_of

FORM = {"company size": "50-99", "業種": "製造業", "Budget": "300万円", "Favourite colour": "blue"}


@pytest.fixture(scope="module")
async def services():
    async with stack() as running_stack:
        yield running_stack


async def custom_fields(crm, tenant):
    for kind, name, label in [
        (pb.RECORD_TYPE_LEAD, "company_size", "Company size"),
        (pb.RECORD_TYPE_LEAD, "industry", "業種"),
        (pb.RECORD_TYPE_CONTACT, "budget", "Budget"),
        (pb.RECORD_TYPE_CONTACT, "company_size", ""),
    ]:
        await crm.stub.DefineCustomField(pb.DefineCustomFieldRequest(type=kind, name=name, label=label), metadata=admin(tenant))


async def find(crm, tenant, email):
    try:
        return await crm.stub.FindRecord(pb.FindRecordRequest(email=email), metadata=admin(tenant))
    except Exception:
        return None


async def test_crm08_widget_fields_are_copied_to_a_lead_the_policy_adds(services, tenant):
    crm = services.crm
    await custom_fields(crm, tenant)
    async with events_of(tenant, "conversation", "chat_started") as started:
        chat = await services.ended_chat(tenant, "form@example.com", form=FORM)
        record = await eventually(lambda: find(crm, tenant, "form@example.com"), "the lead added from the chat")
        [chat_started] = await eventually(lambda: [e for e in started if e.chat_started.chat_id == chat.id], "chat_started")
    assert record.type == pb.RECORD_TYPE_LEAD
    # Matched by name (company_size) and by label (業種); the contact-only "Budget" and the
    # unknown "Favourite colour" are not lead fields.
    assert dict(record.fields) == {"company_size": "50-99", "industry": "製造業"}

    # Replays: the same chat_started delivered again, and the chat ending again (a new
    # event): the record is found, not created, so nothing is copied again.
    replay = await crm.runner.ctx.js.publish(
        subject(Settings().subject_prefix, "conversation", "chat_started"),
        chat_started.SerializeToString(),
        headers={"Nats-Msg-Id": str(uuid.uuid4())},
    )
    assert replay.seq
    restated = ChatStarted()
    restated.CopyFrom(chat_started.chat_started)
    restated.fields["company size"] = "1000+"
    await crm.publish("conversation", tenant, restated)  # the same chat again, other values: the first kept
    again = await crm.publish(
        "conversation",
        tenant,
        ChatEnded(chat_id=chat.id, agent_id="agent-7", visitor_email="form@example.com", reason="agent"),
    )
    await eventually(lambda: crm.processed(again), "the repeated chat_ended")
    marker = await crm.publish("conversation", tenant, missed_chat("marker@example.com"))
    await eventually(lambda: crm.processed(marker), "a later event")
    assert dict((await find(crm, tenant, "form@example.com")).fields) == {"company_size": "50-99", "industry": "製造業"}
    stored = await crm.runner.ctx.pool.fetch("SELECT fields FROM chat_form_fields WHERE tenant = $1", tenant)
    assert [dict(r["fields"]) for r in stored] == [dict(chat_started.chat_started.fields)]
    count = await crm.runner.ctx.pool.fetchval(
        "SELECT count(*) FROM records WHERE tenant = $1 AND email = $2", tenant, "form@example.com"
    )
    assert count == 1

    # A later chat of the same visitor with other form values leaves the existing lead as it is.
    await services.ended_chat(tenant, "form@example.com", form={"Company size": "1000+"})
    marker = await crm.publish("conversation", tenant, missed_chat("marker2@example.com"))
    await eventually(lambda: crm.processed(marker), "a later event")
    assert dict((await find(crm, tenant, "form@example.com")).fields) == {"company_size": "50-99", "industry": "製造業"}


async def test_crm08_widget_fields_are_copied_to_a_record_an_agent_adds_from_the_chat(services, tenant):
    crm = services.crm
    await custom_fields(crm, tenant)
    settings = await crm.stub.GetCrmSettings(spb.GetCrmSettingsRequest(), metadata=admin(tenant))
    settings.auto_add = spb.AUTO_ADD_NONE
    await crm.stub.UpdateCrmSettings(settings, metadata=admin(tenant))
    visitor = auth(tenant, "visitor", str(uuid.uuid4()))
    async with events_of(tenant, "conversation", "chat_started") as started:
        chats = [
            await services.conv.StartChat(
                conv_pb.StartChatRequest(channel=conv_pb.CHANNEL_WEB, visitor_email=email, fields=FORM), metadata=visitor
            )
            for email in ("contact@example.com", "lead@example.com")
        ]
        events = await eventually(lambda: len(started) == 2 and list(started), "both chat_started events")
    for event in events:
        await eventually(lambda e=event: crm.processed(e), "chat_started taken by the CRM bridge")

    contact = await crm.stub.AddRecordFromChat(
        pb.AddRecordFromChatRequest(
            email="contact@example.com", type=pb.RECORD_TYPE_CONTACT, phone="03-1111-2222", chat_id=chats[0].id
        ),
        metadata=admin(tenant),
    )
    assert dict(contact.record.fields) == {"phone": "03-1111-2222", "budget": "300万円", "company_size": "50-99"}
    lead = await crm.stub.AddRecordFromChat(
        pb.AddRecordFromChatRequest(email="lead@example.com", company="Kawane KK", chat_id=chats[1].id),
        metadata=admin(tenant),
    )
    assert dict(lead.record.fields) == {"company": "Kawane KK", "company_size": "50-99", "industry": "製造業"}
    # Without the chat only what the agent typed.
    plain = await crm.stub.AddRecordFromChat(
        pb.AddRecordFromChatRequest(email="plain@example.com", company="Plain KK"), metadata=admin(tenant)
    )
    assert dict(plain.record.fields) == {"company": "Plain KK"}


async def test_crm03_plat02_record_from_a_chat_of_another_tenant_or_not_yours_is_refused(services, tenant):
    crm = services.crm
    visitor = auth(tenant, "visitor", str(uuid.uuid4()))
    chat = await services.conv.StartChat(
        conv_pb.StartChatRequest(channel=conv_pb.CHANNEL_WEB, visitor_email="v@example.com"), metadata=visitor
    )
    other_tenant = f"{tenant}-other"
    for chat_id in (chat.id, str(uuid.uuid4())):  # another tenant's chat, or no chat at all
        request = pb.AddRecordFromChatRequest(email="x@example.com", chat_id=chat_id)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await crm.stub.AddRecordFromChat(request, metadata=admin(other_tenant))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # An agent of the tenant who is not in the chat (nobody has accepted it yet).
    agent = auth(tenant, "agent", str(uuid.uuid4()))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await crm.stub.AddRecordFromChat(pb.AddRecordFromChatRequest(email="x@example.com", chat_id=chat.id), metadata=agent)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not await find(crm, other_tenant, "x@example.com") and not await find(crm, tenant, "x@example.com")
