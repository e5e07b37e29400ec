"""PLAT-04: the web console in a real browser (Debian's headless Chromium).

The five services, the gateway and the console's static server run as in `make run`,
with a demo tenant made by the same code; console/e2e/chat.mjs (playwright-core from the
console's node_modules, launching /usr/bin/chromium, no browser download) drives a
visitor page and an agent page: the visitor starts a chat, the agent accepts and
replies, the visitor sees the reply live, the agent rewrites a draft politely and ends
the chat with a countdown. Screenshots of both screens are kept in the folder printed
(KAIWA_CONSOLE_SHOTS, default $TMPDIR/kaiwa-console-shots).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from kaiwa_common.config import Settings
from kaiwa_common.devrun import CONSOLE, MODULES, ensure_demo_tenant, start_console
from tests.e2e.suite import ROOT, Suite

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = ROOT / "console/e2e/chat.mjs"
SHOTS = Path(os.environ.get("KAIWA_CONSOLE_SHOTS", Path(os.environ.get("TMPDIR", "/tmp")) / "kaiwa-console-shots"))


@pytest.mark.timeout(180)
async def test_plat04_console_visitor_and_agent_chat_in_a_browser(tenant):
    missing = [p for p in (CONSOLE / "agent.js", ROOT / "console/node_modules/playwright-core", Path(CHROMIUM)) if not p.exists()]
    assert not missing, f"run `make setup` first (builds the console, installs chromium): missing {missing}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    async with Suite.start(gateway=True) as suite:
        addresses = {name: suite.address(name) for name in MODULES}
        demo = await asyncio.to_thread(ensure_demo_tenant, Settings(), addresses, tenant)
        again = await asyncio.to_thread(ensure_demo_tenant, Settings(), addresses, tenant)
        assert (again.department_id, again.widget_key) == (demo.department_id, demo.widget_key)  # idempotent
        server = start_console(0, suite.gateway_url)
        try:
            console_url = f"http://127.0.0.1:{server.server_address[1]}"
            env = dict(
                os.environ,
                KAIWA_VISITOR_URL=demo.visitor_url(console_url),
                KAIWA_AGENT_URL=demo.agent_url(console_url, "Aiko Tanaka"),
                KAIWA_SHOTS=str(SHOTS),
                CHROMIUM=CHROMIUM,
            )
            proc = await asyncio.create_subprocess_exec(
                "node", str(DRIVER), cwd=ROOT / "console", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            out, err = await asyncio.wait_for(proc.communicate(), 150)
        finally:
            server.shutdown()
        asked = [json.dumps(request["body"]).lower() for request in suite.llm.requests]
    print(f"console screenshots in {SHOTS}")
    assert proc.returncode == 0, f"browser run failed (screenshots in {SHOTS}):\n{err.decode()[-4000:]}"
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["polite"] != "send me your order number"
    assert any("polite" in body and "send me your order number" in body for body in asked), asked  # the tone picked
    assert "ends in" in result["countdown"]
    assert (SHOTS / "visitor.png").stat().st_size > 0 and (SHOTS / "agent.png").stat().st_size > 0
