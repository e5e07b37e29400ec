"""Issue 11 benchmark: the embedded rewriter (AI-01) against a same-run baseline.

(a) a bare grpc.aio echo and (b) AiAssistService.Rewrite answered by the embedded
rewriter (no LLM configured), for 200-character drafts in Japanese and in English (taken
from the evaluation set, every tone and length in turn), each at 16 calls in flight:
rewrites per second, p50 and p99. Goal: p99 under 20 ms. Every server runs in a process
of its own; this process is only the client. Needs KAIWA_DATABASE_URL and KAIWA_NATS_URL
(`make bench` starts both).
"""

from __future__ import annotations

import asyncio
import itertools
import sys

import grpc

from kaiwa_common.app import run_on_service_loop

from bench.bench_conversation import closed_loop, row, serve_echo
from bench.bench_conversation import server_process as conversation_server_process

ECHO = "/bench.Echo/Echo"
SCHEMA = "bench_ai_assist"
INFLIGHT = 16
CALLS = 3000
DRAFT_LENGTH = 200


async def serve_ai(port: int) -> None:
    from kaiwa_ai.main import SPEC

    from kaiwa_common.app import ServiceRunner
    from kaiwa_common.config import Settings

    runner = await ServiceRunner(SPEC, Settings(), port=port, schema=SCHEMA).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.stop()


def server_process(mode: str):
    # The embedded backend is measured: no LLM endpoint from the caller's environment.
    return conversation_server_process(mode, "bench.bench_ai_assist", drop_env_prefix="KAIWA_LLM_")


def drafts(language: str) -> list[str]:
    """200-character drafts made of consecutive replies of the evaluation set."""
    from services.ai_assist.tests.evaluation import replies

    pool = [r["text"] for r in replies() if r["language"] == language]
    out = []
    for i in range(len(pool)):
        text = ""
        for reply in itertools.islice(itertools.cycle(pool), i, None):
            text += reply + (" " if language == "en" else "")
            if len(text) >= DRAFT_LENGTH:
                break
        out.append(text[:DRAFT_LENGTH])
    return out


async def bench_echo(address: str) -> dict:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(ECHO)
        payload = "x".encode() * (DRAFT_LENGTH * 3)
        return await closed_loop(lambda _w: call(payload), INFLIGHT, CALLS)


async def bench_rewrite(address: str, language: str) -> dict:
    from kaiwa.ai_assist.v1 import ai_assist_pb2 as pb
    from kaiwa.ai_assist.v1.ai_assist_pb2_grpc import AiAssistServiceStub

    from kaiwa_common.auth import mint_token
    from kaiwa_common.config import Settings

    metadata = (("authorization", f"Bearer {mint_token(Settings(), 'bench', 'agent', 'bench-agent')}"),)
    tones = [pb.TONE_FORMAL, pb.TONE_CASUAL, pb.TONE_POLITE, pb.TONE_ASSERTIVE, pb.TONE_HUMOROUS, pb.TONE_UNSPECIFIED]
    lengths = [pb.LENGTH_UNSPECIFIED, pb.LENGTH_SHORTER, pb.LENGTH_LONGER]
    requests = [
        pb.RewriteRequest(text=text, tone=tone, length=length, language=language)
        for text, tone, length in zip(drafts(language), itertools.cycle(tones), itertools.cycle(lengths), strict=False)
    ]
    counter = itertools.count()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = AiAssistServiceStub(channel)
        return await closed_loop(
            lambda _w: stub.Rewrite(requests[next(counter) % len(requests)], metadata=metadata), INFLIGHT, CALLS
        )


async def main() -> None:
    print(f"closed loop, {INFLIGHT} calls in flight, {CALLS} calls each, {DRAFT_LENGTH}-character drafts")
    with server_process("serve-echo") as address:
        echo = await bench_echo(address)
    with server_process("serve-ai") as address:
        results = {language: await bench_rewrite(address, language) for language in ("ja", "en")}
    print(row("(a) bare grpc.aio echo", INFLIGHT, echo))
    for language, result in results.items():
        print(row(f"(b) Rewrite, embedded, {language}", INFLIGHT, result))
        print(
            f"      {language}: {result['rps'] / echo['rps']:.0%} of the echo's throughput; "
            f"p99 {result['p99']:.2f} ms (goal < 20 ms: {'met' if result['p99'] < 20 else 'not met'})"
        )


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "serve-ai":
        run_on_service_loop(serve_ai(port))
    else:
        run_on_service_loop(serve_echo(port, with_db=False))
