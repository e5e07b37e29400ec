"""CMD-01 through the conversation service's gRPC API (RunCommand, and an agent's "#..."
SendMessage), with every service a command calls running for real: the five services as
their own processes (tests/e2e/suite.py), sharing PostgreSQL and NATS, so routing's
offers, transfers and invitations, the visitor service's blocks and profiles, and
crm_bridge's CRM and tickets all answer as in production.
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as crm
from kaiwa.crm_bridge.v1 import desk_pb2 as desk
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub
from kaiwa.routing.v1 import routing_pb2 as rt
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub
from kaiwa.visitor.v1 import visitor_pb2 as vis
from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

from tests.e2e.suite import Suite
from tests.fixtures import auth, eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

DONE, USAGE, REFUSED = conv.COMMAND_OUTCOME_DONE, conv.COMMAND_OUTCOME_USAGE, conv.COMMAND_OUTCOME_REFUSED
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"


@pytest.fixture(scope="module")
async def suite():
    async with Suite.start() as running:
        yield running


class World:
    """One tenant: departments Sales and VIPサポート, three online agents (aiko and carl in
    Sales, ben in both), and visitors who chat from 8.8.8.8 with Chrome."""

    def __init__(self, suite: Suite, tenant: str):
        self.tenant = tenant
        self.admin = auth(tenant, "admin", "root")
        self.service = auth(tenant, "service", "gateway")
        self.routing = RoutingServiceStub(suite.channel("routing"))
        self.conversation = ConversationServiceStub(suite.channel("conversation"))
        self.visitor = VisitorServiceStub(suite.channel("visitor"))
        self.crm = CrmBridgeServiceStub(suite.channel("crm_bridge"))
        self.agents: dict[str, rt.Agent] = {}

    async def setup(self) -> "World":
        self.sales = await self.routing.UpsertDepartment(rt.UpsertDepartmentRequest(name="Sales"), metadata=self.admin)
        self.vip = await self.routing.UpsertDepartment(rt.UpsertDepartmentRequest(name="VIPサポート"), metadata=self.admin)
        for name, departments in (("aiko", [self.sales.id]), ("ben", [self.sales.id, self.vip.id]), ("carl", [self.sales.id])):
            agent = await self.routing.UpsertAgent(
                rt.UpsertAgentRequest(email=f"{name}@example.com", name=name.title(), department_ids=departments, max_chats=5),
                metadata=self.admin,
            )
            self.agents[name] = agent
            await self.routing.SetAvailability(
                rt.SetAvailabilityRequest(availability=rt.AVAILABILITY_ONLINE), metadata=self.as_agent(name)
            )
        self.key = (await self.visitor.CreateWidgetKey(vis.CreateWidgetKeyRequest(label="site"), metadata=self.admin)).key
        return self

    def as_agent(self, name: str):
        return auth(self.tenant, "agent", self.agents[name].id)

    async def cmd(self, name: str, chat_id: str, text: str, locale: str = "ja") -> conv.CommandReply:
        request = conv.RunCommandRequest(chat_id=chat_id, text=text, locale=locale)
        return await self.conversation.RunCommand(request, metadata=self.as_agent(name))

    async def new_chat(self, visitor_name: str = "Taro", email: str = "taro@example.com", question: str = "配送について"):
        """A tracked visitor starts a chat in Sales; it is offered to the agents."""
        issued = await self.visitor.IssueVisitorToken(vis.IssueVisitorTokenRequest(widget_key=self.key))
        page = vis.TrackPageViewRequest(
            visitor_id=issued.visitor_id, url="https://shop.example.com/pricing", title="Pricing", user_agent=CHROME, ip="8.8.8.8"
        )
        await self.visitor.TrackPageView(page, metadata=self.service)
        chat = await self.conversation.StartChat(
            conv.StartChatRequest(
                channel=conv.CHANNEL_WEB,
                department_id=self.sales.id,
                question=question,
                visitor_name=visitor_name,
                visitor_email=email,
                visitor_id=issued.visitor_id,
            ),
            metadata=self.service + (("x-forwarded-for", "8.8.8.8"),),
        )
        await self.offered("aiko", chat.id)
        return chat, (("authorization", f"Bearer {issued.token}"),)

    async def offered(self, name: str, chat_id: str) -> None:
        async def seen():
            offers = await self.routing.ListOffers(rt.ListOffersRequest(), metadata=self.as_agent(name))
            return chat_id in [o.chat_id for o in offers.offers]

        await eventually(seen, f"chat {chat_id} offered to {name}")

    async def open_chat(self, **fields):
        """A chat aiko accepted with "y"."""
        chat, visitor = await self.new_chat(**fields)
        reply = await self.cmd("aiko", chat.id, "y")
        assert reply.outcome == DONE, reply.text
        await self.held_by(chat.id, "aiko")
        return chat, visitor

    async def get(self, chat_id: str) -> conv.Chat:
        return await self.conversation.GetChat(conv.GetChatRequest(chat_id=chat_id), metadata=self.admin)

    async def held_by(self, chat_id: str, name: str) -> None:
        async def held():
            chat = await self.get(chat_id)
            return chat.state == conv.CHAT_STATE_OPEN and chat.agent_id == self.agents[name].id

        await eventually(held, f"chat {chat_id} open with {name}")

    async def messages(self, chat_id: str, md, locale: str = "ja") -> list[conv.Message]:
        reply = await self.conversation.ListMessages(conv.ListMessagesRequest(chat_id=chat_id, locale=locale), metadata=md)
        return list(reply.messages)

    async def system_types(self, chat_id: str) -> list[str]:
        return [m.system.type for m in await self.messages(chat_id, self.admin) if m.system.type]


@pytest.fixture
async def world(suite, tenant) -> World:
    return await World(suite, tenant).setup()


async def test_cmd01_y_accepts_the_offer_and_shows_the_visitor_details(world):
    chat, _ = await world.new_chat(visitor_name="山田太郎", question="配送について")
    reply = await world.cmd("aiko", "", "y")  # the only offer waiting: no chat id needed
    assert reply.outcome == DONE and reply.chat_id == chat.id and reply.command == "y"
    assert reply.lines[0] == "チャットを承諾しました"
    for line in ("名前: 山田太郎", f"訪問者の番号: {chat.visitor_id}", "件名: 配送について", "部門: Sales"):
        assert line in reply.lines
    assert "IPアドレス: 8.8.8.8" in reply.lines
    assert "ブラウザー: Chrome 126.0" in reply.lines
    assert any(line.startswith("国: ") and "United States" in line for line in reply.lines), reply.lines
    await world.held_by(chat.id, "aiko")


async def test_cmd01_n_declines_the_offer_and_y_without_an_offer_is_refused(world):
    chat, _ = await world.new_chat()
    reply = await world.cmd("aiko", chat.id, "N", locale="en")
    assert (reply.outcome, reply.lines) == (DONE, ["Chat declined"])
    offers = await world.routing.ListOffers(rt.ListOffersRequest(), metadata=world.as_agent("aiko"))
    assert chat.id not in [o.chat_id for o in offers.offers]
    again = await world.cmd("aiko", chat.id, "y")
    assert (again.outcome, again.lines) == (REFUSED, ["このチャットで回答を待っている依頼や転送はありません"])
    assert (await world.get(chat.id)).state == conv.CHAT_STATE_QUEUED


async def test_cmd01_help_lists_the_commands_by_topic(world):
    everything = await world.cmd("aiko", "", "#help")
    assert everything.outcome == DONE and everything.lines[0] == "すべてのコマンド:"
    assert any(line.startswith("#support conasreq") for line in everything.lines)
    crm_help = await world.cmd("aiko", "", "#help crm", locale="en")
    assert crm_help.lines == ["CRM commands:", "#crm info - the visitor's CRM information"]
    support = await world.cmd("aiko", "", "#help support")
    assert support.lines[0] == "サポートのコマンド:" and len(support.lines) == 8
    misc = await world.cmd("aiko", "", "#help misc")
    assert misc.lines[0] == "その他のコマンド:" and any(line.startswith("#e cancel") for line in misc.lines)


async def test_cmd01_transfer_to_agent_with_note_and_the_target_accepts_with_y(world):
    chat, _ = await world.open_chat()
    reply = await world.cmd("aiko", chat.id, "#t ben@example.com 大口のお客様です")
    assert (reply.outcome, reply.lines, reply.command) == (
        DONE,
        ["ben@example.comへの転送を依頼しました"],
        "#t ben@example.com 大口のお客様です",
    )
    answered = await world.cmd("ben", chat.id, "y")
    assert answered.outcome == DONE and answered.lines[0] == "転送を承諾しました"
    assert "名前: Taro" in answered.lines
    await world.held_by(chat.id, "ben")

    async def noted():
        texts = [m.system.rendered for m in await world.messages(chat.id, world.as_agent("ben"))]
        return any("大口のお客様です" in t for t in texts)

    await eventually(noted, "the transfer note is in the chat for agents")


async def test_cmd01_transfer_to_department_with_note_declined_with_n(world):
    chat, visitor = await world.open_chat()
    reply = await world.cmd("aiko", chat.id, '#t "VIPサポート" 契約の相談です', locale="en")
    assert (reply.outcome, reply.lines) == (DONE, ["Transfer to VIPサポート requested"])
    assert reply.command == '#t "VIPサポート" 契約の相談です'
    declined = await world.cmd("ben", chat.id, "n")
    assert (declined.outcome, declined.lines) == (DONE, ["転送を辞退しました"])

    async def shown_under_the_note():
        return "transfer_declined" in await world.system_types(chat.id)

    await eventually(shown_under_the_note, "the decline is shown under the note")
    assert (await world.get(chat.id)).agent_id == world.agents["aiko"].id
    texts = [m.system.rendered for m in await world.messages(chat.id, visitor)]
    assert not any("契約の相談です" in t for t in texts), "transfer notes are for agents only"


async def test_cmd01_transfer_refusals_come_from_routing(world):
    chat, _ = await world.open_chat()
    unknown = await world.cmd("aiko", chat.id, "#t nobody@example.com", locale="en")
    assert unknown.outcome == REFUSED and unknown.lines[0].startswith("Not done: ") and "nobody@example.com" in unknown.lines[0]
    department = await world.cmd("aiko", chat.id, '#t "Nowhere"')
    assert department.outcome == REFUSED and "Nowhere" in department.lines[0]


async def test_cmd01_invite_and_members(world):
    chat, _ = await world.open_chat()
    reply = await world.cmd("aiko", chat.id, "#i carl@example.com 見てください")
    assert (reply.outcome, reply.lines) == (DONE, ["carl@example.comをチャットに招待しました"])

    async def both():
        members = await world.cmd("carl", chat.id, "#m", locale="en")  # the invited agent may run it too
        return members if members.outcome == DONE and len(members.lines) == 3 else None

    members = await eventually(both, "carl is a member")
    assert members.lines == [
        "Members of the chat:",
        "Aiko <aiko@example.com> owner online",
        "Carl <carl@example.com> participant online",
    ]
    again = await world.cmd("aiko", chat.id, "#i carl@example.com")
    assert again.outcome == REFUSED and "already" in again.lines[0]


async def test_cmd01_info_departments_notes_and_history(world):
    chat, visitor = await world.open_chat(visitor_name="Hanako", email="hanako@example.com", question="返品について")
    await world.conversation.SendMessage(conv.SendMessageRequest(chat_id=chat.id, text="返品したいです"), metadata=visitor)
    await world.conversation.SendMessage(
        conv.SendMessageRequest(chat_id=chat.id, text="承知しました"), metadata=world.as_agent("aiko")
    )

    info = await world.cmd("aiko", chat.id, "#info", locale="en")
    assert info.outcome == DONE
    for line in ("Name: Hanako", "E-mail: hanako@example.com", "Subject: 返品について", "IP address: 8.8.8.8"):
        assert line in info.lines
    assert "Page: https://shop.example.com/pricing" in info.lines

    departments = await world.cmd("aiko", "", "#d")
    assert departments.lines == ["部門:", "Sales", "VIPサポート"]

    assert (await world.cmd("aiko", chat.id, "#n")).lines == ["この訪問者のメモはありません"]
    added = await world.cmd("aiko", chat.id, "#an お客様が追加購入を検討しています")
    assert (added.outcome, added.lines) == (DONE, ["メモが追加されました"])
    listed = await world.cmd("aiko", chat.id, "#n")
    assert len(listed.lines) == 1 and listed.lines[0].endswith(" Aiko: お客様が追加購入を検討しています")
    notes = await world.conversation.ListNotes(conv.ListNotesRequest(visitor_id=chat.visitor_id), metadata=world.admin)
    assert [n.text for n in notes.notes] == ["お客様が追加購入を検討しています"]

    history = await world.cmd("aiko", chat.id, "#h")
    assert history.lines[0].startswith("--- ") and "(Hanako) 返品したいです" in history.lines
    assert "(Aiko) 承知しました" in history.lines
    assert "(システム) Aikoがチャットを承諾しました" in history.lines


async def test_cmd01_block_visitor(world):
    chat, visitor = await world.open_chat()
    reply = await world.cmd("aiko", chat.id, "#b 不正な利用")
    assert (reply.outcome, reply.lines) == (DONE, ["IPアドレスをブロックしました"])
    blocks = await world.visitor.ListBlocks(vis.ListBlocksRequest(), metadata=world.admin)
    assert [(b.network, b.reason, b.blocked_by, b.chat_id) for b in blocks.blocks] == [
        ("8.8.8.8/32", "不正な利用", world.agents["aiko"].id, chat.id)
    ]

    async def applied():
        return "visitor_blocked" in await world.system_types(chat.id)

    await eventually(applied, "conversation applied the block")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await world.conversation.SendMessage(conv.SendMessageRequest(chat_id=chat.id, text="hello?"), metadata=visitor)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    rendered = [m.system.rendered for m in await world.messages(chat.id, world.admin) if m.system.type == "visitor_blocked"]
    assert rendered == ["Aikoが利用者をブロックしました"]


async def test_cmd01_push_page_asks_the_visitor_before_it_opens(world):
    chat, visitor = await world.open_chat()
    reply = await world.cmd("aiko", chat.id, "#p https://taskerpro.cleaning.zillium.com")
    assert reply.outcome == DONE and reply.lines[0].endswith(": https://taskerpro.cleaning.zillium.com")
    pushed = [m for m in await world.messages(chat.id, visitor) if m.system.type == "page_pushed"]
    assert len(pushed) == 1
    assert dict(pushed[0].system.params) == {"url": "https://taskerpro.cleaning.zillium.com", "agent_name": "Aiko"}
    assert pushed[0].system.rendered == (
        "Aikoがページを共有しました。新しいウィンドウで開きますか？ https://taskerpro.cleaning.zillium.com"
    )
    bad = await world.cmd("aiko", chat.id, "#p javascript:alert(1)")
    assert bad.outcome == USAGE


async def test_cmd01_end_countdown_cancel_and_end_now(world):
    chat, visitor = await world.open_chat()
    counting = await world.cmd("aiko", chat.id, "#e 30")
    assert (counting.outcome, counting.lines) == (DONE, ["サポートは30秒後に終了します"])
    assert (await world.get(chat.id)).HasField("countdown_ends_at")
    types = [m.system.type for m in await world.messages(chat.id, visitor)]
    assert "countdown_started" in types, "the visitor sees the countdown"
    cancelled = await world.cmd("aiko", chat.id, "#e cancel")
    assert (cancelled.outcome, cancelled.lines) == (DONE, ["サポート終了を中断しました"])
    assert not (await world.get(chat.id)).HasField("countdown_ends_at")
    nothing = await world.cmd("aiko", chat.id, "#e cancel", locale="en")
    assert nothing.outcome == REFUSED and "no end countdown is running" in nothing.lines[0]
    ended = await world.cmd("aiko", chat.id, "#e", locale="en")
    assert (ended.outcome, ended.lines) == (DONE, ["Chat ended"])
    assert (await world.get(chat.id)).state == conv.CHAT_STATE_ENDED


async def test_cmd01_crm_info(world):
    chat, _ = await world.open_chat(email="lead@example.com")
    none = await world.cmd("aiko", chat.id, "#crm info")
    assert (none.outcome, none.lines) == (DONE, ["この訪問者のCRM情報はありません"])
    await world.crm.UpsertRecord(
        crm.UpsertRecordRequest(
            type=crm.RECORD_TYPE_LEAD,
            email="lead@example.com",
            name="Lead Person",
            fields={"company": "Zillium", "phone": "03-1234-5678"},
        ),
        metadata=world.admin,
    )
    found = await world.cmd("aiko", chat.id, "#crm info", locale="en")
    assert found.outcome == DONE and found.lines[0] == "CRM: lead Lead Person <lead@example.com>"
    assert any("Zillium" in line for line in found.lines[1:]) and any("03-1234-5678" in line for line in found.lines[1:])


async def test_cmd01_support_commands(world):
    await world.crm.SetDeskDepartment(
        desk.SetDeskDepartmentRequest(department_id=world.sales.id, conversion_enabled=True), metadata=world.admin
    )
    email = f"desk-{uuid.uuid4().hex[:6]}@example.com"
    chat, _ = await world.open_chat(email=email, question="パスワードがリセットされません")
    assert (await world.cmd("aiko", chat.id, "#support info")).lines == ["この訪問者のサポート情報はありません"]
    assert (await world.cmd("aiko", chat.id, "#support ticketinfo")).lines == ["この訪問者の情報はありません"]
    assert (await world.cmd("aiko", chat.id, "#support recentreq")).lines == ["この訪問者の最近の問い合わせはありません"]

    converted = await world.cmd("aiko", chat.id, "#support conasreq 112", locale="en")
    assert converted.outcome == DONE and converted.lines[0].startswith("Ticket created (number ")
    assert converted.lines[1].endswith("[on_hold] priority: low category: problem")
    ticket = await world.crm.GetTicket(desk.GetTicketRequest(chat_id=chat.id), metadata=world.admin)
    assert (ticket.priority, ticket.status, ticket.category, ticket.created_by) == (1, 1, 2, world.agents["aiko"].id)

    info = await world.cmd("aiko", chat.id, "#support ticketinfo")
    assert info.lines == [f"#{ticket.number} パスワードがリセットされません [on_hold] 優先度:low 分類:problem"]
    assert (await world.cmd("aiko", chat.id, "#support recentreq")).lines == info.lines
    assert (await world.cmd("aiko", chat.id, "#support info")).lines == ["問い合わせ: 1件(未完了 1件)", info.lines[0]]
    for query in (email, str(ticket.number)):
        assert (await world.cmd("aiko", chat.id, f"#support searchreq {query}")).lines == info.lines
    assert (await world.cmd("aiko", chat.id, "#support searchreq nobody-here")).lines == ["該当する問い合わせはありません"]

    closed = await world.cmd("aiko", chat.id, "#support setreqstatus close", locale="en")
    assert closed.lines == [f"Ticket {ticket.number} is now closed"]
    reopened = await world.cmd("aiko", chat.id, "#support setreqstatus open", locale="en")
    assert reopened.lines == [f"Ticket {ticket.number} is now open"]

    second, _ = await world.open_chat(email=email)
    associated = await world.cmd("aiko", second.id, f"#support associate {ticket.number}")
    assert (associated.outcome, associated.lines) == (DONE, [f"チャットを問い合わせ {ticket.number} に関連付けました"])
    ticket = await world.crm.GetTicket(desk.GetTicketRequest(ticket=ticket.id), metadata=world.admin)
    assert second.id in ticket.chat_ids
    missing = await world.cmd("aiko", second.id, "#support associate 999999")
    assert missing.outcome == REFUSED


async def test_cmd01_malformed_and_unknown_commands_get_a_usage_line_and_change_nothing(world):
    chat, _ = await world.open_chat()
    before = (await world.get(chat.id)).last_seq
    cases = {
        "#t": '使い方: #t <メールアドレス> [メモ] または #t "<部門名>" [メモ]',
        "#t not-an-email": '使い方: #t <メールアドレス> [メモ] または #t "<部門名>" [メモ]',
        '#i "Sales"': "使い方: #i <メールアドレス> [メモ]",
        "#b": "使い方: #b <ブロックの理由>",
        "#an": "使い方: #an <メモ>",
        "#e 20": "使い方: #e [30|45|60|90|cancel]",
        "#info now": "使い方: #info",
        "#crm": "使い方: #crm info",
        "#support conasreq 9": "使い方: #support conasreq <優先度 0-3><ステータス 0-3><分類 0-4>(例: #support conasreq 112)",
    }
    for line, usage in cases.items():
        reply = await world.cmd("aiko", chat.id, line)
        assert (reply.outcome, reply.lines, reply.command) == (USAGE, [usage], ""), line
    unknown = await world.cmd("aiko", chat.id, "#xyz 1", locale="en")
    assert unknown.outcome == USAGE and unknown.lines[0] == "Unknown command: #xyz 1 (#help lists them)"
    needs_chat = await world.cmd("aiko", "", "#info", locale="en")
    assert (needs_chat.outcome, needs_chat.lines) == (USAGE, ["Type this command in a chat's window"])
    assert (await world.get(chat.id)).last_seq == before


async def test_cmd01_a_command_in_a_chat_the_agent_is_not_in_is_refused(world):
    chat, _ = await world.open_chat()
    before = (await world.get(chat.id)).last_seq
    for line in ("#info", "#an メモ", "#e", "#b spam", "#support conasreq 112"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await world.cmd("carl", chat.id, line)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "you are not in this chat" in refused.value.details()
    await world.cmd("aiko", chat.id, "#i ben@example.com")

    async def invited():
        return (await world.cmd("ben", chat.id, "#m")).outcome == DONE

    await eventually(invited, "ben is in the chat")
    with pytest.raises(grpc.aio.AioRpcError) as owner_only:
        await world.cmd("ben", chat.id, "#t carl@example.com")
    assert owner_only.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "only the agent who has this chat" in owner_only.value.details()
    notes = await world.conversation.ListNotes(conv.ListNotesRequest(visitor_id=chat.visitor_id), metadata=world.admin)
    assert not notes.notes
    blocks = await world.visitor.ListBlocks(vis.ListBlocksRequest(), metadata=world.admin)
    assert not blocks.blocks
    types = await world.system_types(chat.id)
    assert "ended" not in types and (await world.get(chat.id)).last_seq >= before


async def test_cmd01_agent_hash_lines_in_send_message_are_private_replies_and_visitors_hash_is_a_message(world):
    chat, visitor = await world.open_chat()
    before = (await world.get(chat.id)).last_seq
    reply = await world.conversation.SendMessage(
        conv.SendMessageRequest(chat_id=chat.id, text="#an 電話で連絡済み", locale="ja"), metadata=world.as_agent("aiko")
    )
    assert (reply.seq, reply.kind, reply.sender_kind) == (0, conv.MESSAGE_KIND_SYSTEM, conv.SENDER_KIND_SYSTEM)
    assert reply.system.type == "command_reply" and reply.text == "メモが追加されました" == reply.system.rendered
    assert dict(reply.system.params) == {"outcome": "done", "command": "#an 電話で連絡済み"}
    usage = await world.conversation.SendMessage(
        conv.SendMessageRequest(chat_id=chat.id, text="#e soon", locale="en"), metadata=world.as_agent("aiko")
    )
    assert usage.system.params["outcome"] == "usage" and usage.text == "Usage: #e [30|45|60|90|cancel]"
    assert (await world.get(chat.id)).last_seq == before, "commands never reach the chat"

    escaped = await world.conversation.SendMessage(
        conv.SendMessageRequest(chat_id=chat.id, text="##1 優先でご案内します"), metadata=world.as_agent("aiko")
    )
    assert escaped.seq > before and escaped.text == "#1 優先でご案内します"
    typed = await world.conversation.SendMessage(conv.SendMessageRequest(chat_id=chat.id, text="#t a@b.co"), metadata=visitor)
    assert typed.seq > 0 and typed.text == "#t a@b.co" and typed.sender_kind == conv.SENDER_KIND_VISITOR
    seen = [m.text for m in await world.messages(chat.id, visitor) if m.kind == conv.MESSAGE_KIND_TEXT]
    assert seen == ["配送について", "#1 優先でご案内します", "#t a@b.co"]
    with pytest.raises(grpc.aio.AioRpcError) as not_staff:
        await world.conversation.RunCommand(conv.RunCommandRequest(chat_id=chat.id, text="#info"), metadata=visitor)
    assert not_staff.value.code() == grpc.StatusCode.PERMISSION_DENIED
