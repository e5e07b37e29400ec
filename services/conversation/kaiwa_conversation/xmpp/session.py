"""CMD-02: one agent signed in from an XMPP client, seen from the bridge. Everything it
shows comes from the services, called with the agent's own token (or the bridge's
service token for reads about the portal), each call with a deadline:

    routing StreamOffers        -> an offer message from chat-<id>@component (visitor
                                   name, number, subject, department; y / n answer it)
    routing ListTransfers (poll) -> a transfer message from chat-<id>@component
    routing ListAgentChats (poll), y accepted -> the chat is followed:
    conversation StreamChat     -> the visitor's (and other agents') messages and the
                                   system messages, from chat-<id>@component
    routing StreamTeamMessages  -> board posts from board@component, direct messages
                                   from agent-<id>@component
    agent -> chat-<id>:   "#..." (and y / n before the chat is theirs) -> RunCommand, the
                          reply comes back from the same contact; anything else -> SendMessage
    agent -> board / agent-<id>: SendTeamMessage ("#help", "#d" to the board: RunCommand)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import grpc
from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.routing.v1 import routing_pb2 as rt

from .texts import say

log = logging.getLogger("kaiwa.xmpp.session")

DEADLINE = 10.0
RETRY_SECONDS = 1.0
ANSWERS = ("y", "n")


class AgentSession:
    def __init__(self, bridge, jid: str, tenant: str, agent_id: str, name: str):
        self.bridge = bridge
        self.kaiwa = bridge.kaiwa
        self.jid = jid  # the agent's bare JID
        self.tenant = tenant
        self.agent_id = agent_id
        self.name = name
        self.locale = bridge.default_locale
        self.resources: set[str] = set()
        self.followed: dict[str, asyncio.Task] = {}
        self.transfers: set[str] = set()
        self.answered: set[str] = set()  # chats whose offer the agent answered here
        self.tasks: list[asyncio.Task] = []
        self.team_seq: int | None = None  # the last team message relayed (or seen before sign-in)

    # --- credentials and sending ---------------------------------------------------

    def own(self):
        return self.kaiwa.agent_metadata(self.tenant, self.agent_id)

    def service(self):
        return self.kaiwa.service_metadata(self.tenant)

    def send(self, local: str, body: str) -> None:
        if body:
            self.bridge.send_chat(self.jid, local, body)

    # --- life ----------------------------------------------------------------------

    async def start(self) -> None:
        """Fix what the agent has already seen before anything is relayed, so a team message
        posted once the sign-in has returned is relayed even if the stream connects later."""
        try:
            seen = self.bridge.team_seen.get((self.tenant, self.agent_id))
            self.team_seq = seen if seen is not None else await self._latest_team_seq()
            self.bridge.team_seen[(self.tenant, self.agent_id)] = self.team_seq
        except grpc.aio.AioRpcError as err:
            log.warning("team messages not listed", extra={"fields": {"code": err.code().name, "agent": self.jid}})
        self.tasks = [
            asyncio.create_task(self._forever("offers", self._offers)),
            asyncio.create_task(self._forever("team", self._team)),
            asyncio.create_task(self._forever("poll", self._poll)),
            asyncio.create_task(self._roster()),
        ]

    async def stop(self) -> None:
        tasks = self.tasks + list(self.followed.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _forever(self, what: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run a stream or a poll for as long as the session lives, again after a failure."""
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as err:
                log.warning("kaiwa call failed", extra={"fields": {"loop": what, "code": err.code().name, "agent": self.jid}})
            await asyncio.sleep(RETRY_SECONDS)

    async def _roster(self) -> None:
        """Colleagues and the message board ask to be in the agent's roster (the client
        accepts, as XMPP gateways do it)."""
        try:
            agents = await self.kaiwa.routing.ListAgents(rt.ListAgentsRequest(), metadata=self.service(), timeout=DEADLINE)
        except grpc.aio.AioRpcError as err:
            log.warning("colleagues not listed", extra={"fields": {"code": err.code().name, "agent": self.jid}})
            agents = rt.ListAgentsResponse()
        self.bridge.ask_subscription(self.jid, "board", say("board", self.locale))
        for agent in agents.agents:
            if agent.id != self.agent_id:
                self.bridge.ask_subscription(self.jid, f"agent-{agent.id}", agent.name)

    # --- offers, transfers, chats -------------------------------------------------

    async def _offers(self) -> None:
        async for update in self.kaiwa.routing.StreamOffers(rt.StreamOffersRequest(), metadata=self.own()):
            chat_id = update.offer.chat_id
            if update.withdrawn:
                if chat_id not in self.followed and chat_id not in self.answered:
                    self.send(f"chat-{chat_id}", say("offer_withdrawn", self.locale))
                continue
            chat = await self._chat(chat_id)
            department = await self._department(update.offer.department_id)
            values = {"name": chat.visitor_name or say("visitor", self.locale), "number": chat.visitor_id}
            self.bridge.send_status(
                self.jid, f"chat-{chat_id}", say("status", self.locale, question=chat.question, department=department)
            )
            self.send(f"chat-{chat_id}", say("offer", self.locale, question=chat.question, department=department, **values))

    async def _poll(self) -> None:
        while True:
            transfers = await self.kaiwa.routing.ListTransfers(rt.ListTransfersRequest(), metadata=self.own(), timeout=DEADLINE)
            for t in transfers.transfers:
                if t.id not in self.transfers:
                    self.transfers.add(t.id)
                    await self._announce_transfer(t)
            chats = await self.kaiwa.conversation.ListAgentChats(
                conv.ListAgentChatsRequest(page_size=20), metadata=self.own(), timeout=DEADLINE
            )
            for h in chats.chats:
                if h.chat.state == conv.CHAT_STATE_OPEN and self._in(h.chat) and h.chat.id not in self.followed:
                    self.follow(h.chat.id)
            await asyncio.sleep(self.bridge.settings.poll_seconds)

    async def _announce_transfer(self, t) -> None:
        chat = await self._chat(t.chat_id)
        try:
            sender = await self.kaiwa.routing.GetAgent(
                rt.GetAgentRequest(agent_id=t.from_agent_id), metadata=self.service(), timeout=DEADLINE
            )
            from_name = sender.name
        except grpc.aio.AioRpcError:
            from_name = t.from_agent_id
        body = say(
            "transfer",
            self.locale,
            from_name=from_name,
            name=chat.visitor_name or say("visitor", self.locale),
            number=chat.visitor_id,
            note=t.note or "-",
        )
        self.send(f"chat-{t.chat_id}", body)

    def _in(self, chat: conv.Chat) -> bool:
        return chat.agent_id == self.agent_id or any(
            p.agent_id == self.agent_id and p.role != "former" for p in chat.participants
        )

    def follow(self, chat_id: str) -> None:
        if chat_id not in self.followed:
            self.followed[chat_id] = asyncio.create_task(self._follow(chat_id))

    async def _follow(self, chat_id: str) -> None:
        """The chat's new events, from now on, to the agent, until it is completed or no
        longer theirs."""
        try:
            after = (await self._chat(chat_id)).last_seq
            request = conv.StreamChatRequest(chat_id=chat_id, after_seq=after, locale=self.locale)
            async for event in self.kaiwa.conversation.StreamChat(request, metadata=self.own()):
                if event.HasField("message"):
                    self._relay(chat_id, event.message)
                elif event.HasField("chat") and (event.chat.state == conv.CHAT_STATE_COMPLETED or not self._in(event.chat)):
                    return
        except grpc.aio.AioRpcError as err:
            log.warning("chat no longer followed", extra={"fields": {"chat": chat_id, "code": err.code().name}})
        finally:
            self.followed.pop(chat_id, None)

    def _relay(self, chat_id: str, m: conv.Message) -> None:
        if m.sender_kind == conv.SENDER_KIND_AGENT and m.sender_id == self.agent_id:
            return  # the agent's own words: their client shows them already
        if m.kind == conv.MESSAGE_KIND_SYSTEM:
            body = m.system.rendered
        else:
            body = m.text or m.file.url or m.link.url
            if m.sender_kind in (conv.SENDER_KIND_AGENT, conv.SENDER_KIND_BOT):
                body = f"({m.sender_id if m.sender_kind == conv.SENDER_KIND_BOT else self._name(chat_id, m.sender_id)}) {body}"
        self.send(f"chat-{chat_id}", body)

    def _name(self, chat_id: str, agent_id: str) -> str:
        return self.bridge.names.get((self.tenant, agent_id), agent_id)

    # --- team messages --------------------------------------------------------------

    async def _latest_team_seq(self) -> int:
        last = 0
        while True:
            page = await self.kaiwa.routing.ListTeamMessages(
                rt.ListTeamMessagesRequest(after_seq=last, limit=500), metadata=self.own(), timeout=DEADLINE
            )
            if page.messages:
                last = page.messages[-1].seq
            if len(page.messages) < 500:
                return last

    async def _team(self) -> None:
        if self.team_seq is None:  # routing was away at sign-in: start after what is there now
            self.team_seq = await self._latest_team_seq()
        request = rt.StreamTeamMessagesRequest(after_seq=self.team_seq)
        async for m in self.kaiwa.routing.StreamTeamMessages(request, metadata=self.own()):
            self.team_seq = max(self.team_seq, m.seq)  # a reconnection resumes after it
            self.bridge.team_seen[(self.tenant, self.agent_id)] = self.team_seq
            if m.from_agent_id == self.agent_id:
                continue
            if m.to_agent_id:
                self.send(f"agent-{m.from_agent_id}", m.text)
            else:
                self.send("board", f"({m.from_name}) {m.text}")

    # --- what the agent writes ------------------------------------------------------

    async def from_agent(self, local: str, text: str, locale: str) -> None:
        self.locale = locale
        try:
            if local.startswith("chat-"):
                await self._to_chat(local.removeprefix("chat-"), text)
            elif local == "board" and text.strip().startswith("#") and not text.strip().startswith("##"):
                reply = await self._command("", text)
                self.send("board", reply.text)
            elif local == "board":
                await self.kaiwa.routing.SendTeamMessage(
                    rt.SendTeamMessageRequest(text=text), metadata=self.own(), timeout=DEADLINE
                )
            elif local.startswith("agent-"):
                request = rt.SendTeamMessageRequest(to_agent_id=local.removeprefix("agent-"), text=text)
                await self.kaiwa.routing.SendTeamMessage(request, metadata=self.own(), timeout=DEADLINE)
            else:
                self.send(local, say("unknown_contact", self.locale))
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                self.send(local, say("unavailable", self.locale))
            else:
                self.send(local, say("not_sent", self.locale, reason=err.details() or err.code().name))

    async def _to_chat(self, chat_id: str, text: str) -> None:
        line = text.strip()
        answer = line.lower() in ANSWERS and chat_id not in self.followed
        if answer or (line.startswith("#") and not line.startswith("##")):
            if answer:
                self.answered.add(chat_id)
            reply = await self._command(chat_id, text)
            self.send(f"chat-{chat_id}", reply.text)
            if line.lower() == "y" and reply.outcome == conv.COMMAND_OUTCOME_DONE:
                self.follow(chat_id)
            return
        request = conv.SendMessageRequest(chat_id=chat_id, text=text, locale=self.locale)
        await self.kaiwa.conversation.SendMessage(request, metadata=self.own(), timeout=DEADLINE)

    async def _command(self, chat_id: str, text: str) -> conv.CommandReply:
        request = conv.RunCommandRequest(chat_id=chat_id, text=text, locale=self.locale)
        return await self.kaiwa.conversation.RunCommand(request, metadata=self.own(), timeout=DEADLINE)

    # --- presence -------------------------------------------------------------------

    async def presence(self, resource: str, available: bool, show: str) -> bool:
        """The agent's client came online, changed its status or left; routing's
        availability follows (online; away, xa, dnd: away; the last resource gone: offline).
        True when no resource is left."""
        if available:
            self.resources.add(resource)
        else:
            self.resources.discard(resource)
        state = rt.AVAILABILITY_OFFLINE
        if self.resources:
            state = rt.AVAILABILITY_AWAY if show in ("away", "xa", "dnd") else rt.AVAILABILITY_ONLINE
        try:
            await self.kaiwa.routing.SetAvailability(
                rt.SetAvailabilityRequest(availability=state), metadata=self.own(), timeout=DEADLINE
            )
        except grpc.aio.AioRpcError as err:
            log.warning("availability not set", extra={"fields": {"agent": self.jid, "code": err.code().name}})
        return not self.resources

    # --- reads ----------------------------------------------------------------------

    async def _chat(self, chat_id: str) -> conv.Chat:
        chat = await self.kaiwa.conversation.GetChat(conv.GetChatRequest(chat_id=chat_id), metadata=self.own(), timeout=DEADLINE)
        for p in chat.participants:
            if p.name:
                self.bridge.names[(self.tenant, p.agent_id)] = p.name
        return chat

    async def _department(self, department_id: str) -> str:
        if not department_id:
            return "-"
        try:
            request = rt.GetDepartmentRequest(department_id=department_id)
            return (await self.kaiwa.routing.GetDepartment(request, metadata=self.service(), timeout=DEADLINE)).name
        except grpc.aio.AioRpcError:
            return department_id
