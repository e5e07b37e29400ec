"""The evaluation set (data/eval_replies.jsonl: 120 support replies, 60 Japanese and 60
English) and the measures the tests and the README use.

    python -m services.ai_assist.tests.evaluation     # the table of the README

Measures, per reply: the share of its sentences that end in です/ます (Japanese), its
contractions (English), its length in characters; per tone and length: their means over
the set and the share of replies the rewrite changed.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from kaiwa_ai.domain import find_protected, rewrite
from kaiwa_ai.domain.english import count_contractions
from kaiwa_ai.domain.japanese import ends_polite
from kaiwa_ai.domain.protect import mask
from kaiwa_ai.domain.text import sentences

DATA = Path(__file__).resolve().parent / "data" / "eval_replies.jsonl"
TONES = ["keep", "formal", "casual", "polite", "assertive", "humorous"]
LENGTHS = ["keep", "shorter", "longer"]


def replies() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def desu_masu_share(text: str) -> float | None:
    """Share of the sentences with words that end in です/ます (None: no such sentence)."""
    masked, _ = mask(text, find_protected(text, "ja"))
    cores = [s.core for line in masked.split("\n") for s in sentences(line, "ja") if any(c.isalpha() for c in s.core)]
    return sum(ends_polite(c) for c in cores) / len(cores) if cores else None


def measure(text: str, language: str) -> dict:
    out = {"length": len(text), "contractions": count_contractions(text) if language == "en" else 0}
    out["desu_masu"] = desu_masu_share(text) if language == "ja" else None
    return out


def summary(rows: list[tuple[dict, str]], language: str) -> dict:
    """rows: (reply, its rewrite) pairs of one language, one tone, one length."""
    before = [measure(r["text"], language) for r, _ in rows]
    after = [measure(text, language) for _, text in rows]
    shares = [m["desu_masu"] for m in after if m["desu_masu"] is not None]
    return {
        "changed": sum(r["text"] != text for r, text in rows) / len(rows),
        "length_ratio": statistics.fmean(a["length"] / b["length"] for a, b in zip(after, before, strict=True)),
        "contractions": statistics.fmean(m["contractions"] for m in after),
        "desu_masu": statistics.fmean(shares) if shares else None,
    }


def table() -> str:
    lines = [
        "| language | tone | length | changed | length ratio | です/ます share | contractions per reply |",
        "|---|---|---|---|---|---|---|",
    ]
    for language in ("ja", "en"):
        subset = [r for r in replies() if r["language"] == language]
        for tone in TONES:
            for length in LENGTHS:
                rows = [(r, rewrite(r["text"], tone, length, language).text) for r in subset]
                s = summary(rows, language)
                share = f"{s['desu_masu']:.0%}" if s["desu_masu"] is not None else "-"
                contractions = f"{s['contractions']:.2f}" if language == "en" else "-"
                ratio = f"{s['length_ratio']:.2f}"
                lines.append(f"| {language} | {tone} | {length} | {s['changed']:.0%} | {ratio} | {share} | {contractions} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
