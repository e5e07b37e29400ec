"""CMD-02: what the bridge itself says to an agent (offers, transfers, errors), in
Japanese and English; command replies come from the conversation service. Pure."""

from __future__ import annotations

TEXTS = {
    "offer": (
        "新しいチャットの依頼: {name}(訪問者の番号: {number})\n件名: {question}\n部門: {department}\ny で承諾、n で辞退",
        "New chat request: {name} (visitor number: {number})\nSubject: {question}\nDepartment: {department}\n"
        "y to accept, n to decline",
    ),
    "offer_withdrawn": ("このチャットの依頼は終了しました", "This chat request is no longer open"),
    "transfer": (
        "{from_name}からチャットが転送されました: {name}(訪問者の番号: {number})\nメモ: {note}\ny で承諾、n で辞退",
        "{from_name} transferred a chat to you: {name} (visitor number: {number})\nNote: {note}\ny to accept, n to decline",
    ),
    "not_sent": ("送信できませんでした: {reason}", "Not sent: {reason}"),
    "unavailable": ("Kaiwaに接続できませんでした。もう一度お試しください", "Kaiwa could not be reached: try again"),
    "unknown_contact": ("この連絡先はありません", "No such contact"),
    "visitor": ("訪問者", "Visitor"),
    "board": ("メッセージボード", "Message board"),
    "status": ("{question} - {department}", "{question} - {department}"),
}


def say(key: str, locale: str, **values) -> str:
    ja, en = TEXTS[key]
    return (ja if locale == "ja" else en).format(**values)


def lang_of(stanza_lang: str, default: str) -> str:
    """The reply's language: the message's xml:lang when it is ja or en, else the default."""
    lang = (stanza_lang or "").lower().split("-")[0]
    return lang if lang in ("ja", "en") else ("ja" if default.lower().startswith("ja") else "en")
