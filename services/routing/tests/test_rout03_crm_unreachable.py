"""ROUT-02/03: routing never stalls on the CRM — crm_bridge unreachable means the
department's strategy."""

from __future__ import annotations

import os

import pytest
from kaiwa.routing.v1 import routing_pb2 as pb

from kaiwa_common.devservers import free_port


@pytest.fixture(scope="module", autouse=True)
def crm_bridge_down():
    previous = os.environ.get("KAIWA_CRM_BRIDGE_ADDR")
    os.environ["KAIWA_CRM_BRIDGE_ADDR"] = f"127.0.0.1:{free_port()}"  # nothing listens there
    yield
    if previous is None:
        os.environ.pop("KAIWA_CRM_BRIDGE_ADDR", None)
    else:
        os.environ["KAIWA_CRM_BRIDGE_ADDR"] = previous


async def test_rout03_crm_unreachable_falls_back_to_the_department_strategy(kit):
    dept = await kit.department("Sales", pb.STRATEGY_CRM_OWNER)
    a, b = [await kit.agent(f"{n}@example.com", [dept.id]) for n in "ab"]
    await kit.stub.UpsertRule(
        pb.Rule(
            kind=pb.RULE_KIND_ASSIGNMENT,
            name="vip",
            order=1,
            agent_ids=[a.id],
            conditions=[pb.Condition(field="visitor_type", op=pb.OPERATOR_EQUALS, value="deal")],
        ),
        metadata=kit.admin(),
    )
    chat = await kit.start_chat(dept.id, visitor_email="someone@customer.jp")
    await kit.wait_offers(a.id, lambda o: chat in o)
    await kit.wait_offers(b.id, lambda o: chat in o)
