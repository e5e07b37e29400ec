"""CMD-02: the XMPP bridge (an XEP-0114 component; `python -m kaiwa_conversation.xmpp`).

    agent's XMPP client ──c2s──▶ XMPP server (prosody) ──component──▶ this bridge ──gRPC──▶ Kaiwa
                                   │ mod_auth_kaiwa.lua
                                   └──HTTP (loopback, shared secret)──▶ auth_http.py ──▶ routing VerifyAgentLogin

Login: "<portal>|<user name>@<domain>" (or "\\" for "|") and the agent's XMPP password;
the portal is the tenant, so another portal's name finds no such agent. A good login
starts the agent's session (session.py): colleagues and the message board ask to join the
roster, offers, transfers and chats arrive as messages. The bridge trusts the "from" of
stanzas the server routes (the server authenticated them), so after a restart a session
is found again from the user name (routing GetAgentLogin, service token). The bridge
mints the agent's token (KAIWA_JWT_SECRET or KAIWA_JWT_PRIVATE_KEY, like the services).
"""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
import slixmpp
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.routing.v1 import routing_pb2 as rt
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

from kaiwa_common.auth import mint_token
from kaiwa_common.config import Settings
from kaiwa_common.logs import setup_logging
from kaiwa_routing.domain.logins import split_login

from . import auth_http
from .config import XmppSettings
from .session import DEADLINE, AgentSession
from .texts import lang_of

log = logging.getLogger("kaiwa.xmpp")

TOKEN_TTL = 24 * 3600  # streams keep the token they started with


