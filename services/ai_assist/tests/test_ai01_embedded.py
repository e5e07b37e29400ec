"""AI-01: the embedded rewriter through the gRPC API (no LLM configured): tone and length
in Japanese and English, spans in code points, language detection, markdown and quotes."""

from __future__ import annotations

import grpc
import pytest
from kaiwa.ai_assist.v1 import ai_assist_pb2 as pb
from kaiwa.ai_assist.v1.ai_assist_pb2_grpc import AiAssistServiceStub

from kaiwa_ai.main import SPEC
from tests.fixtures import auth, channel_to, running


@pytest.fixture(scope="module")
async def ai():
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("KAIWA_LLM_URL", raising=False)
        async with running(SPEC) as runner, channel_to(runner) as channel:
            yield AiAssistServiceStub(channel)


async def rewrite(ai, tenant, text, tone=pb.TONE_UNSPECIFIED, length=pb.LENGTH_UNSPECIFIED, **fields):
    request = pb.RewriteRequest(text=text, tone=tone, length=length, **fields)
    return await ai.Rewrite(request, metadata=auth(tenant, "agent", "agent-1"))


async def test_ai01_formal_japanese_uses_desu_masu(ai, tenant):
    result = await rewrite(ai, tenant, "在庫を確認する。明日には届くと思う。大丈夫だった？", pb.TONE_FORMAL)
    assert result.text == "在庫を確認いたします。明日には届くと思います。大丈夫でした？"
    assert {"ja.desu_masu", "ja.humble"} <= {c.rule for c in result.changes}
    assert (result.language, result.language_detected, result.backend) == ("ja", True, pb.BACKEND_EMBEDDED)


async def test_ai01_formal_japanese_uses_honorific_words_and_cushions(ai, tenant):
    result = await rewrite(ai, tenant, "すみません、在庫がありません。わかりました。ご確認ください。", pb.TONE_FORMAL)
    assert result.text == (
        "申し訳ございません、在庫がございません。承知いたしました。お手数ですが、ご確認いただきますようお願いいたします。"
    )


async def test_ai01_casual_japanese_uses_plain_form(ai, tenant):
    result = await rewrite(ai, tenant, "明日発送します。在庫はありません。昨日届きましたか？ご確認ください。", pb.TONE_CASUAL)
    assert result.text == "明日発送する。在庫はない。昨日届いた？確認してね。"


async def test_ai01_polite_japanese_softens_requests_with_cushion_words(ai, tenant):
    result = await rewrite(ai, tenant, "写真を送ってください。住所を教えてくれ。", pb.TONE_POLITE)
    assert result.text == "お手数ですが、写真を送っていただけますか。恐れ入りますが、住所を教えていただけますか。"


async def test_ai01_assertive_japanese_firms_the_endings(ai, tenant):
    result = await rewrite(ai, tenant, "恐れ入りますが、明日届くと思います。ご確認いただけますでしょうか？", pb.TONE_ASSERTIVE)
    assert result.text == "明日届きます。ご確認ください。"


async def test_ai01_english_formal_expands_contractions_and_makes_requests(ai, tenant):
    result = await rewrite(ai, tenant, "Hi Jo, thanks! We can't ship today. Send us your address!", pb.TONE_FORMAL)
    assert result.text == "Hello Jo, thank you. We cannot ship today. Please send us your address."


async def test_ai01_english_casual_uses_contractions(ai, tenant):
    result = await rewrite(ai, tenant, "Hello Jo, we are sorry. It is not possible to change it. Kind regards", pb.TONE_CASUAL)
    assert result.text == "Hi Jo, we're sorry. It isn't possible to change it. Cheers"


async def test_ai01_english_polite_turns_imperatives_into_requests(ai, tenant):
    result = await rewrite(ai, tenant, "Send us a photo. You need to restart the app. We can't refund it.", pb.TONE_POLITE)
    assert result.text == "Could you please send us a photo? Could you please restart the app? I'm afraid we can't refund it."


async def test_ai01_english_assertive_drops_hedges(ai, tenant):
    result = await rewrite(ai, tenant, "I think the refund is just delayed. Could you check your bank?", pb.TONE_ASSERTIVE)
    assert result.text == "The refund is delayed. Please check your bank."


