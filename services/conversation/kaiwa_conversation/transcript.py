"""CONV-09: print-ready transcript of a chat, as plain text and as PDF (fpdf2).

The PDF embeds a Japanese TrueType font. TrueType outlines matter: fpdf2 embeds them
as a CIDFontType2 with Identity-H encoding, which every text extractor reads back;
CFF-flavoured OpenType fonts (.otf, e.g. Noto Sans CJK) get a custom encoding CMap
that pypdf cannot decode. The font is IPAexGothic (fonts/ipaexg.ttf, shipped with this
package under the IPA Font License so a fresh machine needs no system fonts), or any
TrueType font named by KAIWA_TRANSCRIPT_FONT.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fpdf import FPDF

from kaiwa_common.errors import FailedPrecondition, InvalidArgument

from .config import TRANSCRIPT_FONT_ENV as FONT_ENV
from .config import ConversationSettings
from .domain import system_messages as sysmsg
from .domain.attachments import FILE_NOTICES

BUNDLED_FONT = Path(__file__).parent / "fonts" / "ipaexg.ttf"
INSTALL_HINT = f"set {FONT_ENV} to a Japanese TrueType (.ttf) font or restore {BUNDLED_FONT}"

LABELS = {
    "en": {
        "title": "Chat transcript",
        "chat": "Chat",
        "channel": "Channel",
        "visitor": "Visitor",
        "agent": "Agent",
        "department": "Department",
        "question": "Question",
        "started": "Started",
        "ended": "Ended",
        "completed": "Completed",
        "state": "State",
        "bot": "Bot",
        "system": "System",
        "file": "File",
        "link": "Link",
        "reply": "reply to #",
        "none": "-",
    },
    "ja": {
        "title": "チャット記録",
        "chat": "チャット",
        "channel": "チャネル",
        "visitor": "訪問者",
        "agent": "担当者",
        "department": "部門",
        "question": "質問",
        "started": "開始",
        "ended": "終了",
        "completed": "完了",
        "state": "状態",
        "bot": "ボット",
        "system": "システム",
        "file": "ファイル",
        "link": "リンク",
        "reply": "返信先 #",
        "none": "-",
    },
}


def _is_truetype(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) in (b"\x00\x01\x00\x00", b"true")


@lru_cache(maxsize=1)
def font_path() -> Path:
    """The Japanese font to embed, or a FailedPrecondition that says how to get one."""
    configured = ConversationSettings().transcript_font  # read when first needed (and after cache_clear)
    path = Path(configured) if configured else BUNDLED_FONT
    if path.is_file():
        if not _is_truetype(path):
            raise FailedPrecondition(f"transcript font {path} is not a TrueType font: {INSTALL_HINT}")
        return path
    where = f"{FONT_ENV}={configured} does not exist" if configured else f"{BUNDLED_FONT} is missing"
    raise FailedPrecondition(f"cannot render the transcript PDF: {where}; {INSTALL_HINT}")


def zone(name: str):
    if not name:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"time_zone {name!r} is not an IANA time zone (e.g. Asia/Tokyo)") from None


@dataclass
class Line:
    text: str
    muted: bool = False


@dataclass
class Document:
    title: str
    header: list[tuple[str, str]]
    lines: list[Line]

    @classmethod
    def build(cls, chat: dict, people: list[dict], rows: list[dict], locale: str, tz) -> "Document":
        lang = sysmsg.locale_of(locale)
        t = LABELS[lang]
        show = lambda when: when.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z") if when else t["none"]
        names = {p["agent_id"]: p["name"] or p["agent_id"] for p in people}
        agents = (
            ", ".join(
                names.get(a, a)
                for a in dict.fromkeys([chat["agent_id"]] * bool(chat["agent_id"]) + [p["agent_id"] for p in people])
            )
            or t["none"]
        )
        visitor = chat["visitor_name"] or t["visitor"]
        if chat["visitor_email"]:
            visitor += f" <{chat['visitor_email']}>"
        header = [
            (t["chat"], str(chat["id"])),
            (t["channel"], chat["channel"]),
            (t["state"], chat["state"]),
            (t["visitor"], visitor),
            (t["agent"], agents),
            (t["department"], chat["department_id"] or t["none"]),
            (t["question"], chat["question"] or t["none"]),
            (t["started"], show(chat["started_at"])),
            (t["ended"], show(chat["ended_at"])),
        ]
        if chat["completed_at"]:
            header.append((t["completed"], show(chat["completed_at"])))
        lines = []
        for row in rows:
            when = row["sent_at"].astimezone(tz).strftime("%H:%M:%S")
            who = {"visitor": chat["visitor_name"] or t["visitor"], "bot": t["bot"], "system": t["system"]}.get(
                row["sender_kind"]
            ) or names.get(row["sender_id"], row["sender_id"])
            lines.append(Line(f"[{when}] #{row['seq']} {who}: {cls._content(row, lang, t)}", muted=row["kind"] == "system"))
        return cls(t["title"], header, lines)

    @staticmethod
    def _content(row: dict, lang: str, t: dict) -> str:
        body = row["body"] or {}
        parts = []
        if row["reply_to_seq"]:
            parts.append(f"({t['reply']}{row['reply_to_seq']})")
        if "system" in body:
            parts.append(sysmsg.render(body["system"]["type"], body["system"]["params"], lang))
        if row["text"]:
            parts.append(row["text"])
        if "file" in body:
            f = body["file"]
            parts.append(f"[{t['file']}: {f['name']}, {f['mime_type']}, {f['size_bytes']} B] {f['url']}")
            if f.get("notice"):
                parts.append(f"({FILE_NOTICES[f['notice']][lang]})")
        if "link" in body:
            parts.append(f"[{t['link']}: {body['link']['title']}] {body['link']['url']}")
        if "rich" in body:
            rich = body["rich"]
            items = [o["title"] for o in rich.get("options", [])] + [c["title"] for c in rich.get("cards", [])]
            label = rich.get("template_name") or " | ".join(items)
            parts.append(f"[{rich['type']}: {label}]")
        return " ".join(parts)

    def text(self) -> str:
        width = max(len(k) for k, _ in self.header)
        head = [self.title, "=" * 40] + [f"{k.ljust(width)} : {v}" for k, v in self.header] + ["-" * 40]
        return "\n".join(head + [line.text for line in self.lines]) + "\n"

    def pdf(self) -> bytes:
        pdf = FPDF(format="A4")
        pdf.set_auto_page_break(True, margin=15)
        pdf.add_font("kaiwa-jp", fname=str(font_path()))
        pdf.add_page()
        pdf.set_font("kaiwa-jp", size=15)
        pdf.cell(0, 10, self.title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("kaiwa-jp", size=9.5)
        for key, value in self.header:
            pdf.multi_cell(0, 5.5, f"{key}: {value}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        for line in self.lines:
            pdf.set_text_color(*((128, 128, 128) if line.muted else (0, 0, 0)))
            pdf.multi_cell(0, 5.5, line.text, new_x="LMARGIN", new_y="NEXT")
        return bytes(pdf.output())