class Kaiwa:
    """gRPC stubs of the services the bridge calls, and the tokens it calls them with."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.channels = [grpc.aio.insecure_channel(settings.address(s)) for s in ("routing", "conversation")]
        self.routing = RoutingServiceStub(self.channels[0])
        self.conversation = ConversationServiceStub(self.channels[1])

    def service_metadata(self, tenant: str):
        return (("authorization", f"Bearer {mint_token(self.settings, tenant, 'service', 'xmpp-bridge', 300)}"),)

    def agent_metadata(self, tenant: str, agent_id: str):
        return (("authorization", f"Bearer {mint_token(self.settings, tenant, 'agent', agent_id, TOKEN_TTL)}"),)

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


class Bridge(slixmpp.ComponentXMPP):
    def __init__(self, settings: XmppSettings, kaiwa: Kaiwa):
        host, port = settings.server_address
        super().__init__(settings.component, settings.secret, host, port)
        self.settings = settings
        self.kaiwa = kaiwa
        self.default_locale = lang_of("", settings.locale)
        self.sessions: dict[str, AgentSession] = {}
        # The last team message relayed to each (tenant, agent): a new session of the same
        # agent (a client that signs out and in again at once) resumes after it, so a post
        # sent in between is not taken for one already seen.
        self.team_seen: dict[tuple[str, str], int] = {}
        self.names: dict[tuple[str, str], str] = {}  # (tenant, agent id) -> name, as chats show them
        self._locks: dict[str, asyncio.Lock] = {}
        self.register_plugin("xep_0172")  # nicknames with subscription requests
        self.del_event_handler("presence_probe", self._handle_probe)
        self.add_event_handler("message", self._on_message)
        self.add_event_handler("presence_subscribe", self._on_subscribe)
        self.add_event_handler("presence_probe", self._on_probe)
        self.add_event_handler("presence_available", self._on_available)
        self.add_event_handler("presence_unavailable", self._on_unavailable)
        self.add_event_handler("changed_status", self._on_available)

    # --- logins ---------------------------------------------------------------------

    async def check_login(self, username: str, password: str) -> bool | None:
        """mod_auth_kaiwa's question: is this "<portal>|<user name>" and password right?"""
        parts = split_login(username)
        if parts is None or not password:
            return False
        portal, user_name = parts
        request = rt.VerifyAgentLoginRequest(user_name=user_name, password=password)
        try:
            login = await self.kaiwa.routing.VerifyAgentLogin(
                request, metadata=self.kaiwa.service_metadata(portal), timeout=DEADLINE
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.PERMISSION_DENIED:
                log.info("xmpp login refused", extra={"fields": {"login": username}})
                return False
            log.warning("xmpp login not checked", extra={"fields": {"login": username, "code": err.code().name}})
            return None
        await self._session(f"{username}@{self.settings.domain}", portal, login)
        return True

    async def session_of(self, jid: str) -> AgentSession | None:
        """The session of a bare JID the server authenticated (found again after a restart)."""
        if jid in self.sessions:
            return self.sessions[jid]
        local, _, domain = jid.partition("@")
        parts = split_login(local)
        if parts is None or domain != self.settings.domain:
            return None
        portal, user_name = parts
        try:
            request = rt.GetAgentLoginRequest(user_name=user_name)
            login = await self.kaiwa.routing.GetAgentLogin(
                request, metadata=self.kaiwa.service_metadata(portal), timeout=DEADLINE
            )
        except grpc.aio.AioRpcError as err:
            log.warning("xmpp agent not found", extra={"fields": {"jid": jid, "code": err.code().name}})
            return None
        return await self._session(jid, portal, login)

    async def _session(self, jid: str, tenant: str, login) -> AgentSession:
        async with self._locks.setdefault(jid, asyncio.Lock()):
            session = self.sessions.get(jid)
            if session is None or session.agent_id != login.agent_id:
                if session is not None:
                    await session.stop()
                session = self.sessions[jid] = AgentSession(self, jid, tenant, login.agent_id, login.name)
                self.names[(tenant, login.agent_id)] = login.name
                await session.start()
                log.info("xmpp agent signed in", extra={"fields": {"jid": jid, "tenant": tenant}})
            return session

    # --- stanzas ----------------------------------------------------------------------

    def send_chat(self, to: str, local: str, body: str) -> None:
        self.make_message(mto=to, mfrom=f"{local}@{self.settings.component}", mbody=body, mtype="chat").send()

    def send_status(self, to: str, local: str, status: str) -> None:
        self.make_presence(pto=to, pfrom=f"{local}@{self.settings.component}", pstatus=status).send()

    def ask_subscription(self, to: str, local: str, nick: str) -> None:
        presence = self.make_presence(pto=to, pfrom=f"{local}@{self.settings.component}", ptype="subscribe")
        presence["nick"] = nick
        presence.send()

    async def _on_message(self, msg) -> None:
        if msg["type"] in ("error", "groupchat", "headline") or not msg["body"]:
            return
        session = await self.session_of(msg["from"].bare)
        if session is None:
            return
        locale = lang_of(msg["lang"], self.default_locale)
        await session.from_agent(msg["to"].user, msg["body"], locale)

    async def _on_subscribe(self, presence) -> None:
        to, frm = presence["to"], presence["from"].bare
        self.make_presence(pto=frm, pfrom=to.bare, ptype="subscribed").send()
        await self._on_probe(presence)

    async def _on_probe(self, presence) -> None:
        """Our contacts' presence: the board and chats are always there; a colleague as
        routing has them (online, away, offline)."""
        to, frm = presence["to"], presence["from"].bare
        local = to.user
        if local.startswith("agent-"):
            session = await self.session_of(frm)
            if session is None:
                return
            try:
                request = rt.GetAgentRequest(agent_id=local.removeprefix("agent-"))
                agent = await self.kaiwa.routing.GetAgent(request, metadata=session.service(), timeout=DEADLINE)
            except grpc.aio.AioRpcError:
                return
            if agent.availability == rt.AVAILABILITY_OFFLINE:
                self.make_presence(pto=frm, pfrom=to.bare, ptype="unavailable").send()
                return
            show = "away" if agent.availability == rt.AVAILABILITY_AWAY else None
            self.make_presence(pto=frm, pfrom=to.bare, pshow=show).send()
            return
        self.make_presence(pto=frm, pfrom=to.bare).send()

    async def _on_available(self, presence) -> None:
        if presence["to"].user != "board" or presence["type"] in ("unavailable", "error"):
            return  # the agent's presence reaches every contact: the board's copy counts
        session = await self.session_of(presence["from"].bare)
        if session is not None:
            await session.presence(presence["from"].resource, True, presence["show"])

    async def _on_unavailable(self, presence) -> None:
        if presence["to"].user != "board":
            return
        jid = presence["from"].bare
        session = self.sessions.get(jid)
        if session is not None and await session.presence(presence["from"].resource, False, ""):
            self.sessions.pop(jid, None)
            await session.stop()
            log.info("xmpp agent signed out", extra={"fields": {"jid": jid}})

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            await session.stop()
        self.sessions.clear()


async def serve(settings: XmppSettings, kaiwa_settings: Settings, stop: asyncio.Event) -> None:
    kaiwa = Kaiwa(kaiwa_settings)
    bridge = Bridge(settings, kaiwa)
    server = await auth_http.serve(settings.auth_host, settings.auth_port, settings.secret, bridge.check_login)
    bridge.add_event_handler(
        "disconnected", lambda _: None if stop.is_set() else asyncio.get_running_loop().call_later(1, bridge.connect)
    )
    bridge.connect()
    log.info(
        "xmpp bridge running",
        extra={"fields": {"component": settings.component, "server": settings.server, "auth_port": settings.auth_port}},
    )
    try:
        await stop.wait()
    finally:
        server.close()
        await bridge.close()
        bridge.disconnect()
        await kaiwa.close()


def main() -> None:
    kaiwa_settings = Settings()
    setup_logging("xmpp", kaiwa_settings.log_level)
    settings = XmppSettings()
    if not settings.configured:
        raise SystemExit("the XMPP bridge needs KAIWA_XMPP_DOMAIN, KAIWA_XMPP_COMPONENT and KAIWA_XMPP_SECRET")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, kaiwa_settings, stop)

    asyncio.run(run())
