"""CMD-01: what the agent reads back, in Japanese (seed 003's own words where it gives
them) and English. `say(key, locale, **values)` renders one line."""

from __future__ import annotations

from .system_messages import locale_of

# (ja, en) per reply; {placeholders} are filled by say().
TEXTS: dict[str, tuple[str, str]] = {
    # seed 003, word for word
    "blocked_ip": ("IPアドレスをブロックしました", "IP address blocked"),
    "note_added": ("メモが追加されました", "Note added"),
    "no_crm_info": ("この訪問者のCRM情報はありません", "No CRM information for this visitor"),
    "countdown": ("サポートは{seconds}秒後に終了します", "Support will end in {seconds} seconds"),
    "countdown_cancelled": ("サポート終了を中断しました", "Support end interrupted"),
    "no_support_info": ("この訪問者のサポート情報はありません", "No support information for this visitor"),
    "no_ticket_info": ("この訪問者の情報はありません", "No ticket information for this visitor"),
    "no_recent_requests": ("この訪問者の最近の問い合わせはありません", "No recent requests from this visitor"),
    # the other replies
    "blocked_thread": ("この利用者をブロックしました", "This customer's thread is blocked"),
    "transfer_requested": ("{target}への転送を依頼しました", "Transfer to {target} requested"),
    "invited": ("{email}をチャットに招待しました", "{email} invited to the chat"),
    "ended": ("チャットを終了しました", "Chat ended"),
    "page_pushed": (
        "ページを訪問者に送信しました。訪問者が承認すると新しいウィンドウで開きます: {url}",
        "Page sent to the visitor; it opens in a new window once they agree: {url}",
    ),
    "page_linked": ("リンクを訪問者に送信しました: {url}", "Link sent to the visitor: {url}"),
    "no_notes": ("この訪問者のメモはありません", "No notes on this visitor"),
    "note_line": ("{time} {author}: {text}", "{time} {author}: {text}"),
    "history_chat": ("--- {time} のチャット ---", "--- chat of {time} ---"),
    "history_line": ("({who}) {text}", "({who}) {text}"),
    "no_history": ("履歴はありません", "No history"),
    "visitor": ("訪問者", "visitor"),
    "system": ("システム", "system"),
    "departments": ("部門:", "Departments:"),
    "no_departments": ("部門はありません", "No departments"),
    "members": ("チャットのメンバー:", "Members of the chat:"),
    "member_line": ("{name} <{email}> {role} {presence}", "{name} <{email}> {role} {presence}"),
    "owner": ("担当者", "owner"),
    "participant": ("参加者", "participant"),
    "online": ("オンライン", "online"),
    "offline": ("オフライン", "offline"),
    "away": ("離席中", "away"),
    "info_line": ("{label}: {value}", "{label}: {value}"),
    "accepted": ("チャットを承諾しました", "Chat accepted"),
    "declined": ("チャットを辞退しました", "Chat declined"),
    "transfer_accepted": ("転送を承諾しました", "Transfer accepted"),
    "transfer_declined": ("転送を辞退しました", "Transfer declined"),
    "nothing_to_answer": (
        "このチャットで回答を待っている依頼や転送はありません",
        "No chat offer or transfer is waiting for your answer here",
    ),
    "several_to_answer": (
        "回答を待っている依頼が複数あります。チャットのウィンドウで y / n を入力してください",
        "Several offers wait for your answer: answer y / n in the chat's own window",
    ),
    "crm_record": ("CRM: {type} {name} <{email}>", "CRM: {type} {name} <{email}>"),
    "crm_deals": ("未完了の商談: {count}件 ({amount})", "Open deals: {count} ({amount})"),
    "support_summary": (
        "問い合わせ: {count}件(未完了 {open}件)",
        "Requests: {count} ({open} not closed)",
    ),
    "ticket_line": (
        "#{number} {subject} [{status}] 優先度:{priority} 分類:{category}",
        "#{number} {subject} [{status}] priority: {priority} category: {category}",
    ),
    "ticket_created": ("問い合わせを作成しました(問い合わせ番号:{number})", "Ticket created (number {number})"),
    "no_tickets_found": ("該当する問い合わせはありません", "No matching requests"),
    "associated": ("チャットを問い合わせ {number} に関連付けました", "Chat associated with ticket {number}"),
    "status_set": ("問い合わせ {number} のステータスを{status}にしました", "Ticket {number} is now {status}"),
    "no_chat_ticket": ("このチャットに関連する問い合わせはありません", "No ticket is linked to this chat"),
    # refusals and usage
    "refused": ("実行できませんでした: {reason}", "Not done: {reason}"),
    "unavailable": (
        "{service}に接続できませんでした。もう一度お試しください",
        "The {service} service could not be reached: try again",
    ),
    "not_supported": ("この機能は利用できません: {what}", "Not available: {what}"),
    "needs_chat": ("このコマンドはチャットのウィンドウで入力してください", "Type this command in a chat's window"),
    "unknown": ("不明なコマンドです: {typed}(#help でコマンドの一覧)", "Unknown command: {typed} (#help lists them)"),
    "usage": ("使い方: {usage}", "Usage: {usage}"),
}

