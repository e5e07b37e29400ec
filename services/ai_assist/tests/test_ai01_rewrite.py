"""AI-01: rewrite a draft in a tone and a length through an OpenAI-compatible LLM.

The LLM is a local HTTP server speaking the real chat-completions wire format
(llm_server.py); the service runs on a free port against real PostgreSQL and NATS."""

from __future__ import annotations

import contextlib

import grpc
import pytest
from kaiwa.ai_assist.v1 import ai_assist_pb2 as pb
from kaiwa.ai_assist.v1.ai_assist_pb2_grpc import AiAssistServiceStub

from kaiwa_ai.main import SPEC
from kaiwa_common.devservers import free_port
from services.ai_assist.tests.llm_server import FakeLlm
from tests.fixtures import auth, channel_to, running, status_of

API_KEY = "sk-test-0123456789"
MODEL = "gpt-test-mini"
DRAFT_JA = "ご連絡ありがとうございます。注文番号 A-10293 の件、明日 https://example.jp/track で配送状況をご確認ください。"


@contextlib.asynccontextmanager
async def ai_service(**env: str):
    """The service started with these KAIWA_LLM_* settings (read when it starts)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("KAIWA_LLM_URL", "KAIWA_LLM_API_KEY", "KAIWA_LLM_MODEL", "KAIWA_LLM_TIMEOUT", "KAIWA_LLM_MAX_ATTEMPTS"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        async with running(SPEC) as runner, channel_to(runner) as channel:
            yield AiAssistServiceStub(channel)


@pytest.fixture(scope="module")
def llm():
    fake = FakeLlm(api_key=API_KEY)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
async def ai(llm):
    async with ai_service(KAIWA_LLM_URL=llm.url, KAIWA_LLM_API_KEY=API_KEY, KAIWA_LLM_MODEL=MODEL, KAIWA_LLM_TIMEOUT="5") as stub:
        yield stub


@pytest.fixture(autouse=True)
def fresh_llm(llm):
    llm.reset()


def agent(tenant: str):
    return auth(tenant, "agent", "agent-1")


async def test_ai01_rewrite_sends_a_chat_completion_with_tone_and_length(ai, llm, tenant):
    llm.reply = lambda body: "ご連絡いただき、誠にありがとうございます。"
    result = await ai.Rewrite(
        pb.RewriteRequest(text=DRAFT_JA, tone=pb.TONE_FORMAL, length=pb.LENGTH_SHORTER), metadata=agent(tenant)
    )
    assert result.text == "ご連絡いただき、誠にありがとうございます。"
    assert (result.provider, result.model) == ("127.0.0.1", MODEL)

    [sent] = llm.requests
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == f"Bearer {API_KEY}"
    body = sent["body"]
    assert body["model"] == MODEL
    system, user = body["messages"]
    assert (system["role"], user["role"]) == ("system", "user")
    assert user["content"] == DRAFT_JA  # the draft alone, untouched
    prompt = system["content"]
    assert "formal" in prompt and "shorter" in prompt
    for rule in [
        "Keep the meaning",
        "Japanese stays Japanese, English stays English",
        "markdown",
        "quoted text",
        "Return only the rewritten text",
        "URLs",
        "order and ticket ids",
    ]:
        assert rule in prompt, rule


@pytest.mark.parametrize(
    "tone, length, words",
    [
        (pb.TONE_CASUAL, pb.LENGTH_LONGER, ["casual", "longer"]),
        (pb.TONE_POLITE, pb.LENGTH_UNSPECIFIED, ["polite", "same length"]),
        (pb.TONE_ASSERTIVE, pb.LENGTH_SHORTER, ["assertive", "shorter"]),
        (pb.TONE_HUMOROUS, pb.LENGTH_LONGER, ["humorous", "longer"]),
        (pb.TONE_UNSPECIFIED, pb.LENGTH_SHORTER, ["Keep the draft's tone", "shorter"]),
    ],
)
async def test_ai01_every_tone_and_length_reaches_the_prompt(ai, llm, tenant, tone, length, words):
    draft = "Thanks for waiting! Your **refund** of $25 for order #4411 is on its way.\n> Where is my money?"
    result = await ai.Rewrite(pb.RewriteRequest(text=draft, tone=tone, length=length), metadata=agent(tenant))
    assert result.text == f"Rewritten: {draft}"
    prompt = llm.requests[-1]["body"]["messages"][0]["content"]
    for word in words:
        assert word in prompt


async def test_ai01_retries_when_the_provider_is_busy(ai, llm, tenant):
    llm.fail_next(429, 503)
    result = await ai.Rewrite(pb.RewriteRequest(text="hello", tone=pb.TONE_POLITE), metadata=agent(tenant))
    assert result.text == "Rewritten: hello"
    assert len(llm.requests) == 3


async def test_ai01_provider_failure_is_unavailable_with_a_clear_message(ai, llm, tenant):
    request = pb.RewriteRequest(text="hello", tone=pb.TONE_CASUAL)
    llm.fail_next(500, 500, 500)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ai.Rewrite(request, metadata=agent(tenant))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "HTTP 500" in err.value.details() and "3 attempts" in err.value.details()

    llm.reset()
    llm.fail_next(401)  # refused: retrying would not help
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ai.Rewrite(request, metadata=agent(tenant))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "HTTP 401" in err.value.details()
    assert len(llm.requests) == 1

    llm.reset()
    llm.reply = lambda body: "   "
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ai.Rewrite(request, metadata=agent(tenant))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "empty rewrite" in err.value.details()


async def test_ai01_slow_or_unreachable_provider_is_unavailable(llm, tenant):
    llm.delay = 1.0
    async with ai_service(
        KAIWA_LLM_URL=llm.url,
        KAIWA_LLM_API_KEY=API_KEY,
        KAIWA_LLM_MODEL=MODEL,
        KAIWA_LLM_TIMEOUT="0.3",
        KAIWA_LLM_MAX_ATTEMPTS="1",
    ) as ai:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ai.Rewrite(pb.RewriteRequest(text="hello"), metadata=agent(tenant))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "did not answer within 0.3s" in err.value.details()
    async with ai_service(
        KAIWA_LLM_URL=f"http://127.0.0.1:{free_port()}/v1", KAIWA_LLM_MODEL=MODEL, KAIWA_LLM_MAX_ATTEMPTS="2"
    ) as ai:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ai.Rewrite(pb.RewriteRequest(text="hello"), metadata=agent(tenant))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "unreachable" in err.value.details()


async def test_ai01_without_a_provider_rewrite_is_a_failed_precondition(tenant):
    async with ai_service() as ai:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ai.Rewrite(pb.RewriteRequest(text="hello", tone=pb.TONE_FORMAL), metadata=agent(tenant))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.value.details() == "no LLM provider configured (set KAIWA_LLM_URL)"
    async with ai_service(KAIWA_LLM_URL="http://127.0.0.1:9/v1") as ai:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ai.Rewrite(pb.RewriteRequest(text="hello"), metadata=agent(tenant))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "KAIWA_LLM_MODEL" in err.value.details()


@pytest.mark.parametrize(
    "request_, words",
    [
        (pb.RewriteRequest(text=""), "text is required"),
        (pb.RewriteRequest(text=" \n\t "), "text is required"),
        (pb.RewriteRequest(text="あ" * 4001), "at most 4000"),
        (pb.RewriteRequest(text="hello", tone=42), "tone: 42 is not a known Tone"),
        (pb.RewriteRequest(text="hello", length=-1), "length: -1 is not a known Length"),
    ],
)
async def test_ai01_rewrite_bad_input(ai, llm, tenant, request_, words):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ai.Rewrite(request_, metadata=agent(tenant))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in err.value.details()
    assert llm.requests == []  # nothing was sent to the LLM


async def test_plat02_rewrite_is_for_staff_only(ai, llm, tenant):
    request = pb.RewriteRequest(text="hello")
    assert await status_of(ai.Rewrite(request)) == grpc.StatusCode.UNAUTHENTICATED
    assert await status_of(ai.Rewrite(request, metadata=auth(tenant, "visitor", "v-1"))) == grpc.StatusCode.PERMISSION_DENIED
    assert (await ai.Rewrite(request, metadata=auth(tenant, "service", "bot"))).text == "Rewritten: hello"
    assert llm.requests and len(llm.requests) == 1
