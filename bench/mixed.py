"""The mixed load against the whole suite (issue 14): five services as processes as in
`make run` (tests/e2e/suite.py, with ai_assist on the local LLM stand-in in this
process), the load generator a process of its own (bench.loadgen, which starts the
page-view process). Measures each process's idle CPU and memory, the mixed load at 1x
(KAIWA_BENCH_RATE chats a second in the main department, default 2, for
KAIWA_BENCH_SECONDS, default 60), the same load at 2x, 4x (8x when 4x has not bent yet)
for KAIWA_BENCH_SCALE_SECONDS (default 30), and the baselines at the concurrency the load
produced (Little's law: completions per second x mean latency)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import baselines
from bench.processes import ProcessMonitor, listener_pid
from tests.e2e.suite import Suite

ROOT = Path(__file__).resolve().parents[1]
IDLE_SECONDS = 10
BEND = 2.0  # a p99 this many times the 1x p99, or throughput under 90% of offered, is a bend


def load_config(suite: Suite, rate: float, seconds: float, workdir: Path) -> dict:
    tag = f"{rate:g}x{seconds:g}"
    return {
        "addresses": {name: suite.address(name) for name in ("conversation", "routing", "visitor", "ai_assist")},
        "rate": rate,
        "seconds": seconds,
        "agents": 200,
        "max_chats": 10,
        "queue_agents": 6,
        "queue_rate": float(os.environ.get("KAIWA_BENCH_QUEUE_RATE", "0.4")),
        "message_interval": 1.0,
        "transfer_share": 0.1,
        "countdown_share": 0.3,
        "rewrite_share": 0.2,
        "views_per_chat": 50,
        "assign_timeout": 120,
        "drain_seconds": 60,  # after the last arrival; what is still running then is cut off and counted
        "output": str(workdir / f"load-{tag}.json"),
        "views_output": str(workdir / f"views-{tag}.json"),
    }


async def run_load(suite: Suite, monitor: ProcessMonitor, rate: float, seconds: float, workdir: Path) -> dict:
    config = load_config(suite, rate, seconds, workdir)
    monitor.window()
    generator = subprocess.Popen([sys.executable, "-m", "bench.loadgen", json.dumps(config)], cwd=ROOT, env=suite.env)
    monitor.watch("load generator (+ page views)", generator.pid)
    code = await asyncio.to_thread(generator.wait)
    processes = monitor.figures()
    monitor.watched.pop("load generator (+ page views)")
    if code != 0:
        raise RuntimeError(f"the load generator exited with {code}")
    result = json.loads(Path(config["output"]).read_text())
    chats = rate + config["queue_rate"]  # both departments; 15 messages a chat on average
    result["offered"] = {"chats_per_s": chats, "messages_per_s": chats * 15, "page_views_per_s": rate * config["views_per_chat"]}
    result["processes"] = processes
    print_load(rate, result)
    return result


def print_load(rate: float, result: dict) -> None:
    latency = result["latency_ms"]
    print(
        f"  {rate:g} chats/s offered: {result['steady']['chats_per_s']:.1f} chats/s, "
        f"{result['steady']['messages_per_s']:.0f} messages/s (steady); counts {result['counts']}"
    )
    for name in ("StartChat to offer", "SendMessage", "message to watcher", "TrackPageView", "Rewrite", "AcceptChat"):
        if name in latency:
            figure = latency[name]
            print(f"    {name:<20} p50 {figure['p50']:8.1f} ms   p99 {figure['p99']:8.1f} ms   (n={figure['n']})")
    if "queue_wait" in result:
        q = result["queue_wait"]
        print(f"    queue: estimate error {q['mae_s']:.1f} s over a mean wait of {q['mean_wait_s']:.1f} s (n={q['n']})")
    if result["errors"]:
        print(f"    errors: {result['errors']}")


def bent(base: dict, step: dict) -> list[str]:
    """Why a step's figures count as bent against 1x (empty: not bent)."""
    reasons = []
    for name in ("SendMessage", "StartChat to offer", "message to watcher"):
        if name not in step["latency_ms"] or name not in base["latency_ms"]:
            reasons.append(f"no {name} figures")
        elif step["latency_ms"][name]["p99"] > BEND * max(base["latency_ms"][name]["p99"], 1.0):
            reasons.append(f"{name} p99 over {BEND:g}x the 1x p99")
    if step["steady"]["messages_per_s"] < 0.9 * step["offered"]["messages_per_s"]:
        reasons.append("messages/s under 90% of offered")
    return reasons


