"""AI-03 as properties: on any text (junk included) and in every tone and length, the
embedded rewriter never crashes and gives back every protected token unchanged; and
through the gRPC API, any draft gets an answer or a clear INVALID_ARGUMENT."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kaiwa.ai_assist.v1 import ai_assist_pb2 as pb
from kaiwa.ai_assist.v1.ai_assist_pb2_grpc import AiAssistServiceStub

from kaiwa_ai.domain import LENGTHS, TONES, find_protected, missing_tokens, rewrite
from kaiwa_ai.main import SPEC
from tests.fixtures import auth, channel_to, running

TOKENS = [
    "https://example.jp/a?b=1",
    "jane.doe@example.com",
    "#4411",
    "ORD-2024-0117",
    "A-10293",
    "$1,299.00",
    "¥12,800",
    "3,500円",
    "2024-07-01",
    "5月12日",
    "10:30",
    "+81 3-1234-5678",
    "田中様",
    "Mr. Dawson",
    "`code`",
    "\ue000",
]
WORDS = ["Send", "please", "we can't", "thanks", "です。", "ます", "ください", "しました", "！", "?", "\n", "> ", "- ", " ", "、"]
junk = st.lists(
    st.one_of(st.sampled_from(TOKENS), st.sampled_from(WORDS), st.text(min_size=1, max_size=12)), min_size=1, max_size=25
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=junk, tone=st.sampled_from(TONES), length=st.sampled_from(LENGTHS), language=st.sampled_from(["ja", "en"]))
def test_ai03_the_rewriter_never_crashes_and_keeps_protected_tokens_on_junk(text, tone, length, language):
    protected = find_protected(text, language)
    result = rewrite(text, tone, length, language)
    assert missing_tokens(protected, result.text) == []
    if tone == "keep" and length == "keep":
        assert result.text == text


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_ai03_protected_tokens_never_overlap_and_match_the_text(text):
    last = 0
    for token in find_protected(text, "ja"):
        assert token.start >= last and token.end > token.start
        assert text[token.start : token.end] == token.text
        last = token.end


@pytest.fixture(scope="module")
async def ai():
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("KAIWA_LLM_URL", raising=False)
        async with running(SPEC) as runner, channel_to(runner) as channel:
            yield AiAssistServiceStub(channel)


async def test_ai03_any_draft_through_the_api_keeps_its_tokens_or_is_refused_clearly(ai):
    metadata = auth("t-props", "agent", "agent-1")
    drafts = junk.filter(lambda t: "\x00" not in t)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=drafts, tone=st.sampled_from(list(pb.Tone.values())), length=st.sampled_from(list(pb.Length.values())))
    def check(text, tone, length):
        calls.append((text, tone, length))

    calls: list = []
    check()
    for text, tone, length in calls:
        try:
            result = await ai.Rewrite(pb.RewriteRequest(text=text, tone=tone, length=length), metadata=metadata)
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (text, err.details())
            continue
        assert all(result.text.count(t) >= text.count(t) for t in result.protected_tokens), text
