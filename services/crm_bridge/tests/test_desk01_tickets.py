"""DESK-01: the help desk from the chat (real conversation and routing services in this
process): converting a chat or one message into a ticket with the seed's priority,
status and category numbers, only where the department allows it; the "converted to
ticket (number)" system message in the chat (also when conversation was away); search
by e-mail, number, id or name; associating a chat; reopen and close; a visitor's recent
requests; ticket info."""

from __future__ import annotations

import uuid

import grpc
import pytest
from kaiwa.conversation.v1 import conversation_pb2 as conv_pb
from kaiwa.crm_bridge.v1 import desk_pb2 as pb
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.routing.v1 import routing_pb2 as routing_pb

from kaiwa_common.app import ServiceRunner
from kaiwa_common.config import Settings
from kaiwa_common.devservers import free_port
from kaiwa_common.timers import TimerRunner
from kaiwa_conversation.main import make_spec as conversation_spec
from services.crm_bridge.tests.kit import Stack, admin, agent, crm_service, stack
from tests.fixtures import auth, channel_to, eventually, status_of


TICKET_URL = "https://desk.example.jp/tickets/{number}?id={id}"


@pytest.fixture(scope="module")
async def services():
    async with stack(with_routing=True, env={"KAIWA_DESK_TICKET_URL": TICKET_URL}) as running_stack:
        yield running_stack


async def chat(services, tenant, email="taro@example.com", name="山田 太郎", department="", text="パスワードを再設定できません"):
    visitor = auth(tenant, "visitor", str(uuid.uuid4()))
    started = await services.conv.StartChat(
        conv_pb.StartChatRequest(
            channel=conv_pb.CHANNEL_WEB,
            department_id=department,
            question="ログインできません",
            visitor_name=name,
            visitor_email=email,
        ),
        metadata=visitor,
    )
    sent = await services.conv.SendMessage(conv_pb.SendMessageRequest(chat_id=started.id, text=text), metadata=visitor)
    return started, sent


async def enable(services, tenant, department_id=""):
    request = pb.SetDeskDepartmentRequest(department_id=department_id, conversion_enabled=True)
    return await services.crm.stub.SetDeskDepartment(request, metadata=admin(tenant))


async def system_messages(services, tenant, chat_id, locale="en", role="admin") -> list[str]:
    return [m.system.rendered for m in await ticket_messages(services, tenant, chat_id, locale, role)]


async def ticket_messages(services, tenant, chat_id, locale="en", role="admin") -> list[conv_pb.Message]:
    request = conv_pb.ListMessagesRequest(chat_id=chat_id, locale=locale)
    listed = await services.conv.ListMessages(request, metadata=auth(tenant, role, "someone"))
    return [m for m in listed.messages if m.system.type == "converted_to_ticket"]


async def test_desk01_convert_a_chat_into_a_ticket_and_say_so_in_the_chat(services, tenant):
    crm = services.crm.stub
    started, _ = await chat(services, tenant)
    await enable(services, tenant)
    ticket = await crm.ConvertChatToTicket(
        pb.ConvertChatToTicketRequest(chat_id=started.id, priority=1, status=1, category=2), metadata=agent(tenant)
    )
    assert (ticket.priority_name, ticket.status_name, ticket.category_name) == ("low", "on_hold", "problem")
    assert (ticket.number, ticket.subject, ticket.email, ticket.name, ticket.chat_id) == (
        1,
        "ログインできません",
        "taro@example.com",
        "山田 太郎",
        started.id,
    )
    assert "パスワードを再設定できません" in ticket.description
    assert ticket.url == f"https://desk.example.jp/tickets/1?id={ticket.id}"
    messages = await eventually(lambda: system_messages(services, tenant, started.id), "the system message in the chat")
    assert messages == [f"A ticket was created from this chat (ticket number: 1 {ticket.url})"]
    again = await crm.ConvertChatToTicket(pb.ConvertChatToTicketRequest(chat_id=started.id), metadata=agent(tenant))
    assert again.id == ticket.id  # one chat, one ticket, one message
    assert len(await system_messages(services, tenant, started.id)) == 1


