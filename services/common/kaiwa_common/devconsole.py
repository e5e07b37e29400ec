"""PLAT-04: the web console on one machine (`make run`, the browser test): console/dist
served by a tiny static server, and the demo tenant it opens with."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc

from .auth import mint_token
from .config import Settings
from .devservers import ROOT


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
