"""Drafts as lines, sentences and rule tables; shared by the English and Japanese rules.

A sentence is  lead (spaces, a markdown list or heading marker) + core + closing (final
punctuation, emoji, spaces). Rules rewrite the core; lead and closing stay unless a rule
says otherwise (a request becomes a question, an exclamation a full stop).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .model import Change

DATA = Path(__file__).resolve().parent.parent / "data"
MASKS = "\ue000-\uf8ff"
EMOJI = "\U0001f000-\U0001faff\u2600-\u27bf\ufe0f\u200d"
_LEAD = re.compile(rf"^(\s*(?:[-*+•・]|[0-9{MASKS}]+[.)]|#{{1,6}})\s+|\s+)")
_CLOSING = re.compile(rf"[。．.！!？?…～〜\s{EMOJI}]*$")
_SENTENCES = {
    "ja": re.compile(r"[^。！？!?\n]+(?:[。！？!?]+[」』）)]*)?\s*|[。！？!?]+\s*"),
    "en": re.compile(r"[^.!?\n]+(?:[.!?]+[\"')\]]*(?=\s|$))?\s*|[.!?]+\s*"),
}


@dataclass
class Sentence:
    lead: str
    core: str
    closing: str

    @property
    def text(self) -> str:
        return self.lead + self.core + self.closing


def sentences(line: str, language: str) -> list[Sentence]:
    out = []
    for match in _SENTENCES[language].finditer(line):
        part = match.group(0)
        lead = _LEAD.match(part).group(0) if not out and _LEAD.match(part) else ""
        rest = part[len(lead) :]
        closing = _CLOSING.search(rest).group(0)
        out.append(Sentence(lead, rest[: len(rest) - len(closing)], closing))
    return out


def make_sentence(text: str, lead: str = "") -> Sentence:
    closing = _CLOSING.search(text).group(0)
    return Sentence(lead, text[: len(text) - len(closing)], closing)


def has_mask(text: str) -> bool:
    return any("\ue000" <= c <= "\uf8ff" for c in text)


Rule = tuple[re.Pattern, str]


@lru_cache(maxsize=4)
def load(language: str) -> dict:
    with open(DATA / f"{language}.toml", "rb") as f:
        return tomllib.load(f)


def compile_rules(pairs: list[list[str]], flags: int = 0, verbs: str = "") -> list[Rule]:
    return [(re.compile(p.replace("VERBS", verbs), flags), r) for p, r in pairs]


@dataclass
class Edit:
    """What the rules did to one draft: the changes, and counters some rules need."""

    changes: list[Change] = field(default_factory=list)
    cushions: int = 0

    def note(self, rule: str, description: str, before: str, after: str) -> None:
        if before != after:
            self.changes.append(Change(rule=rule, description=description, before=before, after=after))


def apply(rules: list[Rule], core: str, edit: Edit, rule: str, description: str, keep_case: bool = False) -> str:
    """Each rule in turn on the core; one change per rule that matched."""
    for pattern, replacement in rules:
        new = pattern.sub(lambda m, r=replacement: _replace(m, r, keep_case), core)
        new = re.sub(r"\s{2,}", " ", new).strip() if new != core and keep_case else new
        if new != core:
            edit.note(rule, description, core, new)
            core = new
    return core


def _replace(match: re.Match, replacement: str, keep_case: bool) -> str:
    text = match.expand(replacement)
    if keep_case and text and match.group(0)[:1].isupper() and text[:1].islower():
        return text[0].upper() + text[1:]
    if keep_case and match.start() == 0 and text == "" and match.string[match.end() : match.end() + 1].islower():
        return ""  # the caller capitalises the new first word
    return text


def capitalise(core: str) -> str:
    return core[0].upper() + core[1:] if core and core[0].islower() else core
