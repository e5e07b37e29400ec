"""CONV-12/13: files, links and rich elements a message may carry, per channel.

A refusal is InvalidArgument with a message for the caller. An agent's or the bot's
file the channel cannot take is refused before sending; a customer's is kept and shown
as a link with a notice (FILE_NOTICES).
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

from kaiwa_common.errors import InvalidArgument

from .channels import Channel

_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
RICH_LIMITS = {"buttons": 10, "quick_replies": 13, "list": 10}


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
