"""PLAT-05: the local PostgreSQL and NATS die with the process that started them, so a
test run or `make run` killed with -9 leaves no server behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil

STARTER = """
import json, sys
from pathlib import Path
from kaiwa_common.devservers import LocalNats, LocalPostgres, free_port
workdir = Path(sys.argv[1])
pg = LocalPostgres(workdir / "pg", free_port(), durable=False).start()
nats = LocalNats(workdir / "nats", free_port()).start()
print(json.dumps([pg.proc.pid, nats.proc.pid]), flush=True)
sys.stdin.read()
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_plat05_local_servers_die_with_the_process_that_started_them(tmp_path):
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    pids = json.loads(starter.stdout.readline())
    assert all(psutil.pid_exists(pid) and not _gone(pid) for pid in pids)
    starter.kill()
    starter.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(_gone(pid) for pid in pids):
        time.sleep(0.1)
    assert all(_gone(pid) for pid in pids), [psutil.Process(p).cmdline() for p in pids if not _gone(p)]
