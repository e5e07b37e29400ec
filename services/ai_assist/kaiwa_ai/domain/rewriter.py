"""The embedded rewriter (AI-01): deterministic, no model, no network.

    text ──mask protected tokens (AI-03)──► lines ──► sentences
         ──tone rules per sentence (english.py / japanese.py)
         ──length: shorter = fillers and wordy phrases cut, framing sentences
                   (greetings, "let me know if...") and repeated sentences dropped;
                   longer = a greeting and a closing in the chosen tone (no new facts)
         ──humorous: a playful closing line, unless shorter was asked
         ──unmask──► the rewrite, and the changes in words

Only the tone and length asked for are touched; a sentence no rule knows stays as it
was. Markdown markers, quoted lines and code are never rewritten.
"""

from __future__ import annotations

import re
import zlib
from types import ModuleType

from . import english, japanese
from .model import Change, Rewritten
from .protect import Protected, find_protected, mask, unmask
from .text import Edit, Sentence, has_mask, make_sentence, sentences

_LANGUAGE: dict[str, ModuleType] = {"en": english, "ja": japanese}
_SALUTATION = re.compile(r"^((hi|hello|hey|dear)\b.*,|.*(様|さん|さま|各位|御中))$", re.IGNORECASE)
MAX_CHANGES = 40


def rewrite(
    text: str,
    tone: str,
    length: str,
    language: str,
    at_start: bool = True,
    at_end: bool = True,
    protected: list[Protected] | None = None,
) -> Rewritten:
    """`text` in `tone` and `length`; `at_start`/`at_end`: whether it begins/ends the draft
    (a greeting or a closing is only added there); `protected`: find_protected(text), when
    the caller has it already."""
    rules = _LANGUAGE[language]
    masked, table = mask(text, find_protected(text, language) if protected is None else protected)
    lines = [sentences(line, language) for line in masked.split("\n")]
    edit = Edit(cushions=99 if length == "shorter" else 0)  # shorter: no cushion words added
    for sentence in _all(lines):
        if tone != "keep" and _wordy(sentence):
            rules.tone_sentence(sentence, tone, edit)
    toned = len(_joined(lines))
    for sentence in _all(lines):
        if length != "keep" and _wordy(sentence):
            rules.length_sentence(sentence, length, tone, edit)
    if length == "shorter":
        _drop_framing(lines, rules.length_data()["shorter"]["boilerplate"], edit)
    if length == "longer":
        _frame(lines, tone, language, rules.length_data()["longer"], edit, at_start, at_end)
        extra = rules.length_data()["longer"]["extras"][tone]
        wordy = any(_wordy(s) for s in _all(lines))
        if wordy and at_end and len(_joined(lines)) <= toned and extra not in masked:
            _append(lines, extra, language, edit, "length.extra", "courteous line added")
    closings = rules.tone_data(tone).get("closings")
    if tone == "humorous" and closings and length != "shorter" and at_end:
        line = closings[zlib.crc32(text.encode()) % len(closings)]
        _append(lines, line, language, edit, "humour.closing", "playful closing line")
    out = _joined(lines)
    return Rewritten(text=unmask(out, table), changes=[_unmasked(c, table) for c in edit.changes[:MAX_CHANGES]])


def _joined(lines: list[list[Sentence]]) -> str:
    return "\n".join("".join(s.text for s in line) for line in lines)


def _all(lines: list[list[Sentence]]):
    for line in lines:
        yield from line


def _wordy(sentence: Sentence) -> bool:
    """A sentence with words of its own (not only masked tokens, markup and spaces)."""
    return any(c.isalpha() and not has_mask(c) for c in sentence.core)


