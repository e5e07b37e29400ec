"""PLAT-04: the web console in a real browser (Debian's headless Chromium).

The five services, the gateway and the console's static server run as in `make run`,
with a demo tenant made by the same code.
console/e2e/chat.mjs (playwright-core from the console's node_modules, launching
/usr/bin/chromium, no browser download) drives a visitor page and two agent pages:

- the visitor starts a chat with an e-mail the CRM does not know; Aiko accepts, sees the
  visitor's details and adds them as a lead from the chat (CRM-03), shown in the CRM
  panel (CRM-02); the test then gives the lead a deal, which Ken's panel shows later;
- replies live both ways with typing; markup in messages stays text both ways;
- the AI rewrite's result lands in the draft box and is sent; a page pushed with #p is
  offered to the visitor;
- an end countdown is cancelled by the visitor typing, another by Aiko's cancel (CONV-06);
- Aiko invites Ken, who sees the chat, then transfers it to him; Ken takes it over
  (ROUT-06, ROUT-07) and ends it with a countdown that runs out on both screens.

Screenshots of every screen are kept in test-artifacts/console/ (KAIWA_CONSOLE_SHOTS
moves them); the test prints the folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as crm
from kaiwa.crm_bridge.v1 import crm_bridge_pb2_grpc as crm_grpc

from kaiwa_common.auth import mint_token
from kaiwa_common.config import Settings
from kaiwa_common.devconsole import CONSOLE, ensure_demo_tenant, start_console
from kaiwa_common.devrun import MODULES
from tests.e2e.suite import ROOT, Suite

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = ROOT / "console/e2e/chat.mjs"
SHOTS = Path(os.environ.get("KAIWA_CONSOLE_SHOTS", ROOT / "test-artifacts/console"))
VISITOR_EMAIL = "hana.suzuki@example.com"
DRAFT = "send me your order number"
MARKUP = "<img src=x onerror=alert(1)><b>bold</b>"  # the driver sends it each way
SCREENS = ("visitor-chat", "agent-crm", "agent-invited", "agent-transfer", "agent-taken-over", "visitor-ended", "agent-ended")


async def add_deal(suite: Suite, tenant: str) -> None:
    """Sales gives the lead the agent added from the chat an open deal (admin upsert by e-mail)."""
    admin = (("authorization", f"Bearer {mint_token(Settings(), tenant, 'admin', 'console-test@kaiwa.local')}"),)
    deal = crm.Deal(name="Osaka shipping contract", stage="Negotiation", amount=1200000, closing_date="2027-01-31", open=True)
    request = crm.UpsertRecordRequest(type=crm.RECORD_TYPE_LEAD, email=VISITOR_EMAIL, deals=[deal])
    await crm_grpc.CrmBridgeServiceStub(suite.channel("crm_bridge")).UpsertRecord(request, metadata=admin, timeout=10)


async def drive_browser(env: dict[str, str], on_lead_added) -> tuple[int, list[str], str]:
    """Runs the driver, answering its "lead-added" with on_lead_added() and "deal-added"."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(DRIVER),
        cwd=ROOT / "console",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    errors = asyncio.create_task(proc.stderr.read())
    lines: list[str] = []
    try:
        async for raw in proc.stdout:
            line = raw.decode().strip()
            if line == "lead-added":
                await on_lead_added()
                proc.stdin.write(b"deal-added\n")
                await proc.stdin.drain()
                proc.stdin.close()
            elif line:
                lines.append(line)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, lines, (await errors).decode()


@pytest.mark.timeout(330)
async def test_plat04_rout06_rout07_conv06_crm02_crm03_console_in_a_browser(tenant):
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
                KAIWA_SECOND_AGENT_URL=demo.agent_url(console_url, "Ken Sato"),
                KAIWA_VISITOR_EMAIL=VISITOR_EMAIL,
                KAIWA_DRAFT=DRAFT,
                KAIWA_SHOTS=str(SHOTS),
                CHROMIUM=CHROMIUM,
            )
            run = drive_browser(env, lambda: add_deal(suite, tenant))
            returncode, out, err = await asyncio.wait_for(run, 260)
        finally:
            server.shutdown()
        asked = [json.dumps(request["body"]).lower() for request in suite.llm.requests]
    print(f"console screenshots in {SHOTS}")
    assert returncode == 0, f"browser run failed (screenshots in {SHOTS}):\n{err[-4000:]}"
    result = json.loads(out[-1])
    assert result["rewritten"] == f"Rewritten: {DRAFT}"  # the fake LLM's answer, shown in the draft box
    assert any("polite" in body and DRAFT in body for body in asked), asked  # the tone picked in the menu
    assert result["markup"] == {"agent": MARKUP, "visitor": MARKUP}  # shown as text, no element made
    assert "Osaka Trading" in result["crm"]["record"] and "06-1234-5678" in result["crm"]["record"]  # added from the chat
    assert "Osaka shipping contract" in result["crm"]["deals"] and "1 open deal" in result["crm"]["summary"]
    assert result["ended"] == {"agent": "The chat has ended.", "visitor": "The chat has ended."}
    for screen in SCREENS:
        assert (SHOTS / f"{screen}.png").stat().st_size > 0, screen
