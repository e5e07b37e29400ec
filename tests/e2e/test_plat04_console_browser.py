"""PLAT-04: the web console in a real browser (Debian's headless Chromium).

The five services, the gateway and the console's static server run as in `make run`,
with a demo tenant made by the same code, and a CRM lead for the visitor's e-mail.
console/e2e/chat.mjs (playwright-core from the console's node_modules, launching
/usr/bin/chromium, no browser download) drives a visitor page and two agent pages:

- the visitor starts a chat; Aiko accepts and sees the visitor's details and CRM record
  (CRM-02); replies live both ways with typing; markup in messages stays text both ways;
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
from kaiwa_common.devrun import CONSOLE, MODULES, ensure_demo_tenant, start_console
from tests.e2e.suite import ROOT, Suite

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = ROOT / "console/e2e/chat.mjs"
SHOTS = Path(os.environ.get("KAIWA_CONSOLE_SHOTS", ROOT / "test-artifacts/console"))
VISITOR_EMAIL = "hana.suzuki@example.com"
DRAFT = "send me your order number"
MARKUP = "<img src=x onerror=alert(1)><b>bold</b>"  # the driver sends it each way
SCREENS = ("visitor-chat", "agent-crm", "agent-invited", "agent-transfer", "agent-taken-over", "visitor-ended", "agent-ended")


async def add_crm_lead(suite: Suite, tenant: str) -> None:
    """The visitor's e-mail matches a lead in the tenant's built-in CRM."""
    admin = (("authorization", f"Bearer {mint_token(Settings(), tenant, 'admin', 'console-test@kaiwa.local')}"),)
    request = crm.UpsertRecordRequest(
        type=crm.RECORD_TYPE_LEAD,
        email=VISITOR_EMAIL,
        name="Hana Suzuki",
        fields={"company": "Osaka Trading", "phone": "06-1234-5678", "status": "Contacted"},
        deals=[
            crm.Deal(name="Osaka shipping contract", stage="Negotiation", amount=1200000, closing_date="2027-01-31", open=True)
        ],
    )
    await crm_grpc.CrmBridgeServiceStub(suite.channel("crm_bridge")).UpsertRecord(request, metadata=admin, timeout=10)


async def drive_browser(env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        "node", str(DRIVER), cwd=ROOT / "console", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 260)
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.timeout(330)
async def test_plat04_rout06_rout07_conv06_crm02_console_in_a_browser(tenant):
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
        await add_crm_lead(suite, tenant)
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
            returncode, out, err = await drive_browser(env)
        finally:
            server.shutdown()
        asked = [json.dumps(request["body"]).lower() for request in suite.llm.requests]
    print(f"console screenshots in {SHOTS}")
    assert returncode == 0, f"browser run failed (screenshots in {SHOTS}):\n{err[-4000:]}"
    result = json.loads(out.strip().splitlines()[-1])
    assert result["rewritten"] == f"Rewritten: {DRAFT}"  # the fake LLM's answer, shown in the draft box
    assert any("polite" in body and DRAFT in body for body in asked), asked  # the tone picked in the menu
    assert result["markup"] == {"agent": MARKUP, "visitor": MARKUP}  # shown as text, no element made
    assert "Osaka Trading" in result["crm"]["record"] and "06-1234-5678" in result["crm"]["record"]
    assert "Osaka shipping contract" in result["crm"]["deals"] and "1 open deal" in result["crm"]["summary"]
    assert result["ended"] == {"agent": "The chat has ended.", "visitor": "The chat has ended."}
    for screen in SCREENS:
        assert (SHOTS / f"{screen}.png").stat().st_size > 0, screen