def _drop_framing(lines: list[list[Sentence]], boilerplate: list[str], edit: Edit) -> None:
    patterns = [re.compile(p, re.IGNORECASE) for p in boilerplate]
    framing = {
        id(s)
        for s in _all(lines)
        if _wordy(s) and not has_mask(s.core) and any(p.search((s.core + s.closing).strip()) for p in patterns)
    }
    if not any(_wordy(s) and id(s) not in framing for s in _all(lines)):
        return
    seen: set[str] = set()
    emptied = set()
    for index, line in enumerate(lines):
        kept = []
        for sentence in line:
            key = sentence.core.strip()
            if id(sentence) in framing or (key in seen and _wordy(sentence)):
                edit.note("length.dropped", "framing or repeated sentence dropped", sentence.text.strip(), "")
                continue
            seen.add(key)
            kept.append(sentence)
        if line and not "".join(s.text for s in kept).strip():
            emptied.add(index)
        elif kept and line[0].lead and kept[0] is not line[0]:
            kept[0].lead = line[0].lead
        if kept and kept[-1] is not line[-1]:
            kept[-1].closing = kept[-1].closing.rstrip(" \t")
        lines[index] = kept
    lines[:] = [line for index, line in enumerate(lines) if index not in emptied]


def _frame(lines, tone: str, language: str, data: dict, edit: Edit, at_start: bool, at_end: bool) -> None:
    wordy = [s for s in _all(lines) if _wordy(s)]
    if not wordy:
        return
    head = " ".join(s.core for s in wordy[:2])
    if at_start and not re.search(data["greeting_present"], head, re.IGNORECASE):
        _prepend(lines, data["greetings"][tone], language, edit)
    if at_end and not re.search(data["closing_present"], " ".join(s.core for s in wordy[-2:]), re.IGNORECASE):
        _append(lines, data["closings"][tone], language, edit, "length.closing", "courteous closing added")


def _gap(language: str) -> str:
    return " " if language == "en" else ""


def _prepend(lines: list[list[Sentence]], greeting: str, language: str, edit: Edit) -> None:
    index = next(i for i, line in enumerate(lines) if any(_wordy(s) for s in line))
    line = lines[index]
    first = line[0]
    edit.note("length.greeting", "courteous opening added", "", greeting)
    if _SALUTATION.match(first.core.strip()):
        if len(line) == 1:  # "Hi Sarah," alone on its line: the greeting opens the next line
            lines.insert(index + 1, [make_sentence(greeting)])
            return
        position, first = 1, line[1]
    else:
        position = 0
    new = make_sentence(greeting, first.lead)
    new.closing += _gap(language)
    first.lead = ""
    line.insert(position, new)


_SIGN_OFF = re.compile(
    r"^(kind regards|best regards|warm regards|regards|best|cheers|sincerely|thanks|thank you|many thanks|all the best"
    r"|take care)[,.!]?$",
    re.IGNORECASE,
)


def _closing_line(lines: list[list[Sentence]]) -> tuple[int, bool]:
    """(the line a closing goes after, whether that line is prose it can join)."""
    filled = [i for i, line in enumerate(lines) if "".join(s.text for s in line).strip()]
    if not filled:
        return len(lines) - 1, False
    last = filled[-1]
    for i in reversed(filled[-3:]):  # a sign-off ("Kind regards,\nTom") stays last
        if _SIGN_OFF.match("".join(s.text for s in lines[i]).strip()):
            before = [j for j in filled if j < i]
            if not before:
                return last, False
            last = before[-1]
            break
    line = lines[last]
    prose = _wordy(line[-1]) and not line[0].lead.strip() and not has_mask(line[-1].core[:1])
    return last, prose


def _append(lines: list[list[Sentence]], closing: str, language: str, edit: Edit, rule: str, description: str) -> None:
    index, prose = _closing_line(lines)
    line = lines[index]
    if prose:
        last = line[-1]
        trailing = last.closing[len(last.closing.rstrip()) :]
        last.closing = last.closing.rstrip() + (_gap(language) if last.closing.rstrip() else _ending(language))
        new = make_sentence(closing)
        new.closing += trailing
        line.append(new)
    else:
        lines.insert(index + 1, [make_sentence(closing)])
    edit.note(rule, description, "", closing)


def _ending(language: str) -> str:
    return ". " if language == "en" else "。"


def _unmasked(change: Change, table: list[str]) -> Change:
    return Change(change.rule, change.description, unmask(change.before, table), unmask(change.after, table))
