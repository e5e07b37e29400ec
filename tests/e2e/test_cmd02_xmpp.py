"""CMD-02 end to end: a real prosody (Debian's package, its own config on free ports,
started here), the XMPP bridge as its own process (`python -m kaiwa_conversation.xmpp`),
the five services as processes (suite.py), and slixmpp as the agent's XMPP client:
login as "<portal>|<user name>@<domain>" with the agent's password, the roster
(colleagues and the message board), offers with the visitor's details, y / n, messages
both ways, every command, transfers, the board, and refused logins.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import slixmpp
from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.crm_bridge.v1 import desk_pb2 as desk
from kaiwa.routing.v1 import routing_pb2 as rt

from kaiwa_conversation.xmpp.local_prosody import LocalProsody, free_port
from services.conversation.tests.test_cmd01_commands import World
from tests.e2e.suite import ROOT, Suite
from tests.fixtures import eventually, unexpected_errors

pytestmark = pytest.mark.asyncio(loop_scope="session")

DOMAIN, COMPONENT = "kaiwa.localhost", "chat.kaiwa.localhost"
PASSWORD = "s3cret-pass"
FAILED_LOGIN = "No appropriate login method"  # slixmpp's own error line when the server refuses every mechanism


@pytest.fixture(scope="module")
async def suite():
    async with Suite.start() as running:
        yield running


@pytest.fixture(scope="module")
async def xmpp(suite):
    """prosody and the bridge, wired to the suite's services."""
    secret, auth_port = uuid.uuid4().hex, free_port()
    workdir = Path(tempfile.mkdtemp(prefix="kaiwa-prosody-"))
    prosody = LocalProsody(workdir, DOMAIN, COMPONENT, secret, f"http://127.0.0.1:{auth_port}/auth").start()
    env = dict(suite.env)
    env.update(
        KAIWA_XMPP_DOMAIN=DOMAIN,
        KAIWA_XMPP_COMPONENT=COMPONENT,
        KAIWA_XMPP_SECRET=secret,
        KAIWA_XMPP_SERVER=f"127.0.0.1:{prosody.component_port}",
        KAIWA_XMPP_AUTH_PORT=str(auth_port),
        KAIWA_XMPP_POLL="0.3",
        KAIWA_LOG_LEVEL="INFO",
    )
    log_path = suite.logs / "xmpp.log"
    bridge = subprocess.Popen(
        [sys.executable, "-m", "kaiwa_conversation.xmpp"],
        env=env,
        cwd=ROOT,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
    )
    await eventually(lambda: "xmpp bridge running" in log_path.read_text(errors="replace"), "the bridge runs")
    await eventually(
        lambda: "External component successfully authenticated" in (workdir / "prosody.log").read_text(errors="replace"),
        "prosody accepted the bridge's component",
    )
    try:
        yield prosody
    finally:
        bridge.terminate()
        bridge.wait(15)
        prosody.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        lines = [
            line
            for line in log_path.read_text(errors="replace").splitlines()
            if '"level": "error"' in line or "Traceback" in line
        ]
        errors = unexpected_errors(lines, [])
        assert not errors, "the bridge logged errors:\n" + "\n".join(errors[:10])


# slixmpp cancels its stanza-filter task on disconnect without awaiting it; the clients
# are kept for the whole session so that task is never garbage-collected half-cancelled
# (asyncio would log "Task was destroyed but it is pending").
_CLIENTS: list = []


