"""AI-03: the tokens of a draft that every rewrite must give back unchanged.

    draft ──find_protected──► [Protected(start, end, kind, text)]
          ──mask──► text with each token replaced by one private-use character
          (the embedded rewriter works on this and cannot alter what it cannot see)
          ──unmask──► the tokens put back
    any backend's output ──missing_tokens──► what it lost or altered (refused when any)

Kinds: code (inline or fenced), quote (a markdown "> " line), link (markdown), url,
email, date, time, amount, phone, id (order and ticket ids: #1234, A-10293, ORD-2024-7),
number, name, and private (private-use characters already in the draft, masked so that
they can never be mistaken for a mask). Names are what can be told without a model:
capitalised English words that do not start a sentence, words after Mr/Ms/Dr or a
salutation, and in Japanese the proper nouns the analyser tags (人名, 組織, 地域) and
the word before 様/さん/さま/殿/氏.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .ja_morph import analyse

PUA_FIRST = 0xE000
PUA_LAST = 0xF8FF

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DAY = r"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day"
_NUM = r"[0-9０-９][0-9０-９,，]*(?:[.．][0-9０-９]+)?"

# Order matters only for ties: the longest match starting first wins.
_PATTERNS: list[tuple[str, str]] = [
    ("code", r"```.*?```|`[^`\n]+`"),
    ("quote", r"(?m)^[ \t]*>.*$"),
    ("link", r"\[[^\]\n]*\]\([^)\s]+\)"),
    ("url", r"(?i)\b(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+"),
    ("email", r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+"),
    ("private", r"[\uE000-\uF8FF]+"),
    (
        "date",
        rf"\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}|\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?"
        rf"|(?:[0-9０-９]{{4}}年)?[0-9０-９]{{1,2}}月[0-9０-９]{{1,2}}日(?:[（(][月火水木金土日][)）])?|[0-9０-９]{{4}}年[0-9０-９]{{1,2}}月"
        rf"|\b{_MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?(?:,? \d{{4}})?\b|\b\d{{1,2}}(?:st|nd|rd|th)? {_MONTH}(?: \d{{4}})?\b"
        rf"|\b{_DAY}\b|[月火水木金土日]曜日?",
    ),
    (
        "time",
        r"\b\d{1,2}:\d{2}(?:\s?[AaPp]\.?[Mm]\.?)?|\b\d{1,2}\s?(?:am|pm|AM|PM)\b"
        r"|(?:午前|午後)?[0-9０-９]{1,2}時(?:[0-9０-９]{1,2}分|半)?",
    ),
    (
        "amount",
        rf"(?:US\$|[$€£¥￥]|(?:USD|JPY|EUR|GBP) ?){_NUM}"
        rf"|{_NUM}\s?(?:万|千|億)?(?:円|ドル|ユーロ|USD|JPY|EUR|GBP|yen|dollars?\b|euros?\b)",
    ),
    ("phone", r"\+\d{1,3}[ \-]?\d{1,4}[ \-]\d{2,4}[ \-]\d{3,4}|\b0\d{1,4}-\d{1,4}-\d{3,4}\b"),
    ("id", r"#[0-9A-Za-z][\w\-]*|\b[A-Z]{1,6}-?[A-Z0-9]*\d[A-Z0-9]*(?:-[A-Z0-9]+)*\b"),
    ("number", rf"{_NUM}(?:%|％)?"),
    ("name", r"\b(?:Mr|Mrs|Ms|Dr|Prof)\.? [A-Z][\w'’\-]+(?: [A-Z][\w'’\-]+)?"),
]
_COMPILED = [(kind, re.compile(pattern, re.DOTALL if kind == "code" else 0)) for kind, pattern in _PATTERNS]
_TRAILING = ".,;:!?)]}'\"」』）。、"
_SALUTATION = re.compile(r"\b(?:Hi|Hello|Hey|Dear|Thanks|Thank you|Good (?:morning|afternoon|evening)),? ([A-Z][\w'’\-]+)")
_CAPITALISED = re.compile(r"\b[A-Z][\w'’\-]*[A-Za-z0-9]\b|\b[A-Z]\b")
# Capitalised words that are language, not names (they may be rewritten).
NOT_NAMES = frozenset(
    "I I'm I'll I've I'd OK ASAP FYI BTW FAQ TL DR PS P.S. Hi Hello Hey Dear Thanks Thank Please Sorry Yes No Sure "
    "Unfortunately However Also Again Best Kind Regards Cheers Sincerely Have Let Could Would Can Will We You Your "
    "The This That It Our If As For And But So Just Okay Great Awesome Certainly Apologies Hope Otherwise Meanwhile "
    "Additionally Therefore Finally Alternatively Instead Now Well Anyway Oh Oops Absolutely Luckily Good Welcome "
    "Currently Actually Basically Honestly Perfect Done Noted Understood Right Correct Alright Happy Glad Once When".split()
)
_HONORIFIC = ("様", "さま", "さん", "殿", "氏")
_JA_NAME_POS = ("人名", "組織", "地域")


@dataclass(frozen=True)
class Protected:
    start: int
    end: int
    kind: str
    text: str


def find_protected(text: str, language: str) -> list[Protected]:
    """Non-overlapping protected tokens of `text`, in order."""
    found = [_trimmed(kind, m.start(), m.end(), text) for kind, regex in _COMPILED for m in regex.finditer(text)]
    found += _english_names(text)
    if language == "ja":
        found += _japanese_names(text)
    found.sort(key=lambda p: (p.start, -(p.end - p.start)))
    chosen: list[Protected] = []
    for token in found:
        if token.end > token.start and (not chosen or token.start >= chosen[-1].end):
            chosen.append(token)
    return chosen


def _trimmed(kind: str, start: int, end: int, text: str) -> Protected:
    if kind in ("url", "email", "id"):
        while end > start + 1 and text[end - 1] in _TRAILING and not (text[end - 1] == ")" and "(" in text[start:end]):
            end -= 1
    return Protected(start, end, kind, text[start:end])


def _english_names(text: str) -> list[Protected]:
    names = [Protected(m.start(1), m.end(1), "name", m.group(1)) for m in _SALUTATION.finditer(text)]
    for m in _CAPITALISED.finditer(text):
        word = m.group(0)
        if word in NOT_NAMES:
            continue
        before = text[: m.start()].rstrip(" \t")
        starts_sentence = not before or before[-1] in '.!?\n:;"“(「*-' or before.endswith(">")
        if not starts_sentence or text[m.end() : m.end() + 1] == ",":
            names.append(Protected(m.start(), m.end(), "name", word))
    return names


def _japanese_names(text: str) -> list[Protected]:
    names = []
    morphs = analyse(text)
    for i, morph in enumerate(morphs):
        start, offset = morph.start, morph.start + len(morph.surface)
        nxt = morphs[i + 1].surface if i + 1 < len(morphs) else ""
        proper = morph.pos == "名詞" and morph.pos1 == "固有名詞" and morph.pos2 in _JA_NAME_POS
        before_honorific = morph.pos == "名詞" and nxt in _HONORIFIC and morph.pos1 not in ("接尾", "非自立", "代名詞")
        if proper or before_honorific:
            names.append(Protected(start, offset, "name", morph.surface))
    return names


def mask(text: str, tokens: list[Protected]) -> tuple[str, list[str]]:
    """Each token replaced by one private-use character; returns the text and the table."""
    parts, table, last = [], [], 0
    for token in tokens:
        parts.append(text[last : token.start])
        parts.append(chr(PUA_FIRST + len(table)))
        table.append(token.text)
        last = token.end
    parts.append(text[last:])
    return "".join(parts), table


def unmask(text: str, table: list[str]) -> str:
    if not table:
        return text
    return re.sub(r"[\uE000-\uF8FF]", lambda m: _restore(m.group(0), table), text)


def _restore(char: str, table: list[str]) -> str:
    index = ord(char) - PUA_FIRST
    return table[index] if index < len(table) else char


def is_mask(char: str) -> bool:
    return PUA_FIRST <= ord(char) <= PUA_LAST


def missing_tokens(tokens: list[Protected], output: str) -> list[str]:
    """The protected tokens that `output` no longer holds as often as the draft did."""
    wanted = Counter(t.text for t in tokens)
    return [token for token, count in wanted.items() if output.count(token) < count]
