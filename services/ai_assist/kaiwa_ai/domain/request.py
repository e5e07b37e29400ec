"""AI-01: what a rewrite request may be. Every refusal says what is wrong and how to fix it.

Offsets are Unicode code points (what Python's str counts): a UTF-16 client (JavaScript,
Java, C#) counts a character outside the Basic Multilingual Plane (an emoji, a rare
kanji) as two units and must convert, e.g. JavaScript `[...text.slice(0, i)].length`.
A span must also begin and end on user-perceived characters (grapheme clusters): not
between a letter and its combining mark, inside an emoji sequence (👩‍💻, 🇯🇵, 👍🏽) or
between a character and its variation selector.
"""

from __future__ import annotations

import regex

from kaiwa_common.errors import InvalidArgument, parse_uuid

from .language import detect
from .model import LANGUAGES, LENGTHS, MAX_TEXT, TONES, RewriteRequest

_GRAPHEME = regex.compile(r"\X")
_LINKS = regex.compile(r"(?i)\b(?:https?://|www\.)\S+|\S+@\S+|`[^`]*`")


def validate_rewrite(
    text: str, tone: str, length: str, language: str = "", span: tuple[int, int] | None = None, chat_id: str = ""
) -> RewriteRequest:
    if not text.strip():
        raise InvalidArgument("text is required (the draft to rewrite)", field="text")
    if len(text) > MAX_TEXT:
        raise InvalidArgument(f"text is {len(text)} characters; at most {MAX_TEXT} can be rewritten", field="text")
    if tone not in TONES:
        raise InvalidArgument(f"tone must be one of {', '.join(TONES)}, not {tone!r}", field="tone")
    if length not in LENGTHS:
        raise InvalidArgument(f"length must be one of {', '.join(LENGTHS)}, not {length!r}", field="length")
    start, end = _span(text, span)
    code, detected = _language(text[start:end] if span else text, language)
    chat = parse_uuid(chat_id.strip(), "chat_id") if chat_id.strip() else ""
    return RewriteRequest(text, tone, length, code, detected, start, end, chat)


def _span(text: str, span: tuple[int, int] | None) -> tuple[int, int]:
    if span is None:
        return 0, len(text)
    start, end = span
    if start < 0 or end < 0:
        raise InvalidArgument(f"span [{start}, {end}) has a negative offset", field="span")
    if start >= end:
        raise InvalidArgument(f"span [{start}, {end}) is empty: end must be greater than start", field="span")
    if end > len(text):
        raise InvalidArgument(
            f"span [{start}, {end}) ends after the text ({len(text)} code points; offsets count code points, "
            "not UTF-16 units or bytes)",
            field="span",
        )
    boundaries = {m.start() for m in _GRAPHEME.finditer(text)} | {len(text)}
    for name, offset in (("start", start), ("end", end)):
        if offset not in boundaries:
            raise InvalidArgument(
                f"span {name} {offset} cuts a character in half (inside a grapheme cluster such as an emoji sequence "
                "or a letter with its combining mark); offsets count code points",
                field="span",
            )
    if not text[start:end].strip():
        raise InvalidArgument(f"span [{start}, {end}) selects only white space", field="span")
    return start, end


def _language(text: str, language: str) -> tuple[str, bool]:
    tag = language.strip().lower().replace("_", "-")
    if tag:
        primary = tag.split("-", 1)[0]
        if primary not in LANGUAGES:
            raise InvalidArgument(f"language {language!r} is not supported: use ja or en", field="language")
        return primary, False
    found = detect(_LINKS.sub(" ", text))
    if found is None:
        raise InvalidArgument("cannot tell the draft's language (it has no words); pass language ja or en", field="language")
    if found not in LANGUAGES:
        raise InvalidArgument(
            f"the draft looks like {found!r}, which is not supported: drafts in ja or en can be rewritten "
            "(pass language to override the detection)",
            field="language",
        )
    return found, True
