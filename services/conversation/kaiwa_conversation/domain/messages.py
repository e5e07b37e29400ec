"""CONV-02/04/11/13: what a message may contain, per channel (files, links and rich
elements: attachments.py); splitting; status.

A refusal is a kaiwa_common domain error with a message for the caller: InvalidArgument
for what the request says, FailedPrecondition for a status change the message's current
status does not allow; nothing is stored before these checks pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from kaiwa_common.errors import FailedPrecondition, InvalidArgument

from .channels import DELIVERED, FAILED, READ, SENT, Channel

MAX_TEXT = 20000  # a single request; longer texts are refused, not split
MAX_NOTE = 5000
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_BREAKS = ("\n", " ", "\u3000", "。", "、", "！", "？", ".", ",", "!", "?")
FAILURE_REASONS = ("session_expired", "bad_format", "unsupported_file", "blocked", "channel_error")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    bold: bool = False
    italic: bool = False
    underline: bool = False
    color: str = ""

    def styles(self) -> set[str]:
        return {
            s
            for s, on in (
                ("bold", self.bold),
                ("italic", self.italic),
                ("underline", self.underline),
                ("color", bool(self.color)),
            )
            if on
        }


@dataclass(frozen=True)
class Draft:
    """A message as the sender asked for it, before sequence numbers."""

    kind: str
    text: str = ""
    spans: tuple[Span, ...] = ()
    file: dict | None = None
    link: dict | None = None
    rich: dict | None = None
    system: dict | None = None  # {"type": ..., "params": {...}} for system messages
    reply_to_seq: int = 0
    emoji_only: bool = False
    part: int = 0
    parts: int = 0

    def body(self) -> dict:
        body: dict = {}
        if self.spans:
            body["spans"] = [s.__dict__ for s in self.spans]
        for name in ("file", "link", "rich", "system"):
            if getattr(self, name):
                body[name] = getattr(self, name)
        return body


def check_text(text: str, *, required: bool, limit: int = MAX_TEXT, what: str = "text") -> str:
    if "\x00" in text:
        raise InvalidArgument(f"{what} must not contain NUL characters")
    if required and not text.strip():
        raise InvalidArgument(f"{what} is empty")
    if len(text) > limit:
        raise InvalidArgument(f"{what} is too long: {len(text)} characters, at most {limit}")
    return text


def check_field(value: str, what: str, limit: int, required: bool = False) -> str:
    """A short field (a name, an id, a summary): trimmed, then checked like a text."""
    return check_text((value or "").strip(), required=required, limit=limit, what=what)


def check_spans(text: str, spans: list[Span], channel: Channel) -> tuple[Span, ...]:
    for i, span in enumerate(spans):
        if not 0 <= span.start < span.end <= len(text):
            raise InvalidArgument(f"spans[{i}] [{span.start}, {span.end}) is outside the text (0..{len(text)})")
        if span.color and not _COLOR.match(span.color):
            raise InvalidArgument(f"spans[{i}].color {span.color!r} must look like #RRGGBB")
        if not span.styles():
            raise InvalidArgument(f"spans[{i}] sets no style (bold, italic, underline or color)")
        unsupported = span.styles() - channel.markup
        if unsupported:
            raise InvalidArgument(f"channel {channel.name} cannot show {', '.join(sorted(unsupported))} text")
    return tuple(spans)


def is_emoji_only(text: str) -> bool:
    """Emoji / sticker shortcodes only: passed through as is, never split or styled."""
    stripped = [c for c in text if not c.isspace()]
    if not stripped:
        return False
    return all(0x1F000 <= ord(c) <= 0x1FAFF or 0x2600 <= ord(c) <= 0x27BF or c in "\u200d\ufe0f\u20e3" for c in stripped)


def split(draft: Draft, limit: int) -> list[Draft]:
    """CONV-11: a text longer than the channel's limit becomes parts, cut at a break."""
    text = draft.text
    if len(text) <= limit or draft.emoji_only:
        return [draft]
    cuts, start = [], 0
    while len(text) - start > limit:
        window = text[start : start + limit]
        cut = max(window.rfind(b) + 1 for b in _BREAKS)
        if cut <= limit // 2:
            cut = limit
        cuts.append((start, start + cut))
        start += cut
    cuts.append((start, len(text)))
    parts = []
    for n, (a, b) in enumerate(cuts, 1):
        spans = tuple(
            replace(s, start=max(s.start, a) - a, end=min(s.end, b) - a) for s in draft.spans if s.start < b and s.end > a
        )
        parts.append(
            replace(draft, text=text[a:b], spans=spans, part=n, parts=len(cuts), reply_to_seq=draft.reply_to_seq if n == 1 else 0)
        )
    return parts


# CONV-04: delivery status only moves forward: sent -> delivered -> read, or sent -> failed.
_RANK = {SENT: 0, DELIVERED: 1, READ: 2}


def next_status(current: str, new: str, channel: Channel) -> str | None:
    """The new status, or None when it changes nothing."""
    if new not in (SENT, DELIVERED, READ, FAILED):
        raise InvalidArgument("status must be SENT, DELIVERED, READ or FAILED")
    if not channel.reports(new):
        raise InvalidArgument(f"channel {channel.name} does not report the {new} status")
    if new == current:
        return None
    if current == FAILED:
        raise FailedPrecondition("the message has failed: resend it instead of changing its status")
    if new == FAILED:
        if current != SENT:
            raise FailedPrecondition(f"a {current} message cannot fail any more")
        return FAILED
    if _RANK[new] < _RANK[current]:
        raise FailedPrecondition(f"status cannot go back from {current} to {new}")
    return new
