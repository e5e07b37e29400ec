"""CMD-01: RunCommand (and an agent's "#..." SendMessage): parse the line
(domain/commands.py), check who may run it in which chat, run it where it belongs, and
answer the agent privately (nothing here is stored in the chat; what a command changes
is recorded by its owner):

    y / n                    routing: AcceptChat / DeclineChat, or AnswerTransfer (own token)
    #t #i                    routing: TransferChat / InviteAgent (own token)
    #d #m                    routing: ListDepartments / ListMembers (service token)
    #info                    this chat + visitor: GetVisitor (service token)
    #b                       visitor: BlockVisitor (own token): the chat's address or thread
    #an #n #h #e #p          this service: notes, history, end / countdown, page push
    #crm info                crm_bridge: GetContext (service token)
    #support ...             crm_bridge: tickets (reads: service token; changes: own token)

A command about a chat needs a member of it (#t and #e: its owner); ROUT-02's gate
(assignment.py) lets an agent who has just been given the chat run commands at once.
Reads of the chat and the visitor live in command_reads.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kaiwa.crm_bridge.v1 import desk_pb2 as dpb
from kaiwa.routing.v1 import routing_pb2 as rpb
from kaiwa.visitor.v1 import visitor_pb2 as vpb

from kaiwa_common.auth import AGENT
from kaiwa_common.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, Unavailable, parse_uuid

from . import command_reads as reads
from . import lifecycle, notes, send, store, timers
from .assignment import MEMBER, OWNER, NotAssignedYet
from .domain import lifecycle as lc
from .domain.commands import ANSWERS, NO_CHAT, OWNER_ONLY, Command, Usage, parse
from .domain.command_texts import help_lines, say, usage_of
from .peers import Down, Peers, Refused, Unsupported
from .unit_of_work import Actor, Deps, is_member, name_of, writing

DONE, USAGE, REFUSED, UNAVAILABLE, NOT_SUPPORTED = "done", "usage", "refused", "unavailable", "not_supported"
SERVICE_NAMES = {"routing": "routing", "visitor": "visitor", "crm_bridge": "CRM", "conversation": "conversation"}


@dataclass
class Reply:
    outcome: str
    command: str = ""
    lines: list[str] = field(default_factory=list)
    chat_id: str = ""


@dataclass
class Run:
    """One command being run: who, where, in which language, with which credentials."""

    deps: Deps
    peers: Peers
    actor: Actor
    locale: str
    own: tuple  # the caller's own bearer token, forwarded
    chat: dict | None = None

    @property
    def service(self):
        return self.peers.service(self.actor.tenant)

    def say(self, key: str, **values) -> str:
        return say(key, self.locale, **values)


async def run_command(deps: Deps, actor: Actor, peers: Peers, chat_id: str, text: str, locale: str, own: tuple) -> Reply:
    parsed = parse(text)
    if parsed is None:
        raise InvalidArgument("not a command: a command starts with '#' (or is y / n); send a message with SendMessage")
    if isinstance(parsed, Usage):
        if parsed.verb is None:
            return Reply(USAGE, "", [say("unknown", locale, typed=parsed.typed[:80])] + help_lines("all", locale)[:1])
        return Reply(USAGE, "", [usage_of(parsed.verb, locale)])
    run = Run(deps, peers, actor, locale, own)
    if parsed.verb not in NO_CHAT and parsed.verb not in ANSWERS:
        if not chat_id.strip():
            return Reply(USAGE, parsed.line(), [run.say("needs_chat")])
        run.chat = await _chat_of(run, chat_id, OWNER if parsed.verb in OWNER_ONLY else MEMBER)
    try:
        reply = await HANDLERS[parsed.verb](run, parsed, chat_id)
    except NotAssignedYet:
        raise
    except Refused as exc:
        reply = Reply(REFUSED, lines=[run.say("refused", reason=exc.details)])
    except Down as exc:
        reply = Reply(UNAVAILABLE, lines=[run.say("unavailable", service=SERVICE_NAMES[exc.service])])
    except Unsupported as exc:
        reply = Reply(NOT_SUPPORTED, lines=[run.say("not_supported", what=f"{exc.service} {exc.details}")])
    except Unavailable as exc:
        reply = Reply(UNAVAILABLE, lines=[run.say("refused", reason=exc.message)])
    except DomainError as exc:  # this service's own rules (an ended chat, no countdown running, ...)
        reply = Reply(REFUSED, lines=[run.say("refused", reason=exc.message)])
    reply.command = parsed.line()
    reply.chat_id = reply.chat_id or (str(run.chat["id"]) if run.chat else "")
    return reply


async def _chat_of(run: Run, chat_id: str, need: str) -> dict:
    """The chat, if the caller may run commands in it (agents: members; #t, #e: owner)."""
    chat_id = parse_uuid(chat_id.strip(), "chat_id")
    async with run.deps.ctx.pool.acquire() as conn:
        chat = await store.get_chat(conn, run.actor.tenant, chat_id)
        if chat is None:
            raise NotFound(f"chat {chat_id} not found")
        if run.actor.role == AGENT:
            allowed = chat["agent_id"] == run.actor.sub if need == OWNER else await is_member(conn, chat, run.actor.sub)
            if not allowed:
                who = "the agent who has this chat" if need == OWNER else "its agents"
                raise NotAssignedYet(
                    f"you are not in this chat: only {who} can run this command here", chat_id, run.actor.sub, need
                )
    return chat


# --- the handlers: (run, command, chat_id as given) -> Reply --------------------------


async def _help(run: Run, cmd: Command, _) -> Reply:
    return Reply(DONE, lines=help_lines(cmd.arg, run.locale))


async def _departments(run: Run, cmd: Command, _) -> Reply:
    reply = await run.peers.call("routing", "ListDepartments", rpb.ListDepartmentsRequest(), run.service)
    names = sorted(d.name for d in reply.departments)
    return Reply(DONE, lines=[run.say("departments"), *names] if names else [run.say("no_departments")])


async def _transfer(run: Run, cmd: Command, _) -> Reply:
    target = {"to_department_name": cmd.arg} if cmd.department else {"to_agent_email": cmd.arg}
    request = rpb.TransferChatRequest(chat_id=str(run.chat["id"]), note=cmd.note, **target)
    await run.peers.call("routing", "TransferChat", request, run.own, reads.CHAT_DEADLINE)
    return Reply(DONE, lines=[run.say("transfer_requested", target=cmd.arg)])


async def _invite(run: Run, cmd: Command, _) -> Reply:
    request = rpb.InviteAgentRequest(chat_id=str(run.chat["id"]), agent_email=cmd.arg, note=cmd.note)
    await run.peers.call("routing", "InviteAgent", request, run.own, reads.CHAT_DEADLINE)
    return Reply(DONE, lines=[run.say("invited", email=cmd.arg)])


async def _members(run: Run, cmd: Command, _) -> Reply:
    return Reply(DONE, lines=await reads.members(run))


async def _info(run: Run, cmd: Command, _) -> Reply:
    return Reply(DONE, lines=await reads.visitor_lines(run, run.chat))


async def _block(run: Run, cmd: Command, _) -> Reply:
    chat = run.chat
    target = {"ip": chat["visitor_ip"]} if chat["visitor_ip"] else {"visitor_id": chat["visitor_id"]}
    if chat["channel"] != "web":
        target = {"channel": chat["channel"], "thread_id": chat["visitor_id"]}
    request = vpb.BlockVisitorRequest(reason=cmd.arg, chat_id=str(chat["id"]), **target)
    await run.peers.call("visitor", "BlockVisitor", request, run.own)
    return Reply(DONE, lines=[run.say("blocked_ip" if chat["channel"] == "web" else "blocked_thread")])


async def _add_note(run: Run, cmd: Command, _) -> Reply:
    await notes.add_note(run.deps, run.actor, "", run.chat["visitor_id"], cmd.arg)
    return Reply(DONE, lines=[run.say("note_added")])


async def _notes(run: Run, cmd: Command, _) -> Reply:
    return Reply(DONE, lines=await reads.notes(run))


async def _history(run: Run, cmd: Command, _) -> Reply:
    return Reply(DONE, lines=await reads.history(run))


async def _end(run: Run, cmd: Command, _) -> Reply:
    chat_id = str(run.chat["id"])
    if cmd.arg == "cancel":
        await timers.cancel_end(run.deps, run.actor, chat_id)
        return Reply(DONE, lines=[run.say("countdown_cancelled")])
    seconds = int(cmd.arg or 0)
    await lifecycle.end_chat(run.deps, run.actor, chat_id, seconds)
    return Reply(DONE, lines=[run.say("countdown", seconds=seconds) if seconds else run.say("ended")])


async def _push_page(run: Run, cmd: Command, _) -> Reply:
    """#p: on the web widget a page_pushed system message asks the visitor whether to open
    the page in a new window; a messaging channel gets it as a link message."""
    if run.chat["channel"] != "web":
        await send.send_message(
            run.deps, run.actor, send.SendCommand(chat_id=str(run.chat["id"]), link={"url": cmd.arg, "title": ""})
        )
        return Reply(DONE, lines=[run.say("page_linked", url=cmd.arg)])
    async with writing(run.deps, run.actor.tenant, run.chat["id"]) as w:
        if w.chat["state"] != lc.OPEN:
            raise FailedPrecondition(f"the chat is {w.chat['state']}: pages are pushed in open chats")
        await w.system("page_pushed", url=cmd.arg, agent_name=await name_of(w.conn, w.chat, run.actor.sub))
    return Reply(DONE, lines=[run.say("page_pushed", url=cmd.arg)])


async def _crm_info(run: Run, cmd: Command, _) -> Reply:
    return Reply(DONE, lines=await reads.crm(run))


async def _support_info(run: Run, cmd: Command, _) -> Reply:
    return Reply(DONE, lines=await reads.support_summary(run))


async def _ticket_info(run: Run, cmd: Command, _) -> Reply:
    ticket = await reads.chat_ticket(run)
    return Reply(DONE, lines=[reads.ticket_line(run, ticket)] if ticket else [run.say("no_ticket_info")])


async def _recent(run: Run, cmd: Command, _) -> Reply:
    tickets = await reads.recent_tickets(run)
    return Reply(DONE, lines=[reads.ticket_line(run, t) for t in tickets] or [run.say("no_recent_requests")])


async def _convert(run: Run, cmd: Command, _) -> Reply:
    priority, status, category = (int(d) for d in cmd.arg)
    request = dpb.ConvertChatToTicketRequest(chat_id=str(run.chat["id"]), priority=priority, status=status, category=category)
    ticket = await run.peers.call("crm_bridge", "ConvertChatToTicket", request, run.own, reads.CHAT_DEADLINE)
    return Reply(DONE, lines=[run.say("ticket_created", number=ticket.number), reads.ticket_line(run, ticket)])


async def _search(run: Run, cmd: Command, _) -> Reply:
    reply = await run.peers.call("crm_bridge", "SearchTickets", dpb.SearchTicketsRequest(query=cmd.arg), run.service)
    return Reply(DONE, lines=[reads.ticket_line(run, t) for t in reply.tickets] or [run.say("no_tickets_found")])


async def _associate(run: Run, cmd: Command, _) -> Reply:
    request = dpb.AssociateChatRequest(ticket=cmd.arg, chat_id=str(run.chat["id"]))
    ticket = await run.peers.call("crm_bridge", "AssociateChat", request, run.own, reads.CHAT_DEADLINE)
    return Reply(DONE, lines=[run.say("associated", number=ticket.number)])


async def _set_status(run: Run, cmd: Command, _) -> Reply:
    ticket = await reads.chat_ticket(run)
    if ticket is None:
        return Reply(REFUSED, lines=[run.say("no_chat_ticket")])
    status = 0 if cmd.arg == "open" else 3
    request = dpb.SetTicketStatusRequest(ticket=ticket.id, status=status)
    ticket = await run.peers.call("crm_bridge", "SetTicketStatus", request, run.own)
    return Reply(DONE, lines=[run.say("status_set", number=ticket.number, status=ticket.status_name)])


async def _answer(run: Run, cmd: Command, chat_id: str) -> Reply:
    """y / n: the caller's offer of chat_id (routing's offers, then transfers); without a
    chat_id, the only one waiting."""
    wanted = parse_uuid(chat_id.strip(), "chat_id") if chat_id.strip() else ""
    offers = await run.peers.call("routing", "ListOffers", rpb.ListOffersRequest(), run.own)
    transfers = await run.peers.call("routing", "ListTransfers", rpb.ListTransfersRequest(), run.own)
    pending = [("offer", o.chat_id, o) for o in offers.offers] + [("transfer", t.chat_id, t) for t in transfers.transfers]
    if wanted:
        pending = [p for p in pending if p[1] == wanted]
    if not pending:
        return Reply(REFUSED, lines=[run.say("nothing_to_answer")], chat_id=wanted)
    if len(pending) > 1 and not wanted:
        return Reply(REFUSED, lines=[run.say("several_to_answer")])
    kind, target, item = pending[0]
    accept = cmd.verb == "y"
    if kind == "offer" and accept:
        await run.peers.call("routing", "AcceptChat", rpb.AcceptChatRequest(chat_id=target), run.own, reads.CHAT_DEADLINE)
    elif kind == "offer":
        request = rpb.DeclineChatRequest(chat_id=target, reason="declined (n)")
        await run.peers.call("routing", "DeclineChat", request, run.own, reads.CHAT_DEADLINE)
    else:
        request = rpb.AnswerTransferRequest(transfer_id=item.id, accept=accept, reason="" if accept else "declined (n)")
        await run.peers.call("routing", "AnswerTransfer", request, run.own)
    key = {("offer", True): "accepted", ("offer", False): "declined"}.get(
        (kind, accept), f"transfer_{'accepted' if accept else 'declined'}"
    )
    lines = [run.say(key)]
    if accept:
        async with run.deps.ctx.pool.acquire() as conn:
            chat = await store.get_chat(conn, run.actor.tenant, target)
        if chat is not None:
            lines += await reads.visitor_lines(run, chat)
    return Reply(DONE, lines=lines, chat_id=target)


HANDLERS = {
    "y": _answer,
    "n": _answer,
    "#help": _help,
    "#t": _transfer,
    "#i": _invite,
    "#info": _info,
    "#b": _block,
    "#an": _add_note,
    "#n": _notes,
    "#h": _history,
    "#d": _departments,
    "#p": _push_page,
    "#m": _members,
    "#e": _end,
    "#crm info": _crm_info,
    "#support info": _support_info,
    "#support ticketinfo": _ticket_info,
    "#support recentreq": _recent,
    "#support conasreq": _convert,
    "#support searchreq": _search,
    "#support associate": _associate,
    "#support setreqstatus": _set_status,
}
