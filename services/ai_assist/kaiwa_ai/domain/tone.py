"""AI-02: a tone for the agent's reply, from the sentiment of the customer's messages.

The customer's latest messages are scored from -1 to +1 and averaged with the later ones
weighing more (each message weighs twice the one three messages before it); messages
with no sentiment at all (score 0: "Where is my order?") do not dilute the others:

    sentiment s         mood            suggested tone
    s ≤ -0.5            upset           polite     (apologetic, soft requests, cushions)
    -0.5 < s ≤ -0.15    dissatisfied    formal     (calm, precise, professional)
    -0.15 < s < 0.25    neutral         keep       (nothing calls for a change)
    s ≥ 0.25            pleased         casual     (friendly)
    s ≥ 0.25 and joking playful         humorous   (the customer jokes first: 笑, w, lol, 😂)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_JOKING = re.compile(r"笑|（笑）|\(笑\)|[wｗ]{2,}\s*$|草$|\blol\b|\blmao\b|\bhaha+\b|\bhehe+\b|😂|🤣|😆|😄|😜|😹", re.IGNORECASE)

MOODS = {
    "upset": (
        "polite",
        "The customer sounds upset: apologise and ask softly.",
        "お客様はお怒りのようです。お詫びを添え、丁寧にお願いしましょう。",
    ),
    "dissatisfied": (
        "formal",
        "The customer sounds dissatisfied: answer calmly and precisely.",
        "お客様はご不満のようです。落ち着いて、正確にお答えしましょう。",
    ),
    "neutral": (
        "keep",
        "The customer sounds neutral: keep your usual tone.",
        "お客様は落ち着いています。いつもの口調で大丈夫です。",
    ),
    "pleased": (
        "casual",
        "The customer sounds happy: a friendly tone fits.",
        "お客様は満足されているようです。親しみやすい口調が合います。",
    ),
    "playful": (
        "humorous",
        "The customer is in a joking mood: a light touch fits.",
        "お客様は冗談を交えています。軽いユーモアも合います。",
    ),
}
NO_MESSAGES = (
    "The customer has not written yet: keep your usual tone.",
    "お客様のメッセージがまだありません。いつもの口調で大丈夫です。",
)


@dataclass(frozen=True)
class Scored:
    seq: int
    text: str
    score: float
    language: str


@dataclass(frozen=True)
class ToneSuggestion:
    tone: str  # a key of model.TONES ("keep": no change)
    mood: str  # "" when the customer has not written
    sentiment: float
    reason: str
    messages: list[Scored]
    language: str


def weighted(scored: list[Scored]) -> float:
    felt = [s for s in scored if s.score != 0]
    if not felt:
        return 0.0
    weights = [0.5 ** ((len(felt) - 1 - i) / 3) for i in range(len(felt))]
    return sum(w * s.score for w, s in zip(weights, felt, strict=True)) / sum(weights)


def mood_of(sentiment: float, joking: bool) -> str:
    if sentiment <= -0.5:
        return "upset"
    if sentiment <= -0.15:
        return "dissatisfied"
    if sentiment < 0.25:
        return "neutral"
    return "playful" if joking else "pleased"


def suggest(scored: list[Scored], locale: str) -> ToneSuggestion:
    japanese = locale == "ja"
    if not scored:
        return ToneSuggestion("keep", "", 0.0, NO_MESSAGES[japanese], [], "")
    sentiment = round(weighted(scored), 4)
    joking = any(_JOKING.search(s.text) for s in scored[-3:])
    mood = mood_of(sentiment, joking)
    tone, reason_en, reason_ja = MOODS[mood]
    languages = [s.language for s in scored]
    language = max(set(languages), key=languages.count)
    return ToneSuggestion(tone, mood, sentiment, reason_ja if japanese else reason_en, scored, language)