def inflight(result: dict, name: str) -> int:
    """Mean calls in flight over the run (Little's law), at least 1."""
    figure = result["latency_ms"][name]
    return max(1, math.ceil(figure["n"] / result["elapsed_s"] * figure["mean"] / 1000))


async def measured_baselines(mixed: dict) -> dict:
    sends, offers = inflight(mixed, "SendMessage"), inflight(mixed, "StartChat")
    return {
        "echo": {"inflight": sends, **await baselines.echo("echo", sends, 3000)},
        "echo_insert": {"inflight": sends, **await baselines.echo("echo-insert", sends, 3000)},
        "jetstream_publish": {"inflight": offers, **await baselines.jetstream_publish(offers, 3000)},
    }


def watch_suite(monitor: ProcessMonitor, suite: Suite) -> None:
    for name, proc in suite.procs.items():
        monitor.watch(name, proc.pid)
    monitor.watch("postgresql", listener_pid(suite.env["KAIWA_DATABASE_URL"]))
    monitor.watch("nats", listener_pid(suite.env["KAIWA_NATS_URL"]))
    monitor.watch("bench driver (+ LLM stand-in)", os.getpid(), with_children=False)


async def main() -> dict:
    rate = float(os.environ.get("KAIWA_BENCH_RATE", "2"))
    seconds = float(os.environ.get("KAIWA_BENCH_SECONDS", "60"))
    scale_seconds = float(os.environ.get("KAIWA_BENCH_SCALE_SECONDS", "30"))
    workdir = Path(tempfile.mkdtemp(prefix="kaiwa-mixed-"))
    out: dict = {"config": load_config_summary(rate, seconds, scale_seconds)}
    async with Suite.start() as suite:
        monitor = ProcessMonitor().start()
        try:
            watch_suite(monitor, suite)
            os.environ["KAIWA_DATABASE_URL"] = suite.env["KAIWA_DATABASE_URL"]  # baselines: the same database
            monitor.window()
            await asyncio.sleep(IDLE_SECONDS)
            out["idle"] = monitor.figures()
            print("idle: " + ", ".join(f"{n} {f['cpu_percent']:.1f}% {f['rss_mb']:.0f} MB" for n, f in out["idle"].items()))
            out["mixed"] = await run_load(suite, monitor, rate, seconds, workdir)
            out["scale"] = [{"multiplier": 1, **summary(out["mixed"])}]
            for multiplier in (2, 4, 8):
                step = await run_load(suite, monitor, rate * multiplier, scale_seconds, workdir)
                reasons = bent(out["mixed"], step)
                out["scale"].append({"multiplier": multiplier, **summary(step), "bent": reasons})
                if reasons:
                    break
            out["baselines"] = await measured_baselines(out["mixed"])
        finally:
            monitor.stop()
            out["service_error_lines"] = suite.error_lines()[:20]
            suite.allowed_errors.append(".*")  # reported above; a benchmark reports, it does not fail
    return out


def load_config_summary(rate: float, seconds: float, scale_seconds: float) -> dict:
    return {"rate": rate, "seconds": seconds, "scale_seconds": scale_seconds}


def summary(result: dict) -> dict:
    latency = result["latency_ms"]
    return {
        "offered_chats_per_s": result["offered"]["chats_per_s"],
        "chats_per_s": result["steady"]["chats_per_s"],
        "messages_per_s": result["steady"]["messages_per_s"],
        **{
            f"{name} p99 ms": latency.get(name, {}).get("p99")
            for name in ("SendMessage", "StartChat to offer", "message to watcher")
        },
        "processes": result["processes"],
    }
