"""CPU and memory of every process of a run, sampled with psutil in a thread of its own.

A watched process counts with its children (PostgreSQL's backends, the load generator's
page-view process). CPU is in percent of one core, averaged over the window; memory is
the largest resident set (summed over the process and its children) seen in the window.
"""

from __future__ import annotations

import statistics
import threading
import time
from urllib.parse import urlparse

import psutil


def listener_pid(url: str) -> int | None:
    """The process listening on the URL's port on this machine (None when not local)."""
    port = urlparse(url).port
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


class ProcessMonitor:
    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.watched: dict[str, psutil.Process] = {}
        self._with_children: dict[str, bool] = {}
        self._samples: dict[str, list[tuple[float, float]]] = {}  # name -> [(cpu %, rss MB)]
        self._cpu_seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def watch(self, name: str, pid: int | None, with_children: bool = True) -> None:
        if pid is not None:
            self.watched[name] = psutil.Process(pid)
            self._with_children[name] = with_children

    def start(self) -> "ProcessMonitor":
        self._thread = threading.Thread(target=self._run, name="process-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def window(self) -> None:
        """Starts a new measuring window (what `figures` reports)."""
        with self._lock:
            self._samples = {}

    def figures(self) -> dict[str, dict]:
        with self._lock:
            samples = dict(self._samples)
        return {
            name: {"cpu_percent": statistics.fmean(c for c, _ in values), "rss_mb": max(m for _, m in values)}
            for name, values in samples.items()
            if values
        }

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            elapsed, last = now - last, now
            for name, process in list(self.watched.items()):
                sample = self._sample(process, elapsed, self._with_children.get(name, True))
                if sample is not None:
                    with self._lock:
                        self._samples.setdefault(name, []).append(sample)

    def _sample(self, process: psutil.Process, elapsed: float, with_children: bool) -> tuple[float, float] | None:
        """CPU % since the last sample and RSS in MB, over the process (and its children);
        None once the process has exited."""
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            family = [process, *process.children(recursive=True)] if with_children else [process]
        except psutil.Error:
            return None
        cpu, rss = 0.0, 0
        for member in family:
            try:
                times = member.cpu_times()
                total = times.user + times.system
                rss += member.memory_info().rss
            except psutil.Error:
                continue
            previous = self._cpu_seen.get(member.pid)
            self._cpu_seen[member.pid] = total
            if previous is not None:
                cpu += max(0.0, total - previous)
        return cpu / elapsed * 100, rss / 1e6