async def test_ai01_humorous_adds_a_playful_line_without_facts(ai, tenant):
    result = await rewrite(ai, tenant, "Sorry, your parcel is late.", pb.TONE_HUMOROUS)
    assert result.text.startswith("Oops, sorry, your parcel is late. ")
    assert any(c.rule == "humour.closing" for c in result.changes)


async def test_ai01_shorter_cuts_fillers_and_framing(ai, tenant):
    draft = "Thanks for reaching out. I just wanted to let you know that your order ships today. Have a great day!"
    assert (await rewrite(ai, tenant, draft, length=pb.LENGTH_SHORTER)).text == "Your order ships today."
    draft = "お問い合わせいただきありがとうございます。えーと、商品は発送させていただきました。"
    assert (await rewrite(ai, tenant, draft, length=pb.LENGTH_SHORTER)).text == "商品は発送いたしました。"


async def test_ai01_longer_adds_courteous_framing_and_no_facts(ai, tenant):
    result = await rewrite(ai, tenant, "Your order ships today.", pb.TONE_POLITE, pb.LENGTH_LONGER)
    assert result.text == (
        "Thank you for reaching out to us. Your order ships today. "
        "Please let me know if there is anything else I can help you with."
    )
    result = await rewrite(ai, tenant, "商品は本日発送します。", pb.TONE_FORMAL, pb.LENGTH_LONGER)
    assert result.text.startswith("お問い合わせいただき、誠にありがとうございます。商品は本日発送いたします。")


async def test_ai01_span_rewrites_only_the_selection(ai, tenant):
    text = "Hi Ann! We can't ship today. Thanks!"
    result = await rewrite(ai, tenant, text, pb.TONE_FORMAL, span=pb.TextRange(start=8, end=28))
    assert result.text == "Hi Ann! We cannot ship today. Thanks!"
    assert result.text[result.rewritten.start : result.rewritten.end] == "We cannot ship today."


async def test_ai01_span_offsets_count_code_points(ai, tenant):
    text = "👍🏽 了解。明日送る。"  # 👍🏽 is two code points (four UTF-16 units)
    result = await rewrite(ai, tenant, text, pb.TONE_POLITE, span=pb.TextRange(start=6, end=11))
    assert result.text == "👍🏽 了解。明日送ります。"


@pytest.mark.parametrize(
    "text, start, end, words",
    [
        ("We ship today.", 0, 99, "ends after the text"),
        ("We ship today.", 5, 5, "is empty"),
        ("We ship today.", -1, 4, "negative offset"),
        ("Ok 👍🏽 thanks", 0, 4, "cuts a character in half"),  # between 👍 and its skin tone
        ("Flag 🇯🇵 here", 0, 6, "cuts a character in half"),  # between two regional indicators
        ("Cafe\u0301 is open", 0, 4, "cuts a character in half"),  # before a combining accent
        ("We ship today.", 2, 3, "only white space"),
    ],
)
async def test_ai01_bad_spans_are_refused(ai, tenant, text, start, end, words):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rewrite(ai, tenant, text, pb.TONE_FORMAL, span=pb.TextRange(start=start, end=end))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in err.value.details()


@pytest.mark.parametrize(
    "text, language, words",
    [
        ("안녕하세요, 주문이 발송되었습니다.", "", "looks like 'ko'"),
        ("您的订单已经发货。", "", "looks like 'zh'"),
        ("12345 👍", "", "cannot tell the draft's language"),
        ("hello", "de-DE", "language 'de-DE' is not supported"),
    ],
)
async def test_ai01_unsupported_languages_are_refused(ai, tenant, text, language, words):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await rewrite(ai, tenant, text, pb.TONE_FORMAL, language=language)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in err.value.details()


async def test_ai01_an_explicit_language_is_used(ai, tenant):
    result = await rewrite(ai, tenant, "OK", pb.TONE_FORMAL, language="en-GB")
    assert (result.language, result.language_detected, result.text) == ("en", False, "Certainly")


async def test_ai01_markdown_quotes_and_code_are_kept(ai, tenant):
    draft = "> Where is my parcel?\n\n- **Tracking**: `JP-123`\n- Status: it's shipped\n\nWe can't speed it up."
    result = await rewrite(ai, tenant, draft, pb.TONE_FORMAL)
    assert result.text == "> Where is my parcel?\n\n- **Tracking**: `JP-123`\n- Status: it is shipped\n\nWe cannot speed it up."
