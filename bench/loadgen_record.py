"""What the load generator records: latencies by name, counters, queue-wait samples."""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict

import grpc

from bench.bench_conversation import percentile


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)  # seconds
        self.counts: Counter = Counter()
        self.errors: Counter = Counter()
        self.error_details: dict[str, str] = {}  # the first error's details of each kind
        self.queue_waits: list[tuple[int, float]] = []  # (estimate shown, actual wait) in seconds
        self.began = time.perf_counter()
        self.per_second: dict[str, Counter] = defaultdict(Counter)  # name -> second of the run -> completed

    def took(self, name: str, began: float) -> None:
        now = time.perf_counter()
        self.latencies[name].append(now - began)
        self.per_second[name][int(now - self.began)] += 1

    def steady_rate(self, name: str, first_second: int, last_second: int) -> float:
        """Completions per second of `name`, averaged over the run's seconds [first, last)."""
        seconds = range(first_second, max(last_second, first_second + 1))
        return sum(self.per_second[name][s] for s in seconds) / len(seconds)

    async def timed(self, name: str, call):
        """Awaits `call`, recording its latency under `name`; an RPC error is counted and re-raised."""
        began = time.perf_counter()
        try:
            result = await call
        except grpc.aio.AioRpcError as error:
            kind = f"{name}: {error.code().name}"
            self.errors[kind] += 1
            self.error_details.setdefault(kind, (error.details() or "")[:200])
            raise
        self.took(name, began)
        return result

    def summary(self, elapsed: float) -> dict:
        out = {"elapsed_s": elapsed, "counts": dict(self.counts), "errors": dict(self.errors), "latency_ms": {}}
        out["error_details"] = self.error_details
        for name, values in self.latencies.items():
            out["latency_ms"][name] = {
                "n": len(values),
                "p50": percentile(values, 50) * 1000,
                "p99": percentile(values, 99) * 1000,
                "mean": statistics.fmean(values) * 1000,
            }
        if self.queue_waits:
            errors = [abs(estimate - actual) for estimate, actual in self.queue_waits]
            out["queue_wait"] = {
                "n": len(self.queue_waits),
                "mean_wait_s": statistics.fmean(actual for _, actual in self.queue_waits),
                "mean_estimate_s": statistics.fmean(estimate for estimate, _ in self.queue_waits),
                "mae_s": statistics.fmean(errors),
            }
        return out
