# ruff: noqa: E501  (the channel table below is one row per channel, aligned in columns)
"""CONV-01: the one capability table of every channel. Every channel rule reads it.

Sources: seed 002 (statuses per service, rich elements per service, reply-to on WhatsApp
and Messenger only, typing indicator missing on Telegram and Instagram, no file preview
on LINE and WeChat, WhatsApp's 24 h session window after which only templates go out).
Text limits are the channels' documented per-message limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

SENT, DELIVERED, READ, FAILED = "sent", "delivered", "read", "failed"
RICH_TYPES = ("buttons", "carousel", "list", "quick_replies", "template")
MARKUP = ("bold", "italic", "underline", "color")

IMAGES = ("image/jpeg", "image/png", "image/gif", "image/webp")
VIDEOS = ("video/mp4",)
AUDIO = ("audio/ogg", "audio/mpeg", "audio/aac", "audio/mp4")
DOCUMENTS = (
    "application/pdf",
    "text/plain",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
MB = 1024 * 1024


@dataclass(frozen=True)
class Channel:
    name: str
    statuses: frozenset[str]  # reported by the channel; "sent" and "failed" are ours
    reply_to: bool
    rich_types: frozenset[str]
    typing_indicator: bool
    file_preview: bool
    session_window: timedelta | None
    max_text: int
    max_file_bytes: int
    file_types: tuple[str, ...]
    markup: frozenset[str]

    def reports(self, status: str) -> bool:
        return status in self.statuses


def _channel(name, statuses, reply_to, rich, typing, preview, window_hours, max_text, max_mb, types, markup):
    return Channel(
        name,
        frozenset({SENT, FAILED, *statuses}),
        reply_to,
        frozenset(rich),
        typing,
        preview,
        timedelta(hours=window_hours) if window_hours else None,
        max_text,
        max_mb * MB,
        tuple(types),
        frozenset(markup),
    )


ALL_FILES = IMAGES + VIDEOS + AUDIO + DOCUMENTS

# fmt: off
CHANNELS: dict[str, Channel] = {c.name: c for c in (
    #        name         statuses reported      reply  rich elements                       typing preview window text  MB  file types             markup
    _channel("web",       (DELIVERED, READ),     False, RICH_TYPES,                         True,  True,   None, 10000, 25, ALL_FILES,             MARKUP),
    _channel("whatsapp",  (DELIVERED, READ),     True,  ("buttons", "quick_replies", "template"), True, True, 24, 4096, 16, ALL_FILES,          ("bold", "italic")),
    _channel("instagram", (READ,),               False, ("carousel", "quick_replies"),      False, True,   None, 1000,  8, IMAGES + VIDEOS + AUDIO, ()),
    _channel("messenger", (DELIVERED, READ),     True,  ("buttons", "carousel", "quick_replies", "template"), True, True, None, 2000, 25, ALL_FILES, ()),
    _channel("telegram",  (),                    False, ("buttons",),                       False, True,   None, 4096, 50, ALL_FILES,             ("bold", "italic", "underline")),
    _channel("line",      (READ,),               False, ("quick_replies",),                 False, False,  None, 5000, 10, IMAGES + VIDEOS + AUDIO + ("application/pdf",), ()),
    _channel("wechat",    (),                    False, ("list",),                          False, False,  None, 2048, 10, IMAGES + VIDEOS + AUDIO, ()),
)}
# fmt: on


def channel(name: str) -> Channel:
    return CHANNELS[name]


def session_expires_at(chat: dict) -> datetime | None:
    """When the channel's session window closes (WhatsApp: 24 h after the customer's last
    message, or the chat's start); None on channels without one."""
    window = CHANNELS[chat["channel"]].session_window
    if window is None:
        return None
    return (chat["last_inbound_at"] or chat["started_at"]) + window


def window_closed(chat: dict, now: datetime) -> bool:
    """Outside the session window only an approved template may go out to the customer."""
    expires = session_expires_at(chat)
    return expires is not None and expires <= now
