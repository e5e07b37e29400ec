"""Page views for the mixed load, a process of its own (started by bench.loadgen):
`views_per_chat` TrackPageView calls per chat the main department starts, at the same
steady rate over the same window, each visitor viewing that many pages with its own
visitor token. Writes its figures to the config's "views_output" file."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid

import grpc
from kaiwa.visitor.v1 import visitor_pb2 as vis
from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

from bench.loadgen import finish
from bench.loadgen_record import Recorder
from kaiwa_common.auth import mint_token
from kaiwa_common.config import Settings

PAGES = ["/", "/pricing", "/shoes/running", "/shoes/trail", "/cart", "/faq", "/shipping", "/contact"]
USER_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"


async def run(config: dict) -> dict:
    settings, recorder = Settings(), Recorder()
    per_visitor = config["views_per_chat"]
    rate = config["rate"] * per_visitor
    total = int(rate * config["seconds"])
    async with grpc.aio.insecure_channel(config["addresses"]["visitor"]) as channel:
        stub = VisitorServiceStub(channel)
        visitors: dict[int, tuple] = {}

        async def view(i: int) -> None:
            number = i // per_visitor
            if number not in visitors:
                token = mint_token(settings, config["tenant"], "visitor", str(uuid.uuid4()))
                visitors[number] = (("authorization", f"Bearer {token}"),)
            request = vis.TrackPageViewRequest(
                url=f"https://shop.example.com{PAGES[i % len(PAGES)]}", title="Shop", user_agent=USER_AGENT, language="ja-JP"
            )
            try:
                await recorder.timed("TrackPageView", stub.TrackPageView(request, metadata=visitors[number]))
                recorder.counts["page views"] += 1
            except grpc.aio.AioRpcError:
                pass

        tasks, began = [], time.perf_counter()
        for i in range(total):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(view(i)))
        await finish(tasks, config["drain_seconds"], recorder, "page views cut off at the end")
        return recorder.summary(time.perf_counter() - began)


def main() -> None:
    config = json.loads(sys.argv[1])
    result = asyncio.run(run(config))
    with open(config["views_output"], "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
