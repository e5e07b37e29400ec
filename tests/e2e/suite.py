"""All five services as separate OS processes, like `make run`, for end-to-end tests.

They share the test run's PostgreSQL and NATS but use a database and a subject prefix of
their own, so in-process service tests running in the same session never see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kaiwa_common.config import Settings
from kaiwa_common.devgateway import LOCAL_GATEWAY_PROXIES, jwks, render_gateway, start_gateway
from kaiwa_common.devrun import MODULES
from kaiwa_common.devservers import free_port
from tests.fixtures import unexpected_errors

ROOT = Path(__file__).resolve().parents[2]


def _load_llm_server():
    path = ROOT / "services/ai_assist/tests/llm_server.py"
    spec = importlib.util.spec_from_file_location("kaiwa_e2e_llm_server", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _create_database(base_url: str, name: str) -> str:
    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base_url.rsplit("/", 1)[0] + f"/{name}"


class Suite:
    def __init__(self, env: dict[str, str], procs: dict[str, subprocess.Popen], llm, logs: Path):
        self.env = env
        self.procs = procs
        self.llm = llm
        self.logs = logs
        self.allowed_errors: list[str] = []  # regexes of error lines a test provokes on purpose
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.gateway_url = ""  # "http://127.0.0.1:<port>" when started with gateway=True

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.env[f'KAIWA_{service.upper()}_PORT']}"

    def channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            self._channels[service] = grpc.aio.insecure_channel(self.address(service))
        return self._channels[service]

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, gateway: bool = False, database_url: str = "", nats_url: str = ""):
        """gateway=True: Envoy in front too (PLAT-04), the services trusting its address.
        database_url / nats_url: servers of the caller's own (fault tests restart them)
        instead of the test run's; a database of the suite's own is created on the former."""
        llm = _load_llm_server().FakeLlm()
        llm_url = llm.start()
        env = dict(os.environ)
        base_url = database_url or os.environ["KAIWA_DATABASE_URL"]
        env["KAIWA_DATABASE_URL"] = await _create_database(base_url, f"e2e_{uuid.uuid4().hex[:8]}")
        env["KAIWA_NATS_URL"] = nats_url or os.environ["KAIWA_NATS_URL"]
        env["KAIWA_SUBJECT_PREFIX"] = f"e2e{uuid.uuid4().hex[:6]}"
        env["KAIWA_LLM_URL"] = llm_url
        env["KAIWA_LLM_MODEL"] = "test-model"
        env["KAIWA_LOG_LEVEL"] = "WARNING"
        if gateway:
            env["KAIWA_TRUSTED_PROXIES"] = LOCAL_GATEWAY_PROXIES
        for service in MODULES:
            env[f"KAIWA_{service.upper()}_PORT"] = str(free_port())
        logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"kaiwa-e2e-{uuid.uuid4().hex[:6]}"
        logs.mkdir(parents=True)
        suite = cls(env, {}, llm, logs)
        for name in MODULES:
            suite.spawn(name)
        try:
            await suite.wait_serving()
            if gateway:
                await suite.start_gateway()
            yield suite
        finally:
            await suite.stop()
            llm.stop()

    def spawn(self, name: str) -> None:
        """Start service `name` as a process (again, after kill: its log continues)."""
        with open(self.logs / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", MODULES[name]], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self, name: str) -> None:
        """kill -9: the service gets no chance to finish anything (fault tests)."""
        self.procs[name].kill()
        self.procs[name].wait()

    async def wait_serving(self, timeout: float = 60, services: list[str] | None = None) -> None:
        """Until every service (or those named) answers SERVING to a health check."""
        deadline = time.monotonic() + timeout
        pending = set(services or MODULES)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                if self.procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited: {(self.logs / f'{name}.log').read_text()[-3000:]}")
                try:
                    reply = await health_pb2_grpc.HealthStub(self.channel(name)).Check(
                        health_pb2.HealthCheckRequest(), timeout=0.5
                    )
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        pending.discard(name)
                except grpc.aio.AioRpcError:
                    pass
            await asyncio.sleep(0.05)
        if pending:
            raise RuntimeError(f"not SERVING within {timeout}s: {sorted(pending)}; logs in {self.logs}")

    async def start_gateway(self, timeout: float = 30) -> None:
        port = free_port()
        config = render_gateway(port, {name: self.address(name) for name in MODULES}, jwks(Settings()))
        self.procs["gateway"] = start_gateway(config, self.logs)
        self.gateway_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                if self.procs["gateway"].poll() is not None:
                    raise RuntimeError(f"gateway exited: {(self.logs / 'gateway.log').read_text()[-3000:]}")
                try:
                    await client.get(self.gateway_url + "/", timeout=0.5)
                    return
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"gateway not answering within {timeout}s; log in {self.logs}") from None
                    await asyncio.sleep(0.05)

    async def stop(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        errors = unexpected_errors(self.error_lines(), self.allowed_errors)
        assert not errors, f"services logged errors (logs in {self.logs}):\n" + "\n".join(errors[:10])

    def error_lines(self) -> list[str]:
        """Every line at level error or above in the services' logs."""
        return [
            f"{name}: {line}"
            for name in self.procs
            for line in (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
            if '"level": "error"' in line or '"level": "critical"' in line or line.startswith("Traceback")
        ]