async def test_desk01_the_ticket_number_in_the_chat_links_to_the_ticket(services, tenant):
    """The system message carries the ticket's link (params ticket_url, for clients to link
    the number) and shows it next to the number, in Japanese and English, to the agent
    and the visitor alike."""
    started, _ = await chat(services, tenant)
    await enable(services, tenant)
    ticket = await services.crm.stub.ConvertChatToTicket(
        pb.ConvertChatToTicketRequest(chat_id=started.id), metadata=agent(tenant)
    )
    [message] = await eventually(lambda: ticket_messages(services, tenant, started.id, "ja"), "the system message")
    assert dict(message.system.params) == {"ticket_number": str(ticket.number), "ticket_url": ticket.url}
    assert ticket.url == f"https://desk.example.jp/tickets/{ticket.number}?id={ticket.id}"
    assert message.system.rendered == (f"チャットをもとに問い合わせが作成されました(問い合わせ番号:{ticket.number} {ticket.url})")
    visitor = conv_pb.ListMessagesRequest(chat_id=started.id, locale="en")
    seen = await services.conv.ListMessages(visitor, metadata=auth(tenant, "visitor", started.visitor_id))
    [english] = [m for m in seen.messages if m.system.type == "converted_to_ticket"]
    assert english.system.rendered == f"A ticket was created from this chat (ticket number: {ticket.number} {ticket.url})"
    assert english.system.params["ticket_url"] == ticket.url


async def test_desk01_convert_one_message(services, tenant):
    started, sent = await chat(services, tenant, text="請求書を再発行してください")
    await enable(services, tenant)
    ticket = await services.crm.stub.ConvertChatToTicket(
        pb.ConvertChatToTicketRequest(chat_id=started.id, message_seq=sent.seq, priority=3, status=2, category=1),
        metadata=agent(tenant),
    )
    assert (ticket.message_seq, ticket.description, ticket.subject) == (
        sent.seq,
        "請求書を再発行してください",
        "請求書を再発行してください",
    )
    assert (ticket.priority_name, ticket.status_name, ticket.category_name) == ("high", "escalated", "question")
    missing = pb.ConvertChatToTicketRequest(chat_id=started.id, message_seq=sent.seq + 100)
    assert await status_of(services.crm.stub.ConvertChatToTicket(missing, metadata=agent(tenant))) == grpc.StatusCode.NOT_FOUND


async def test_desk01_conversion_is_enabled_per_department(services, tenant):
    crm = services.crm.stub
    support = await services.routing.UpsertDepartment(
        routing_pb.UpsertDepartmentRequest(name="サポート", max_wait_seconds=3600), metadata=admin(tenant)
    )
    sales = await services.routing.UpsertDepartment(
        routing_pb.UpsertDepartmentRequest(name="営業", max_wait_seconds=3600), metadata=admin(tenant)
    )
    in_support, _ = await chat(services, tenant, department=support.id)
    in_sales, _ = await chat(services, tenant, department=sales.id)
    enabled = await enable(services, tenant, support.id)
    assert (enabled.department_id, enabled.conversion_enabled) == (support.id, True)
    ok = await crm.ConvertChatToTicket(pb.ConvertChatToTicketRequest(chat_id=in_support.id), metadata=agent(tenant))
    assert ok.number == 1
    refused = crm.ConvertChatToTicket(pb.ConvertChatToTicketRequest(chat_id=in_sales.id), metadata=agent(tenant))
    assert await status_of(refused) == grpc.StatusCode.FAILED_PRECONDITION
    listed = await crm.ListDeskDepartments(pb.ListDeskDepartmentsRequest(), metadata=agent(tenant))
    assert [(d.department_id, d.conversion_enabled) for d in listed.departments] == [(support.id, True)]
    unknown = pb.SetDeskDepartmentRequest(department_id=str(uuid.uuid4()), conversion_enabled=True)
    assert await status_of(crm.SetDeskDepartment(unknown, metadata=admin(tenant))) == grpc.StatusCode.NOT_FOUND
    assert await status_of(crm.SetDeskDepartment(unknown, metadata=agent(tenant))) == grpc.StatusCode.PERMISSION_DENIED