class XmppAgent:
    """An agent's XMPP client (slixmpp), recording what each contact says."""

    def __init__(self, jid: str, password: str, port: int):
        self.client = slixmpp.ClientXMPP(jid, password, lang="ja")  # the client says: Japanese
        _CLIENTS.append(self.client)
        self.client.ssl_context.check_hostname = False
        self.client.ssl_context.verify_mode = ssl.CERT_NONE
        self.port = port
        self.inbox: list[tuple[str, str]] = []
        self.outcome: asyncio.Future = asyncio.get_running_loop().create_future()
        self.client.add_event_handler("session_start", self._started)
        self.client.add_event_handler("failed_auth", lambda _: self.outcome.done() or self.outcome.set_result(False))
        self.client.add_event_handler("message", self._message)

    async def _started(self, _) -> None:
        await self.client.get_roster()
        self.client.send_presence()
        if not self.outcome.done():
            self.outcome.set_result(True)

    def _message(self, msg) -> None:
        if msg["type"] in ("chat", "normal") and msg["body"]:
            self.inbox.append((msg["from"].bare, msg["body"]))

    async def login(self) -> bool:
        self.client.connect("127.0.0.1", self.port)
        signed_in = await asyncio.wait_for(self.outcome, 30)
        if not signed_in:
            await self.leave()
        return signed_in

    def said(self, local: str) -> list[str]:
        return [body for frm, body in self.inbox if frm == f"{local}@{COMPONENT}"]

    async def next_from(self, local: str, seen: int, what: str) -> str:
        await eventually(lambda: len(self.said(local)) > seen, what)
        return self.said(local)[seen]

    async def ask(self, local: str, text: str, reply: str = "") -> str:
        """Send to a contact and return the first thing it says next that starts with
        `reply` (the chat's own system messages may come in between)."""
        seen = len(self.said(local))
        self.client.send_message(mto=f"{local}@{COMPONENT}", mbody=text, mtype="chat")

        def answer():
            return next((body for body in self.said(local)[seen:] if body.startswith(reply)), None)

        return await eventually(answer, f"{local} answers {text!r} with {reply!r}...")

    async def leave(self) -> None:
        """Sign out and wait until the connection is closed (nothing left running)."""
        await asyncio.wait_for(self.client.disconnect(), 15)


async def _xmpp_login(world: World, name: str, user_name: str) -> None:
    """The agent picks a chat user name (checked first) and an XMPP password."""
    agent = world.as_agent(name)
    check = await world.routing.CheckUserName(rt.CheckUserNameRequest(user_name=user_name), metadata=agent)
    assert (check.available, check.message) == (True, "入力したユーザー名は利用可能です")
    await world.routing.SetUserName(rt.SetUserNameRequest(user_name=user_name), metadata=agent)
    await world.routing.SetAgentPassword(rt.SetAgentPasswordRequest(password=PASSWORD), metadata=agent)
    taken = await world.routing.CheckUserName(rt.CheckUserNameRequest(user_name=user_name), metadata=world.as_agent("carl"))
    assert (taken.available, taken.message) == (False, "入力したユーザー名は利用できません")


@pytest.fixture
async def signed_in(suite, xmpp, tenant):
    world = await World(suite, tenant).setup()
    await _xmpp_login(world, "aiko", "aiko.sato")
    agent = XmppAgent(f"{tenant}|aiko.sato@{DOMAIN}", PASSWORD, xmpp.c2s_port)
    assert await agent.login()

    async def bridged() -> bool:  # the bridge took the presence: the agent's session is up
        got = await world.routing.GetAgent(rt.GetAgentRequest(agent_id=world.agents["aiko"].id), metadata=world.admin)
        return got.availability == rt.AVAILABILITY_ONLINE

    await eventually(bridged, "the bridge signs the agent in")
    yield world, agent
    if agent.client.is_connected():
        await agent.leave()


@pytest.mark.expected_error_logs(FAILED_LOGIN)
async def test_cmd02_wrong_password_and_another_portal_are_refused(suite, xmpp, tenant):
    world = await World(suite, tenant).setup()
    await _xmpp_login(world, "aiko", "aiko.sato")
    other = await World(suite, f"{tenant}-other").setup()
    for jid, password in (
        (f"{tenant}|aiko.sato@{DOMAIN}", "wrong-password"),
        (f"{tenant}-other|aiko.sato@{DOMAIN}", PASSWORD),  # another tenant's portal
        (f"{tenant}|nobody.here@{DOMAIN}", PASSWORD),
        (f"aiko.sato@{DOMAIN}", PASSWORD),  # no portal
    ):
        assert not await XmppAgent(jid, password, xmpp.c2s_port).login(), jid
    assert other.tenant != world.tenant
    backslash = XmppAgent(f"{tenant}\\aiko.sato@{DOMAIN}", PASSWORD, xmpp.c2s_port)
    assert await backslash.login(), "a backslash works as the portal separator too"
    await backslash.leave()


async def test_cmd02_roster_has_colleagues_and_the_message_board(signed_in):
    world, agent = signed_in
    wanted = {f"board@{COMPONENT}", f"agent-{world.agents['ben'].id}@{COMPONENT}", f"agent-{world.agents['carl'].id}@{COMPONENT}"}

    def in_roster():
        roster = agent.client.client_roster
        return wanted <= {jid for jid in roster if roster[jid]["subscription"] in ("from", "to", "both")}

    await eventually(in_roster, "colleagues and the board are in the roster")
    assert f"agent-{world.agents['aiko'].id}@{COMPONENT}" not in agent.client.client_roster


