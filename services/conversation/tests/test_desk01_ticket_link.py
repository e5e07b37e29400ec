"""DESK-01 (conversation's part): "the ticket number in the chat links to the ticket". The
help desk posts converted_to_ticket with an optional ticket_url; clients get it in
SystemEvent.params to link the number, and the rendered text (ja/en) shows it next to the
number. Only http(s) URLs are taken; without one the message is as before."""

from __future__ import annotations

import grpc
import pytest
from kaiwa.conversation.v1 import conversation_pb2 as pb

from tests.fixtures import auth, status_of


async def tickets(conv, tenant, chat, locale, role="admin", sub="root"):
    listed = await conv.stub.ListMessages(
        pb.ListMessagesRequest(chat_id=chat.id, locale=locale), metadata=auth(tenant, role, sub)
    )
    return [m.system for m in listed.messages if m.system.type == "converted_to_ticket"]


async def test_desk01_the_ticket_number_links_to_the_ticket(conv, tenant):
    chat = await conv.open_chat(tenant)
    desk = auth(tenant, "service", "crm_bridge")
    url = "https://desk.example.jp/tickets/6165?id=2b1c"
    long_url = "https://desk.example.jp/tickets/6166?ref=" + "a" * 500  # URLs may be longer than other params
    for number, link in (("6165", url), ("6166", long_url), ("6167", "")):
        params = {"ticket_number": number} | ({"ticket_url": link} if link else {})
        await conv.stub.PostSystemEvent(
            pb.PostSystemEventRequest(chat_id=chat.id, type="converted_to_ticket", params=params), metadata=desk
        )
    ja = await tickets(conv, tenant, chat, "ja")
    en = await tickets(conv, tenant, chat, "en", role="visitor", sub=chat.visitor_id)
    assert [dict(s.params) for s in en] == [
        {"ticket_number": "6165", "ticket_url": url},
        {"ticket_number": "6166", "ticket_url": long_url},
        {"ticket_number": "6167"},
    ]
    assert [s.rendered for s in ja] == [
        f"チャットをもとに問い合わせが作成されました(問い合わせ番号:6165 {url})",
        f"チャットをもとに問い合わせが作成されました(問い合わせ番号:6166 {long_url})",
        "チャットをもとに問い合わせが作成されました(問い合わせ番号:6167)",
    ]
    assert [s.rendered for s in en] == [
        f"A ticket was created from this chat (ticket number: 6165 {url})",
        f"A ticket was created from this chat (ticket number: 6166 {long_url})",
        "A ticket was created from this chat (ticket number: 6167)",
    ]


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "desk.example.jp/tickets/1",
        "https://desk.example.jp/tickets/1 onclick=x",
        "ftp://desk.example.jp/1",
        "https://",
        "https://desk.example.jp/" + "a" * 2000,
    ],
)
async def test_desk01_a_ticket_url_that_is_not_an_http_url_is_refused(conv, tenant, link):
    chat = await conv.open_chat(tenant)
    request = pb.PostSystemEventRequest(
        chat_id=chat.id, type="converted_to_ticket", params={"ticket_number": "1", "ticket_url": link}
    )
    assert await status_of(conv.stub.PostSystemEvent(request, metadata=auth(tenant, "service", "crm_bridge"))) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert await tickets(conv, tenant, chat, "en") == []