async def test_desk01_search_associate_reopen_close_recent_and_info(services, tenant):
    crm = services.crm.stub
    await enable(services, tenant)
    first, _ = await chat(services, tenant, email="hanako@example.com", name="Yamada Hanako")
    second, _ = await chat(services, tenant, email="hanako@example.com", name="Yamada Hanako", text="まだ直りません")
    other, _ = await chat(services, tenant, email="ken@example.com", name="Ken")
    t1 = await crm.ConvertChatToTicket(pb.ConvertChatToTicketRequest(chat_id=first.id, category=2), metadata=agent(tenant))
    t2 = await crm.ConvertChatToTicket(pb.ConvertChatToTicketRequest(chat_id=other.id), metadata=agent(tenant))

    for query, numbers in [
        ("HANAKO@example.com", [t1.number]),
        (f"#{t2.number}", [t2.number]),
        (str(t1.number), [t1.number]),
        (t2.id, [t2.number]),
        ("hanako", [t1.number]),
        ("%", []),
        ("nobody", []),
    ]:
        found = await crm.SearchTickets(pb.SearchTicketsRequest(query=query), metadata=agent(tenant))
        assert [t.number for t in found.tickets] == numbers, query

    associated = await crm.AssociateChat(
        pb.AssociateChatRequest(ticket=str(t1.number), chat_id=second.id), metadata=agent(tenant)
    )
    assert list(associated.chat_ids) == [first.id, second.id]
    info = await crm.GetTicket(pb.GetTicketRequest(chat_id=second.id), metadata=agent(tenant))
    assert info.id == t1.id
    closed = await crm.SetTicketStatus(pb.SetTicketStatusRequest(ticket=t1.id, status=3), metadata=agent(tenant))
    reopened = await crm.SetTicketStatus(pb.SetTicketStatusRequest(ticket=f"#{t1.number}", status=0), metadata=agent(tenant))
    assert (closed.status_name, reopened.status_name) == ("closed", "open")
    recent = await crm.ListRecentTickets(pb.ListRecentTicketsRequest(chat_id=second.id), metadata=agent(tenant))
    assert [t.id for t in recent.tickets] == [t1.id]
    by_email = await crm.ListRecentTickets(pb.ListRecentTicketsRequest(email="ken@example.com"), metadata=agent(tenant))
    assert [t.id for t in by_email.tickets] == [t2.id]


