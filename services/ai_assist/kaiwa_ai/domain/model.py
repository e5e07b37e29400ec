"""What a rewrite is asked for and what it gives back (AI-01), as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field

TONES = ("keep", "formal", "casual", "polite", "assertive", "humorous")
LENGTHS = ("keep", "shorter", "longer")
LANGUAGES = ("ja", "en")
MAX_TEXT = 4000  # code points; a chat draft, not a document
EMBEDDED_MODEL = "kaiwa-rules-1"


@dataclass(frozen=True)
class Change:
    rule: str
    description: str
    before: str
    after: str


@dataclass(frozen=True)
class RewriteRequest:
    text: str  # the whole draft
    tone: str  # one of TONES
    length: str  # one of LENGTHS
    language: str  # one of LANGUAGES
    language_detected: bool
    start: int  # the part to rewrite, in code points: [start, end)
    end: int
    chat_id: str = ""

    @property
    def selected(self) -> str:
        return self.text[self.start : self.end]

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.end == len(self.text)


@dataclass(frozen=True)
class Rewritten:
    """A rewrite of the selected part (or of the whole draft)."""

    text: str
    changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True)
class RewriteResult:
    text: str  # the whole draft with the suggestion in place
    start: int  # where the rewritten part lies in text
    end: int
    backend: str  # "embedded" or "llm"
    provider: str
    model: str
    changes: list[Change]
    protected: list[str]
    fallback_reason: str = ""