# Usage per verb: (ja, en).
USAGE: dict[str, tuple[str, str]] = {
    "#help": ("#help [all|misc|support|crm]", "#help [all|misc|support|crm]"),
    "#t": ('#t <メールアドレス> [メモ] または #t "<部門名>" [メモ]', '#t <email> [note] or #t "<department>" [note]'),
    "#i": ("#i <メールアドレス> [メモ]", "#i <email> [note]"),
    "#info": ("#info", "#info"),
    "#b": ("#b <ブロックの理由>", "#b <reason>"),
    "#an": ("#an <メモ>", "#an <note>"),
    "#n": ("#n", "#n"),
    "#h": ("#h", "#h"),
    "#d": ("#d", "#d"),
    "#p": ("#p <URL (http/https)>", "#p <URL (http/https)>"),
    "#m": ("#m", "#m"),
    "#e": ("#e [30|45|60|90|cancel]", "#e [30|45|60|90|cancel]"),
    "#crm info": ("#crm info", "#crm info"),
    "#support": (
        "#support info|ticketinfo|recentreq|conasreq <優先度><ステータス><分類>|searchreq <メールアドレス|問い合わせID|名前>"
        "|associate <問い合わせID>|setreqstatus <open|close>",
        "#support info|ticketinfo|recentreq|conasreq <priority><status><category>|searchreq <email|ticket id|name>"
        "|associate <ticket id>|setreqstatus <open|close>",
    ),
    "#support info": ("#support info", "#support info"),
    "#support ticketinfo": ("#support ticketinfo", "#support ticketinfo"),
    "#support recentreq": ("#support recentreq", "#support recentreq"),
    "#support conasreq": (
        "#support conasreq <優先度 0-3><ステータス 0-3><分類 0-4>(例: #support conasreq 112)",
        "#support conasreq <priority 0-3><status 0-3><category 0-4> (e.g. #support conasreq 112)",
    ),
    "#support searchreq": ("#support searchreq <メールアドレス|問い合わせID|名前>", "#support searchreq <email|ticket id|name>"),
    "#support associate": ("#support associate <問い合わせID>", "#support associate <ticket id>"),
    "#support setreqstatus": ("#support setreqstatus <open|close>", "#support setreqstatus <open|close>"),
    "y": ("y(承諾)/ n(辞退)", "y (accept) / n (decline)"),
    "n": ("y(承諾)/ n(辞退)", "y (accept) / n (decline)"),
}

# #help: (ja, en) lines per topic; "all" is every topic.
HELP: dict[str, tuple[tuple[str, str], ...]] = {
    "misc": (
        ("#help [all|misc|support|crm] - コマンドのヘルプ", "#help [all|misc|support|crm] - help on the commands"),
        ("#t <メールアドレス> [メモ] - チャットを担当者に転送", "#t <email> [note] - transfer the chat to an agent"),
        ('#t "<部門名>" [メモ] - チャットを部門に転送', '#t "<department>" [note] - transfer the chat to a department'),
        ("#i <メールアドレス> [メモ] - 担当者をチャットに招待", "#i <email> [note] - invite an agent into the chat"),
        ("#info - 訪問者の情報", "#info - the visitor's details"),
        ("#b <理由> - 訪問者のIPをブロック", "#b <reason> - block the visitor's IP"),
        ("#an <メモ> - メモの追加", "#an <note> - add a note"),
        ("#n - メモの表示", "#n - show the notes"),
        ("#h - 履歴を表示", "#h - show the history"),
        ("#d - 部門の一覧", "#d - list the departments"),
        ("#p <URL> - 訪問者にページを共有", "#p <URL> - share a page with the visitor"),
        ("#m - チャットのメンバーを表示", "#m - show the chat's members"),
        ("#e - チャットを終了", "#e - end the chat"),
        ("#e <30|45|60|90> - X秒後にチャットを終了", "#e <30|45|60|90> - end the chat after X seconds"),
        ("#e cancel - 保留中の終了をキャンセル", "#e cancel - cancel the pending end"),
        ("y / n - チャットの依頼や転送を承諾 / 辞退", "y / n - accept / decline a chat offer or transfer"),
    ),
    "support": (
        ("#support info - 訪問者のサポート情報", "#support info - the visitor's support information"),
        ("#support ticketinfo - 問い合わせの情報", "#support ticketinfo - the chat's ticket"),
        ("#support recentreq - 訪問者の最近の問い合わせ", "#support recentreq - the visitor's recent requests"),
        (
            "#support conasreq <優先度><ステータス><分類> - チャットを問い合わせに変換",
            "#support conasreq <priority><status><category> - convert the chat into a ticket",
        ),
        (
            "#support searchreq <メールアドレス|問い合わせID|名前> - 問い合わせを検索",
            "#support searchreq <email|ticket id|name> - search tickets",
        ),
        ("#support associate <問い合わせID> - 問い合わせに関連付け", "#support associate <ticket id> - associate the chat"),
        ("#support setreqstatus <open|close> - ステータスを変更", "#support setreqstatus <open|close> - reopen or close"),
    ),
    "crm": (("#crm info - 訪問者のCRM情報", "#crm info - the visitor's CRM information"),),
}
HELP_HEAD = {
    "all": ("すべてのコマンド:", "All commands:"),
    "misc": ("その他のコマンド:", "Other commands:"),
    "support": ("サポートのコマンド:", "Support commands:"),
    "crm": ("CRMのコマンド:", "CRM commands:"),
}


def say(key: str, locale: str, **values) -> str:
    ja, en = TEXTS[key]
    return (ja if locale_of(locale) == "ja" else en).format(**values)


def usage_of(verb: str, locale: str) -> str:
    ja, en = USAGE[verb]
    return say("usage", locale, usage=ja if locale_of(locale) == "ja" else en)


def help_lines(topic: str, locale: str) -> list[str]:
    topic = topic or "all"
    index = 0 if locale_of(locale) == "ja" else 1
    topics = ("misc", "support", "crm") if topic == "all" else (topic,)
    return [HELP_HEAD[topic][index]] + [pair[index] for t in topics for pair in HELP[t]]
