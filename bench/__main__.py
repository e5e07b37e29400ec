"""`make bench`: every benchmark, each printing its figures next to a same-run baseline.

Starts its own PostgreSQL and NATS (unless KAIWA_DATABASE_URL / KAIWA_NATS_URL are set).
Benchmarks never fail on speed; they report.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from kaiwa_common.devservers import LocalNats, LocalPostgres, free_port

BENCHMARKS = ["bench.bench_conversation", "bench.bench_routing"]


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="kaiwa-bench-"))
    started = []
    try:
        if not os.environ.get("KAIWA_DATABASE_URL"):
            pg = LocalPostgres(workdir / "pg", free_port(), database="kaiwa_bench").start()
            started.append(pg)
            os.environ["KAIWA_DATABASE_URL"] = pg.url
        if not os.environ.get("KAIWA_NATS_URL"):
            nats_server = LocalNats(workdir / "nats", free_port()).start()
            started.append(nats_server)
            os.environ["KAIWA_NATS_URL"] = nats_server.url
        os.environ.setdefault("KAIWA_LOG_LEVEL", "WARNING")
        only = sys.argv[1:]
        for name in BENCHMARKS:
            if only and not any(o in name for o in only):
                continue
            print(f"\n=== {name} ===", flush=True)
            asyncio.run(importlib.import_module(name).main())
    finally:
        for server in reversed(started):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
