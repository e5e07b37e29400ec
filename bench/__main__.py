"""`make bench`: every benchmark, each printing its figures next to a same-run baseline.

Starts its own PostgreSQL and NATS (unless KAIWA_DATABASE_URL / KAIWA_NATS_URL are set).
Benchmarks never fail on speed; they report. `make bench ONLY=<part of a name>` runs only
those (e.g. ONLY=mixed, ONLY=stored, ONLY=conversation). The whole-suite benchmarks
(bench.mixed, bench.stored) return their figures, which bench.report merges into
bench/results.json and the README's table.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

from bench import report
from kaiwa_common.devservers import start_missing_servers, stop_servers

BENCHMARKS = [
    "bench.bench_conversation",
    "bench.bench_routing",
    "bench.bench_ai_assist",
    "bench.bench_visitor",
    "bench.mixed",
    "bench.stored",
]


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="kaiwa-bench-"))
    started = start_missing_servers(workdir, database="kaiwa_bench", durable=True)
    try:
        os.environ.setdefault("KAIWA_LOG_LEVEL", "WARNING")
        only = sys.argv[1:]
        sections, failed = {}, []
        for name in BENCHMARKS:
            if only and not any(o in name for o in only):
                continue
            print(f"\n=== {name} ===", flush=True)
            try:
                figures = asyncio.run(importlib.import_module(name).main())
            except Exception:  # one broken benchmark must not cost the others' figures
                traceback.print_exc()
                failed.append(name)
                continue
            if figures:
                sections[name.removeprefix("bench.")] = figures
        if sections:
            report.publish(sections)
        if failed:
            raise SystemExit(f"benchmarks that failed: {', '.join(failed)}")
    finally:
        stop_servers(started)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
