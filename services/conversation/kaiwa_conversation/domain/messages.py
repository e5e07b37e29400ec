"""CONV-02/04/11/12/13: what a message may contain, per channel; splitting; status.

A refusal is a kaiwa_common domain error with a message for the caller: InvalidArgument
for what the request says, FailedPrecondition for a status change the message's current
status does not allow; nothing is stored before these checks pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import urlparse

from kaiwa_common.errors import FailedPrecondition, InvalidArgument

from .channels import DELIVERED, FAILED, READ, SENT, Channel

MAX_TEXT = 20000  # a single request; longer texts are refused, not split
MAX_NOTE = 5000
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
_BREAKS = ("\n", " ", "\u3000", "。", "、", "！", "？", ".", ",", "!", "?")
RICH_LIMITS = {"buttons": 10, "quick_replies": 13, "list": 10}
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


def check_url(url: str, what: str) -> str:
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidArgument(f"{what} must be an http(s) URL, not {url!r}")
    if len(url) > 2048:
        raise InvalidArgument(f"{what} is too long (at most 2048 characters)")
    return url


# CONV-12: the notices shown on a file received from the customer that cannot be previewed.
FILE_NOTICES = {
    "unsupported_type": {"ja": "対応していない種類のファイルです", "en": "This file type is not supported"},
    "preview_unavailable": {"ja": "プレビューは利用できません", "en": "Preview is not available"},
}


def check_file(file: dict, channel: Channel, inbound: bool = False) -> dict:
    """An outgoing file (agent, bot) the channel cannot take is refused before sending;
    an inbound one (from the customer) is kept, shown as a link with a notice."""
    name, mime, size = (file.get("name") or "").strip(), (file.get("mime_type") or "").lower(), file.get("size_bytes", 0)
    if not name or len(name) > 255:
        raise InvalidArgument("file.name is required (at most 255 characters)")
    check_url(file.get("url", ""), "file.url")
    if len(mime) > 255:
        raise InvalidArgument("file.mime_type is too long (at most 255 characters)")
    if size <= 0:
        raise InvalidArgument("file.size_bytes must be positive")
    notice = ""
    if mime not in channel.file_types:
        if not inbound:
            raise InvalidArgument(
                f"file type {mime or '(none)'} is not supported on {channel.name}; supported: {', '.join(channel.file_types)}"
            )
        notice = "unsupported_type"
    elif size > channel.max_file_bytes:
        if not inbound:
            raise InvalidArgument(f"file is too large: {size} bytes, {channel.name} accepts at most {channel.max_file_bytes}")
        notice = "preview_unavailable"
    previewable = mime.startswith(("image/", "video/"))
    if previewable and channel.file_preview and not notice:
        display, preview = "thumbnail", file["url"]
    elif mime.startswith("audio/") and not notice:
        display, preview = "audio_player", ""
    else:
        display, preview = "link", ""
        if inbound and previewable and not notice:
            notice = "preview_unavailable"  # LINE, WeChat: no previews of what the customer sends
    out = {"name": name, "mime_type": mime, "size_bytes": size, "url": file["url"], "display": display, "preview_url": preview}
    if notice:
        out["notice"] = notice
    return out


def check_link(link: dict) -> dict:
    title = (link.get("title") or "").strip()
    if len(title) > 300:
        raise InvalidArgument("link.title is too long (at most 300 characters)")
    return {"url": check_url(link.get("url", ""), "link.url"), "title": title}


def _check_option(option: dict, where: str) -> dict:
    title = (option.get("title") or "").strip()
    if not title or len(title) > 40:
        raise InvalidArgument(f"{where}.title is required (at most 40 characters)")
    if len(option.get("payload") or "") > 1000:
        raise InvalidArgument(f"{where}.payload is too long (at most 1000 characters)")
    if option.get("url"):
        check_url(option["url"], f"{where}.url")
    return {"title": title, "payload": option.get("payload") or "", "url": option.get("url") or ""}


def check_rich(rich: dict, channel: Channel) -> dict:
    kind = rich.get("type")
    if kind not in ("buttons", "carousel", "list", "quick_replies", "template"):
        raise InvalidArgument("rich.type must be buttons, carousel, list, quick_replies or template")
    if kind not in channel.rich_types:
        raise InvalidArgument(
            f"channel {channel.name} does not support {kind} elements "
            f"(it supports {', '.join(sorted(channel.rich_types)) or 'none'})"
        )
    out: dict = {"type": kind}
    if kind == "template":
        name, language = rich.get("template_name") or "", rich.get("template_language") or ""
        if not _TEMPLATE_NAME.match(name):
            raise InvalidArgument("rich.template_name is required: lower-case letters, digits and _")
        if not _LANGUAGE.match(language):
            raise InvalidArgument("rich.template_language must be a language code such as ja or en_US")
        params = list(rich.get("template_params") or [])
        if len(params) > 10 or any(len(p) > 1000 for p in params):
            raise InvalidArgument("rich.template_params: at most 10 values of at most 1000 characters")
        out.update(template_name=name, template_language=language, template_params=params)
    elif kind == "carousel":
        cards = rich.get("cards") or []
        if not 1 <= len(cards) <= 10:
            raise InvalidArgument("a carousel needs 1 to 10 cards")
        out["cards"] = []
        for i, card in enumerate(cards):
            title = (card.get("title") or "").strip()
            if not title or len(title) > 80:
                raise InvalidArgument(f"rich.cards[{i}].title is required (at most 80 characters)")
            if card.get("image_url"):
                check_url(card["image_url"], f"rich.cards[{i}].image_url")
            buttons = card.get("buttons") or []
            if len(buttons) > 3:
                raise InvalidArgument(f"rich.cards[{i}] has more than 3 buttons")
            out["cards"].append(
                {
                    "title": title,
                    "subtitle": (card.get("subtitle") or "")[:80],
                    "image_url": card.get("image_url") or "",
                    "buttons": [_check_option(b, f"rich.cards[{i}].buttons[{j}]") for j, b in enumerate(buttons)],
                }
            )
    else:
        options = rich.get("options") or []
        if not 1 <= len(options) <= RICH_LIMITS[kind]:
            raise InvalidArgument(f"{kind} needs 1 to {RICH_LIMITS[kind]} options")
        out["options"] = [_check_option(o, f"rich.options[{i}]") for i, o in enumerate(options)]
    return out


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
