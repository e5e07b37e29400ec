"""CONV-03: system messages are typed events with parameters, rendered per locale.

Stored as (type, params) in an immutable message; the text is rendered when read, in
the reader's locale (ja or en). `internal` types are for agents only (transfer notes,
invitations) and never reach a visitor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from kaiwa_common.errors import InvalidArgument


@dataclass(frozen=True)
class SystemType:
    name: str
    params: tuple[str, ...]  # required parameters
    ja: str
    en: str
    internal: bool = False
    external: bool = False  # may be posted by another service (PostSystemEvent)
    # Optional parameters; when all are given, the *_with templates are rendered instead.
    optional: tuple[str, ...] = ()
    ja_with: str = ""
    en_with: str = ""


_TYPES = (
    SystemType("assigned", ("agent_name",), "チャットが{agent_name}に割り当てられました", "Chat assigned to {agent_name}"),
    SystemType("accepted", ("agent_name",), "{agent_name}がチャットを承諾しました", "{agent_name} accepted the chat"),
    SystemType("transferred", ("agent_name",), "チャットが{agent_name}に転送されました", "Chat transferred to {agent_name}"),
    SystemType("reopened", ("by_name",), "{by_name}がチャットを再開しました", "{by_name} reopened the chat"),
    SystemType("ended", ("time",), "チャットが終了しました({time})", "Chat ended ({time})"),
    SystemType("completed", ("agent_name",), "{agent_name}がチャットを完了しました", "{agent_name} completed the chat"),
    SystemType("auto_completed", (), "チャットが自動で完了しました", "Chat auto-completed after inactivity"),
    SystemType(
        "converted_to_ticket",
        ("ticket_number",),
        "チャットをもとに問い合わせが作成されました(問い合わせ番号:{ticket_number})",
        "A ticket was created from this chat (ticket number: {ticket_number})",
        external=True,
        # DESK-01: where the ticket number links to (the desk's page of the ticket), when
        # the desk has one; clients link the number with SystemEvent.params["ticket_url"].
        optional=("ticket_url",),
        ja_with="チャットをもとに問い合わせが作成されました(問い合わせ番号:{ticket_number} {ticket_url})",
        en_with="A ticket was created from this chat (ticket number: {ticket_number} {ticket_url})",
    ),
    SystemType(
        "visitor_blocked",
        ("agent_name",),
        "{agent_name}が利用者をブロックしました",
        "{agent_name} blocked the visitor",
        external=True,
    ),
    SystemType(
        "visitor_unblocked",
        ("agent_name",),
        "{agent_name}が利用者のブロックを解除しました",
        "{agent_name} unblocked the visitor",
        external=True,
    ),
    SystemType("bot_handover", (), "ボットがチャットを担当者に転送しました", "The bot handed the chat over to an agent"),
    SystemType("countdown_started", ("seconds",), "サポートは{seconds}秒後に終了します", "Support will end in {seconds} seconds"),
    SystemType("countdown_cancelled", ("by",), "サポート終了を中断しました", "Support end interrupted"),
    SystemType(
        "missed",
        ("reason",),
        "対応できる担当者がいなかったため、チャットは不在チャットになりました",
        "No agent took the chat: it was missed",
    ),
    SystemType(
        "page_pushed",
        ("agent_name", "url"),
        "{agent_name}がページを共有しました。新しいウィンドウで開きますか？ {url}",
        "{agent_name} shared a page. Open it in a new window? {url}",
    ),
    SystemType("returned_to_queue", (), "チャットは待機列に戻りました", "The chat is waiting for an agent again"),
    SystemType(
        "transfer_requested",
        ("from_name", "target", "note"),
        "{from_name}が{target}への転送を依頼しました(メモ: {note})",
        "{from_name} asked to transfer the chat to {target} (note: {note})",
        internal=True,
    ),
    SystemType(
        "transfer_declined",
        ("target", "reason", "note"),
        "{target}が転送を辞退しました: {reason}(メモ: {note})",
        "{target} declined the transfer: {reason} (note: {note})",
        internal=True,
    ),
    SystemType(
        "agent_invited",
        ("agent_name", "by_name"),
        "{by_name}が{agent_name}をチャットに招待しました",
        "{by_name} invited {agent_name} to the chat",
        internal=True,
    ),
)

TYPES: dict[str, SystemType] = {t.name: t for t in _TYPES}

_WEB_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)


def locale_of(value: str) -> str:
    """'ja', 'ja-JP' -> ja; anything else (or nothing) -> en."""
    return "ja" if (value or "").lower().split("-")[0].split("_")[0] == "ja" else "en"


def validate(type_name: str, params: dict[str, str], external: bool = False) -> SystemType:
    spec = TYPES.get(type_name)
    if spec is None or (external and not spec.external):
        allowed = sorted(t.name for t in _TYPES if t.external or not external)
        raise InvalidArgument(f"unknown system event type {type_name!r}; expected one of {', '.join(allowed)}")
    missing = [p for p in spec.params if not str(params.get(p, "")).strip()]
    if missing and external:
        raise InvalidArgument(f"system event {type_name!r} needs parameter(s) {', '.join(missing)}")
    for name in spec.optional:
        value = str(params.get(name, ""))
        if name.endswith("_url") and value and not _WEB_URL.match(value):
            raise InvalidArgument(f"params[{name!r}] must be an http(s) URL without spaces, not {value[:100]!r}", field="params")
    return spec


def render(type_name: str, params: dict[str, str], locale: str) -> str:
    spec = TYPES[type_name]
    values = {p: params.get(p) or "-" for p in spec.params}
    if "time" in values and values["time"] != "-":
        values["time"] = _show_time(values["time"])
    ja = locale_of(locale) == "ja"
    if spec.optional and all(params.get(p) for p in spec.optional):
        values |= {p: params[p] for p in spec.optional}
        return (spec.ja_with if ja else spec.en_with).format(**values)
    return (spec.ja if ja else spec.en).format(**values)


def is_internal(type_name: str) -> bool:
    spec = TYPES.get(type_name)
    return bool(spec and spec.internal)


def _show_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso
