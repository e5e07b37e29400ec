"""CMD-01: the agent command language of seed 003, parsed. Pure: no I/O, no protobuf.

    line     := answer | "#" verb [args]        verbs and keywords: any case
    answer   := "y" | "n"                        a pending chat offer or transfer
    #help    [all | misc | support | crm]
    #t       <email> [note]                      transfer to an agent
    #t       "<department>" [note]               transfer to a department
    #i       <email> [note]                      invite an agent
    #info  #n  #h  #d  #m                        visitor, notes, history, departments, members
    #b       <reason>                            block the visitor
    #an      <text>                              add a note
    #p       <http(s) url>                       push a page to the visitor
    #e       [30 | 45 | 60 | 90 | cancel]        end now, count down, stop the countdown
    #crm     info
    #support info | ticketinfo | recentreq | conasreq <p><s><c> | searchreq <query>
             | associate <ticket> | setreqstatus <open | close>
    ##text                                       no command: "#text" sent to the visitor

`parse` answers a `Command` (its canonical line is `Command.line()`, and parsing that
line gives the same Command back), a `Usage` (a line that starts with "#" but is not a
valid command: nothing is done, the agent gets its usage line), or None (no command:
a message to send). conasreq's digits: priority 0-3, status 0-3, category 0-4 (DESK-01).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HELP_TOPICS = ("all", "misc", "support", "crm")
COUNTDOWNS = ("30", "45", "60", "90")
EMAIL = re.compile(r"^[^@\s\"]{1,64}@[^@\s.\"]+(\.[^@\s.\"]+)+$")
URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)
CONASREQ = re.compile(r"^[0-3][0-3][0-4]$")
MAX_ARG = 2000

# Verbs that take nothing after them.
BARE = ("#info", "#n", "#h", "#d", "#m", "#crm info", "#support info", "#support ticketinfo", "#support recentreq")
SUPPORT = ("info", "ticketinfo", "recentreq", "conasreq", "searchreq", "associate", "setreqstatus")
VERBS = ("y", "n", "#help", "#t", "#i", "#info", "#b", "#an", "#n", "#h", "#d", "#p", "#m", "#e", "#crm info") + tuple(
    f"#support {s}" for s in SUPPORT
)


@dataclass(frozen=True)
class Command:
    """verb: one of VERBS. arg: its argument (help topic, e-mail, department, reason, note
    text, URL, countdown or "cancel", conasreq digits, query, ticket, open/close).
    department: #t's arg is a department name. note: #t / #i's note."""

    verb: str
    arg: str = ""
    note: str = ""
    department: bool = False

    def line(self) -> str:
        """The canonical line; parse(line()) == self."""
        arg = f'"{self.arg}"' if self.department else self.arg
        return " ".join(part for part in (self.verb, arg, self.note) if part)


@dataclass(frozen=True)
class Usage:
    """Not a valid command. verb: the command it tried to be (its usage line is shown),
    or None for an unknown one (the list of commands is shown)."""

    verb: str | None
    typed: str


def is_escaped(text: str) -> bool:
    """'##...': a message starting with '#', not a command."""
    return text.lstrip().startswith("##")


def unescape(text: str) -> str:
    """What an escaped line sends: '##hello' -> '#hello'."""
    stripped = text.lstrip()
    return stripped[1:] if stripped.startswith("##") else text


def parse(text: str) -> Command | Usage | None:
    line = text.strip()
    if line.lower() in ("y", "n"):
        return Command(line.lower())
    if not line.startswith("#") or line.startswith("##"):
        return None
    head, rest = _split(line[1:]) if not line[1:2].isspace() else ("", "")
    verb = "#" + head.lower()
    if verb == "#crm" or verb == "#support":
        sub, rest = _split(rest)
        if verb == "#crm" and sub.lower() != "info":
            return Usage("#crm info", line)
        if verb == "#support" and sub.lower() not in SUPPORT:
            return Usage("#support", line)
        verb = f"{verb} {sub.lower()}"
    if verb not in VERBS:
        return Usage(None, line)
    if len(rest) > MAX_ARG:
        return Usage(verb, line)
    parsed = _ARGS.get(verb, _bare)(verb, rest)
    return parsed if parsed is not None else Usage(verb, line)


def _split(text: str) -> tuple[str, str]:
    """(first word, the rest stripped)."""
    parts = text.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


def _bare(verb: str, rest: str) -> Command | None:
    return None if rest else Command(verb)


def _required(verb: str, rest: str) -> Command | None:
    return Command(verb, rest) if rest else None


def _one_of(choices: tuple[str, ...], optional: bool = False):
    def parse_arg(verb: str, rest: str) -> Command | None:
        if not rest and optional:
            return Command(verb)
        return Command(verb, rest.lower()) if rest.lower() in choices else None

    return parse_arg


def _transfer(verb: str, rest: str) -> Command | None:
    if verb == "#t" and rest.startswith('"'):
        name, quote, note = rest[1:].partition('"')
        if not quote or not name.strip() or (note and not note[0].isspace()):
            return None
        return Command(verb, name.strip(), note.strip(), department=True)
    email, note = _split(rest)
    return Command(verb, email, note) if EMAIL.match(email) else None


def _url(verb: str, rest: str) -> Command | None:
    return Command(verb, rest) if URL.match(rest) else None


def _digits(verb: str, rest: str) -> Command | None:
    return Command(verb, rest) if CONASREQ.match(rest) else None


def _token(verb: str, rest: str) -> Command | None:
    return Command(verb, rest) if rest and len(rest.split()) == 1 else None


_ARGS = {
    "y": _bare,
    "n": _bare,
    "#help": _one_of(HELP_TOPICS, optional=True),
    "#t": _transfer,
    "#i": _transfer,
    "#b": _required,
    "#an": _required,
    "#p": _url,
    "#e": _one_of((*COUNTDOWNS, "cancel"), optional=True),
    "#support conasreq": _digits,
    "#support searchreq": _required,
    "#support associate": _token,
    "#support setreqstatus": _one_of(("open", "close")),
}

# Which commands act on a chat, and who in it may run them (ROUT-02's gate applies).
NO_CHAT = ("#help", "#d")
OWNER_ONLY = ("#t", "#e")
ANSWERS = ("y", "n")