async def test_cmd02_offer_arrives_and_y_accepts_then_messages_flow_both_ways(signed_in):
    world, agent = signed_in
    chat, visitor = await world.new_chat(visitor_name="山田太郎", question="配送について")
    local = f"chat-{chat.id}"
    offer = await agent.next_from(local, 0, "the offer arrives")
    assert "山田太郎" in offer and chat.visitor_id in offer and "件名: 配送について" in offer and "部門: Sales" in offer
    accepted = await agent.ask(local, "y", "チャットを承諾しました")
    for line in ("国: United States", "ブラウザー: Chrome 126.0", "IPアドレス: 8.8.8.8"):
        assert line in accepted.splitlines()
    await world.held_by(chat.id, "aiko")

    seen = len(agent.said(local))
    await world.conversation.SendMessage(conv.SendMessageRequest(chat_id=chat.id, text="いつ届きますか？"), metadata=visitor)
    await eventually(lambda: "いつ届きますか？" in agent.said(local)[seen:], "the visitor's message reaches the agent")
    agent.client.send_message(mto=f"{local}@{COMPONENT}", mbody="明日お届けします", mtype="chat")

    async def visitor_sees():
        messages = await world.messages(chat.id, visitor)
        return any(m.text == "明日お届けします" and m.sender_kind == conv.SENDER_KIND_AGENT for m in messages)

    await eventually(visitor_sees, "the agent's reply reaches the visitor")


async def test_cmd02_n_declines_an_offer(signed_in):
    world, agent = signed_in
    chat, _ = await world.new_chat()
    await agent.next_from(f"chat-{chat.id}", 0, "the offer arrives")
    await agent.ask(f"chat-{chat.id}", "n", "チャットを辞退しました")
    offers = await world.routing.ListOffers(rt.ListOffersRequest(), metadata=world.as_agent("aiko"))
    assert chat.id not in [o.chat_id for o in offers.offers]


async def test_cmd02_every_command_through_xmpp(signed_in):
    world, agent = signed_in
    await world.crm.SetDeskDepartment(
        desk.SetDeskDepartmentRequest(department_id=world.sales.id, conversion_enabled=True), metadata=world.admin
    )
    email = f"x-{uuid.uuid4().hex[:6]}@example.com"
    chat, visitor = await world.new_chat(email=email)
    local = f"chat-{chat.id}"
    await agent.next_from(local, 0, "the offer arrives")
    await agent.ask(local, "y", "チャットを承諾しました")
    await world.held_by(chat.id, "aiko")
    expected_first_lines = [
        ("#help", "すべてのコマンド:"),
        ("#help misc", "その他のコマンド:"),
        ("#help support", "サポートのコマンド:"),
        ("#help crm", "CRMのコマンド:"),
        ("#info", "名前: Taro"),
        ("#an お客様が追加購入を検討しています", "メモが追加されました"),
        ("#n", "20"),
        ("#h", "--- "),
        ("#d", "部門:"),
        ("#m", "チャットのメンバー:"),
        ("#p https://taskerpro.cleaning.zillium.com", "ページを訪問者に送信しました"),
        ("#crm info", "この訪問者のCRM情報はありません"),
        ("#support info", "この訪問者のサポート情報はありません"),
        ("#support ticketinfo", "この訪問者の情報はありません"),
        ("#support recentreq", "この訪問者の最近の問い合わせはありません"),
        ("#support conasreq 112", "問い合わせを作成しました"),
        ("#support searchreq " + email, "#"),
        ("#support setreqstatus close", "問い合わせ "),
        ("#support setreqstatus open", "問い合わせ "),
        ("#e 30", "サポートは30秒後に終了します"),
        ("#e cancel", "サポート終了を中断しました"),
        ("#i carl@example.com", "carl@example.comをチャットに招待しました"),
        ("#e 99", "使い方: #e [30|45|60|90|cancel]"),
        ("#xyz", "不明なコマンドです: #xyz"),
    ]
    for line, first in expected_first_lines:
        reply = await agent.ask(local, line, first or "")
        if line == "#n":
            assert reply.endswith("Aiko: お客様が追加購入を検討しています"), reply
    ticket = await world.crm.GetTicket(desk.GetTicketRequest(chat_id=chat.id), metadata=world.admin)
    second, _ = await world.new_chat(email=email)
    await agent.next_from(f"chat-{second.id}", 0, "the second offer arrives")
    await agent.ask(f"chat-{second.id}", "y", "チャットを承諾しました")
    await world.held_by(second.id, "aiko")
    await agent.ask(f"chat-{second.id}", f"#support associate {ticket.number}", f"チャットを問い合わせ {ticket.number}")
    await agent.ask(f"chat-{second.id}", "#t ben@example.com お願いします", "ben@example.comへの転送を依頼しました")
    await agent.ask(local, "#b 不正な利用", "IPアドレスをブロックしました")
    await agent.ask(local, "#e", "チャットを終了しました")
    assert (await world.get(chat.id)).state == conv.CHAT_STATE_ENDED
    assert "visitor_blocked" in await world.system_types(chat.id)