async def test_desk01_bad_input_unknown_and_other_tenants(services, tenant):
    crm = services.crm.stub
    await enable(services, tenant)
    started, _ = await chat(services, tenant)
    ticket = await crm.ConvertChatToTicket(pb.ConvertChatToTicketRequest(chat_id=started.id), metadata=agent(tenant))
    for request, code in [
        (pb.ConvertChatToTicketRequest(chat_id=started.id, priority=4), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.ConvertChatToTicketRequest(chat_id=started.id, status=-1), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.ConvertChatToTicketRequest(chat_id=started.id, category=5), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.ConvertChatToTicketRequest(chat_id="chat-1"), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.ConvertChatToTicketRequest(chat_id=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND),
    ]:
        assert await status_of(crm.ConvertChatToTicket(request, metadata=agent(tenant))) == code
    assert await status_of(
        crm.SetTicketStatus(pb.SetTicketStatusRequest(ticket=ticket.id, status=9), metadata=agent(tenant))
    ) == (grpc.StatusCode.INVALID_ARGUMENT)
    assert await status_of(crm.GetTicket(pb.GetTicketRequest(ticket="999"), metadata=agent(tenant))) == grpc.StatusCode.NOT_FOUND
    assert (
        await status_of(crm.SearchTickets(pb.SearchTicketsRequest(query=""), metadata=agent(tenant)))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    theirs = auth(f"{tenant}-other", "agent", "a")
    assert await status_of(crm.GetTicket(pb.GetTicketRequest(ticket=ticket.id), metadata=theirs)) == grpc.StatusCode.NOT_FOUND
    assert list((await crm.SearchTickets(pb.SearchTicketsRequest(query="taro@example.com"), metadata=theirs)).tickets) == []
    converted = crm.ConvertChatToTicket(pb.ConvertChatToTicketRequest(chat_id=started.id), metadata=theirs)
    assert await status_of(converted) == grpc.StatusCode.NOT_FOUND  # another tenant's chat
    visitor = auth(tenant, "visitor", str(uuid.uuid4()))
    assert (
        await status_of(crm.GetTicket(pb.GetTicketRequest(ticket=ticket.id), metadata=visitor))
        == grpc.StatusCode.PERMISSION_DENIED
    )


async def test_desk01_the_chat_message_arrives_after_a_conversation_outage(tenant, monkeypatch):
    """Conversation stops right after the ticket is made: the system message waits (a timer
    row, retried with a growing delay) and is posted, once, when conversation is back."""
    monkeypatch.setenv("KAIWA_SUBJECT_PREFIX", f"k{uuid.uuid4().hex[:10]}")  # streams of its own
    monkeypatch.delenv("KAIWA_DESK_TICKET_URL", raising=False)  # (the module's services set one)
    schema, port = f"crm_conv_{uuid.uuid4().hex[:8]}", free_port()
    spec = conversation_spec(schema=schema)
    conversation = await ServiceRunner(spec, Settings(), port=port, schema=schema).start()
    # The CRM bridge's timers fire only when this test says (no polling in between).
    env = {"KAIWA_CONVERSATION_ADDR": f"127.0.0.1:{port}", "KAIWA_TIMER_POLL": "3600"}
    try:
        async with crm_service(env) as crm, channel_to(conversation) as channel:
            services = Stack(crm, ConversationServiceStub(channel), None)
            started, _ = await chat(services, tenant)
            await enable(services, tenant)
            ticket = await crm.stub.ConvertChatToTicket(pb.ConvertChatToTicketRequest(chat_id=started.id), metadata=agent(tenant))
            assert ticket.url == ""  # KAIWA_DESK_TICKET_URL not set: no desk page to link to
            timers = TimerRunner(crm.runner.ctx.pool, crm.runner.spec.timers(crm.runner.ctx))
            await conversation.stop(grace=1)
            await timers.fire_due()  # conversation is down: tried, kept for later
            tries = await crm.runner.ctx.pool.fetchval(
                "SELECT (payload->>'tries')::int FROM timers WHERE tenant = $1 AND key = $2", tenant, ticket.id
            )
            assert tries == 1
            conversation = await ServiceRunner(spec, Settings(), port=port, schema=schema).start()

            async def posted():
                await timers.fire_due()
                try:
                    return await system_messages(services, tenant, started.id)
                except grpc.aio.AioRpcError as exc:  # the test's channel reconnecting
                    if exc.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    return None

            assert await eventually(posted, "the message once conversation is back") == [
                f"A ticket was created from this chat (ticket number: {ticket.number})"
            ]
            [message] = await ticket_messages(services, tenant, started.id, "ja")
            assert dict(message.system.params) == {"ticket_number": str(ticket.number)}  # no link
            assert message.system.rendered == f"チャットをもとに問い合わせが作成されました(問い合わせ番号:{ticket.number})"
    finally:
        await conversation.stop(grace=1)
