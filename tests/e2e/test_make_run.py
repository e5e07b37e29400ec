"""PLAT-05: `make run`'s entry point starts PostgreSQL, NATS and all five services on one
machine, reports each SERVING, finds its data again on a second run, and Ctrl-C stops
everything it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from kaiwa_common.devrun import MODULES
from kaiwa_common.devservers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _start(env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kaiwa_common.devrun"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("All five services SERVING"):
            return proc, lines
    proc.kill()
    raise AssertionError("devrun never reported all five SERVING:\n" + "\n".join(lines))


def _interrupt(proc: subprocess.Popen) -> list[str]:
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"still running after Ctrl-C: {[p.pid for p in alive]}"
    return out.splitlines()


def test_plat05_make_run_starts_everything_and_ctrl_c_stops_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("KAIWA_DATABASE_URL", "KAIWA_NATS_URL")}
    env.update(
        KAIWA_DEV_DATA=str(tmp_path / "data"),
        KAIWA_DEV_PG_PORT=str(free_port()),
        KAIWA_DEV_NATS_PORT=str(free_port()),
        KAIWA_GATEWAY_PORT=str(free_port()),
        KAIWA_CONSOLE_PORT=str(free_port()),
        KAIWA_LOG_LEVEL="WARNING",
    )
    for service in MODULES:
        env[f"KAIWA_{service.upper()}_PORT"] = str(free_port())

    proc, lines = _start(env)
    for service in MODULES:
        assert any(line.strip().startswith(service) and "SERVING" in line for line in lines), lines
    _interrupt(proc)
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()

    # A second run finds the same data folder and starts again.
    proc, lines = _start(env)
    _interrupt(proc)


def test_plat05_second_make_run_refuses_busy_ports_and_names_them(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("KAIWA_DATABASE_URL", "KAIWA_NATS_URL")}
    env.update(
        KAIWA_DEV_DATA=str(tmp_path / "data"),
        KAIWA_DEV_PG_PORT=str(free_port()),
        KAIWA_DEV_NATS_PORT=str(free_port()),
        KAIWA_GATEWAY_PORT=str(free_port()),
        KAIWA_CONSOLE_PORT=str(free_port()),
        KAIWA_LOG_LEVEL="WARNING",
    )
    for service in MODULES:
        env[f"KAIWA_{service.upper()}_PORT"] = str(free_port())
    with socket.socket() as holder:  # a stale process on the conversation port
        holder.bind(("127.0.0.1", int(env["KAIWA_CONVERSATION_PORT"])))
        holder.listen()
        result = subprocess.run(
            [sys.executable, "-m", "kaiwa_common.devrun"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert f"port {env['KAIWA_CONVERSATION_PORT']} (conversation) is taken by pid {os.getpid()}" in result.stdout
    assert not (tmp_path / "data" / "postgres").exists()  # nothing was started