async def test_cmd02_transfer_to_the_xmpp_agent_and_y_accepts(signed_in):
    world, agent = signed_in
    chat, _ = await world.new_chat(visitor_name="Hanako")
    reply = await world.cmd("ben", chat.id, "y")  # ben (in the web console) takes it, then hands it over
    assert reply.outcome == conv.COMMAND_OUTCOME_DONE
    await world.held_by(chat.id, "ben")
    handed = await world.cmd("ben", chat.id, "#t aiko@example.com VIPのお客様です")
    assert handed.outcome == conv.COMMAND_OUTCOME_DONE
    local = f"chat-{chat.id}"

    async def transfer_message():
        return next((body for body in agent.said(local) if "転送されました" in body), None)

    body = await eventually(transfer_message, "the transfer reaches the XMPP agent")
    assert "Ben" in body and "Hanako" in body and "VIPのお客様です" in body
    await agent.ask(local, "y", "転送を承諾しました")
    await world.held_by(chat.id, "aiko")


async def test_cmd02_message_board_and_direct_messages(signed_in):
    world, agent = signed_in
    await world.routing.SendTeamMessage(rt.SendTeamMessageRequest(text="本日は15時に会議です"), metadata=world.as_agent("ben"))
    assert await agent.next_from("board", 0, "the board post arrives") == "(Ben) 本日は15時に会議です"
    agent.client.send_message(mto=f"board@{COMPONENT}", mbody="了解しました", mtype="chat")
    ben = world.agents["ben"]
    agent.client.send_message(mto=f"agent-{ben.id}@{COMPONENT}", mbody="少し相談できますか", mtype="chat")

    async def ben_sees_both():
        board = await world.routing.ListTeamMessages(rt.ListTeamMessagesRequest(board=True), metadata=world.as_agent("ben"))
        direct = await world.routing.ListTeamMessages(
            rt.ListTeamMessagesRequest(with_agent_id=world.agents["aiko"].id), metadata=world.as_agent("ben")
        )
        return "了解しました" in [m.text for m in board.messages] and "少し相談できますか" in [m.text for m in direct.messages]

    await eventually(ben_sees_both, "ben reads the board post and the direct message")
    await world.routing.SendTeamMessage(
        rt.SendTeamMessageRequest(to_agent_id=world.agents["aiko"].id, text="どうぞ"), metadata=world.as_agent("ben")
    )
    assert await agent.next_from(f"agent-{ben.id}", 0, "ben's direct message arrives") == "どうぞ"


async def test_cmd02_presence_sets_availability(signed_in):
    world, agent = signed_in

    async def availability(state):
        got = await world.routing.GetAgent(rt.GetAgentRequest(agent_id=world.agents["aiko"].id), metadata=world.admin)
        return got.availability == state

    agent.client.send_presence(pshow="away")
    await eventually(lambda: availability(rt.AVAILABILITY_AWAY), "away in XMPP is away in Kaiwa")
    agent.client.send_presence()
    await eventually(lambda: availability(rt.AVAILABILITY_ONLINE), "back online")
    await agent.leave()
    await eventually(lambda: availability(rt.AVAILABILITY_OFFLINE), "signing out is offline")


async def test_cmd02_prosody_runs_unprivileged(xmpp):
    """prosody refuses to run as root: the tests start it as its own user when they are root."""
    owner = os.stat(f"/proc/{xmpp.proc.pid}").st_uid
    assert owner != 0 or os.geteuid() != 0
