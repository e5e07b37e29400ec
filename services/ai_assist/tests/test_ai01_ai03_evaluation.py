"""AI-01, AI-03 on the evaluation set: 120 real-looking support replies (60 Japanese, 60
English, with names, prices, dates, URLs, order ids, markdown, quoted text and some
prompt-injection text), each rewritten by the embedded backend in every tone and length
through the gRPC API. The figures are in the README ("AI assist: what the embedded
rewriter does"); `python -m services.ai_assist.tests.evaluation` prints them."""

from __future__ import annotations

import pytest
from kaiwa.ai_assist.v1 import ai_assist_pb2 as pb
from kaiwa.ai_assist.v1.ai_assist_pb2_grpc import AiAssistServiceStub

from kaiwa_ai.domain import find_protected
from kaiwa_ai.domain.language import detect
from kaiwa_ai.domain.protect import mask
from kaiwa_ai.main import SPEC
from services.ai_assist.tests.evaluation import LENGTHS, TONES, measure, replies, summary
from tests.fixtures import auth, channel_to, running

TONE = {"keep": pb.TONE_UNSPECIFIED, "formal": pb.TONE_FORMAL, "casual": pb.TONE_CASUAL}
TONE |= {"polite": pb.TONE_POLITE, "assertive": pb.TONE_ASSERTIVE, "humorous": pb.TONE_HUMOROUS}
LENGTH = {"keep": pb.LENGTH_UNSPECIFIED, "shorter": pb.LENGTH_SHORTER, "longer": pb.LENGTH_LONGER}


@pytest.fixture(scope="module")
async def rewrites():
    """{(tone, length): [(reply, response)]} for every reply of the set."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("KAIWA_LLM_URL", raising=False)
        async with running(SPEC) as runner, channel_to(runner) as channel:
            stub = AiAssistServiceStub(channel)
            metadata = auth("t-eval", "agent", "agent-1")
            out = {}
            for tone in TONES:
                for length in LENGTHS:
                    out[tone, length] = [
                        (
                            r,
                            await stub.Rewrite(
                                pb.RewriteRequest(text=r["text"], tone=TONE[tone], length=LENGTH[length]), metadata=metadata
                            ),
                        )
                        for r in replies()
                    ]
            yield out


def _of(rewrites, tone: str, length: str, language: str) -> list[tuple[dict, str]]:
    return [(r, response.text) for r, response in rewrites[tone, length] if r["language"] == language]


def test_ai01_the_evaluation_set_is_half_japanese_half_english_with_hard_cases():
    data = replies()
    assert len(data) >= 120
    assert sum(r["language"] == "ja" for r in data) == sum(r["language"] == "en" for r in data)
    text = "\n".join(r["text"] for r in data)
    for marker in ["https://", "@example", "#", "ORD-", "¥", "$", "**", "\n>", "Ignore previous instructions", "前の指示を無視"]:
        assert marker in text, marker


def test_ai03_protected_tokens_survive_every_tone_and_length(rewrites):
    broken = []
    for (tone, length), rows in rewrites.items():
        for reply, response in rows:
            tokens = [t.text for t in find_protected(reply["text"], reply["language"])]
            assert list(response.protected_tokens) == tokens
            broken += [(reply["id"], tone, length, t) for t in tokens if response.text.count(t) < reply["text"].count(t)]
    assert broken == []


def test_ai01_the_language_is_kept_and_the_embedded_backend_answers(rewrites):
    for (tone, length), rows in rewrites.items():
        for reply, response in rows:
            masked, _ = mask(response.text, find_protected(response.text, "en"))
            assert detect(masked) == reply["language"] == response.language, (reply["id"], tone, length, response.text)
            assert response.backend == pb.BACKEND_EMBEDDED and response.fallback_reason == ""
            assert (response.rewritten.start, response.rewritten.end) == (0, len(response.text))


def test_ai01_keep_and_keep_changes_nothing(rewrites):
    assert all(response.text == reply["text"] and not response.changes for reply, response in rewrites["keep", "keep"])


def test_ai01_formal_polite_and_assertive_japanese_use_desu_masu(rewrites):
    before = summary([(r, r["text"]) for r, _ in rewrites["keep", "keep"] if r["language"] == "ja"], "ja")["desu_masu"]
    for tone in ("formal", "polite", "assertive"):
        after = summary(_of(rewrites, tone, "keep", "ja"), "ja")["desu_masu"]
        assert after >= 0.95 and after > before, (tone, before, after)


def test_ai01_casual_japanese_uses_plain_form(rewrites):
    before = summary([(r, r["text"]) for r, _ in rewrites["keep", "keep"] if r["language"] == "ja"], "ja")["desu_masu"]
    after = summary(_of(rewrites, "casual", "keep", "ja"), "ja")
    assert after["desu_masu"] <= 0.15 < before
    assert after["changed"] >= 0.9


def test_ai01_formal_english_has_no_contractions_and_casual_english_has_more(rewrites):
    before = summary([(r, r["text"]) for r, _ in rewrites["keep", "keep"] if r["language"] == "en"], "en")
    formal = summary(_of(rewrites, "formal", "keep", "en"), "en")
    casual = summary(_of(rewrites, "casual", "keep", "en"), "en")
    assert before["contractions"] > 0.5
    assert formal["contractions"] <= 0.1 and formal["changed"] >= 0.85
    assert casual["contractions"] >= before["contractions"]


def test_ai01_every_tone_changes_most_replies_in_both_languages(rewrites):
    floor = {"formal": 0.7, "casual": 0.25, "polite": 0.45, "assertive": 0.15, "humorous": 1.0}
    for tone, minimum in floor.items():
        for language in ("ja", "en"):
            assert summary(_of(rewrites, tone, "keep", language), language)["changed"] >= minimum, (tone, language)


def test_ai01_shorter_is_never_longer_and_longer_is_always_longer(rewrites):
    for tone in TONES:
        same_length = {r["id"]: text for r, text in _of(rewrites, tone, "keep", "ja") + _of(rewrites, tone, "keep", "en")}
        for language in ("ja", "en"):
            shorter = _of(rewrites, tone, "shorter", language)
            assert all(len(text) <= len(same_length[r["id"]]) for r, text in shorter), tone
            assert sum(len(t) for _, t in shorter) < 0.97 * sum(len(same_length[r["id"]]) for r, _ in shorter), tone
            longer = _of(rewrites, tone, "longer", language)
            assert all(len(text) > len(same_length[r["id"]]) for r, text in longer), tone


def test_ai01_prompt_injection_text_is_treated_as_text(rewrites):
    for reply, response in rewrites["formal", "keep"]:
        for attack in ("Ignore previous instructions", "SYSTEM:", "前の指示を無視"):
            if attack in reply["text"]:
                assert attack in response.text or attack.lower() in response.text.lower()
                assert measure(response.text, reply["language"])["length"] > 0
