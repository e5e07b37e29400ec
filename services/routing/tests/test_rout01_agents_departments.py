"""ROUT-01: agents and departments, availability set by the agent; bad input on every RPC."""

from __future__ import annotations

import uuid

import grpc
from kaiwa.routing.v1 import routing_pb2 as pb

from tests.fixtures import auth, status_of


async def test_rout01_departments_and_agents_upsert_by_name_and_email(kit, events):
    sales = await kit.department("Sales", pb.STRATEGY_ROUND_ROBIN, accept_timeout_seconds=12, max_wait_seconds=90)
    again = await kit.department("Sales", pb.STRATEGY_LEAST_LOADED)
    assert again.id == sales.id and again.strategy == pb.STRATEGY_LEAST_LOADED
    assert again.accept_timeout_seconds == 30 and again.max_wait_seconds == 300  # defaults
    support = await kit.department("Support")
    listed = await kit.stub.ListDepartments(pb.ListDepartmentsRequest(), metadata=kit.as_agent(str(uuid.uuid4())))
    assert [d.name for d in listed.departments] == ["Sales", "Support"]
    assert listed.departments[1].strategy == pb.STRATEGY_RING_ALL

    agent = await kit.agent("Aiko@Example.com", [sales.id], max_chats=3, online=False, name="Aiko")
    assert agent.email == "aiko@example.com" and agent.availability == pb.AVAILABILITY_OFFLINE
    moved = await kit.agent("aiko@example.com", [support.id, sales.id], max_chats=5, online=False, name="Aiko T.")
    assert moved.id == agent.id and moved.max_chats == 5 and moved.name == "Aiko T."
    assert sorted(moved.department_ids) == sorted([sales.id, support.id])

    # The agent sets their own availability; an admin may set anyone's.
    me = kit.as_agent(agent.id)
    away = await kit.stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_AWAY), metadata=me)
    assert away.availability == pb.AVAILABILITY_AWAY
    online = await kit.stub.SetAvailability(
        pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE, agent_id=agent.id), metadata=kit.admin()
    )
    assert online.availability == pb.AVAILABILITY_ONLINE
    fetched = await kit.stub.GetAgent(pb.GetAgentRequest(agent_id=agent.id), metadata=me)
    assert fetched.availability == pb.AVAILABILITY_ONLINE and fetched.active_chats == 0
    in_support = await kit.stub.ListAgents(pb.ListAgentsRequest(department_id=support.id), metadata=kit.admin())
    assert [a.id for a in in_support.agents] == [agent.id]
    changes = await events.wait("agent_availability_changed", 2, agent_id=agent.id)
    assert [c.availability for c in changes] == ["away", "online"]


async def test_rout01_bad_input_is_refused_with_clear_status_and_nothing_written(kit, tenant):
    stub, admin = kit.stub, kit.admin()
    sales = await kit.department("Sales")

    async def code(call):
        return await status_of(call)

    bad_departments = [
        pb.UpsertDepartmentRequest(name=""),
        pb.UpsertDepartmentRequest(name="x" * 101),
        pb.UpsertDepartmentRequest(name="Ops", strategy=42),
        pb.UpsertDepartmentRequest(name="Ops", accept_timeout_seconds=-1),
        pb.UpsertDepartmentRequest(name="Ops", max_wait_seconds=100000),
    ]
    for request in bad_departments:
        assert await code(stub.UpsertDepartment(request, metadata=admin)) == grpc.StatusCode.INVALID_ARGUMENT
    bad_agents = [
        pb.UpsertAgentRequest(email="", name="A", max_chats=1),
        pb.UpsertAgentRequest(email="not-an-email", name="A", max_chats=1),
        pb.UpsertAgentRequest(email="a@example.com", name="", max_chats=1),
        pb.UpsertAgentRequest(email="a@example.com", name="A", max_chats=0),
        pb.UpsertAgentRequest(email="a@example.com", name="A", max_chats=101),
        pb.UpsertAgentRequest(email="a@example.com", name="A", max_chats=1, department_ids=["nope"]),
    ]
    for request in bad_agents:
        assert await code(stub.UpsertAgent(request, metadata=admin)) == grpc.StatusCode.INVALID_ARGUMENT
    with_unknown_department = pb.UpsertAgentRequest(
        email="a@example.com", name="A", max_chats=1, department_ids=[sales.id, str(uuid.uuid4())]
    )
    err = None
    try:
        await stub.UpsertAgent(with_unknown_department, metadata=admin)
    except grpc.aio.AioRpcError as exc:
        err = exc
    assert err.code() == grpc.StatusCode.NOT_FOUND and "department" in err.details()
    listed = await stub.ListAgents(pb.ListAgentsRequest(), metadata=admin)
    assert list(listed.agents) == []  # nothing half-written
    assert [d.name for d in (await stub.ListDepartments(pb.ListDepartmentsRequest(), metadata=admin)).departments] == ["Sales"]

    agent = await kit.agent("a@example.com", [sales.id], online=False)
    other = await kit.agent("b@example.com", [sales.id], online=False)
    me = kit.as_agent(agent.id)
    # Identity and roles.
    assert await code(stub.ListDepartments(pb.ListDepartmentsRequest())) == grpc.StatusCode.UNAUTHENTICATED
    assert (
        await code(stub.ListDepartments(pb.ListDepartmentsRequest(), metadata=(("authorization", "Bearer junk"),)))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    visitor = kit.visitor("v-1")
    assert (
        await code(stub.UpsertAgent(pb.UpsertAgentRequest(email="c@example.com", name="C", max_chats=1), metadata=visitor))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await code(stub.UpsertDepartment(pb.UpsertDepartmentRequest(name="X"), metadata=me)) == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await code(stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE), metadata=visitor))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    # Availability.
    assert await code(stub.SetAvailability(pb.SetAvailabilityRequest(), metadata=me)) == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        await code(
            stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE, agent_id=other.id), metadata=me)
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await code(stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE), metadata=admin))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await code(
            stub.SetAvailability(
                pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE, agent_id=str(uuid.uuid4())), metadata=admin
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await code(
            stub.SetAvailability(
                pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE), metadata=kit.as_agent(str(uuid.uuid4()))
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    # Lookups, and another tenant's ids.
    assert await code(stub.GetAgent(pb.GetAgentRequest(agent_id="x"), metadata=admin)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await code(stub.GetAgent(pb.GetAgentRequest(agent_id=str(uuid.uuid4())), metadata=admin)) == grpc.StatusCode.NOT_FOUND
    elsewhere = auth(f"{tenant}-other", "admin", "admin-2")
    assert await code(stub.GetAgent(pb.GetAgentRequest(agent_id=agent.id), metadata=elsewhere)) == grpc.StatusCode.NOT_FOUND
    assert (
        await code(
            stub.SetAvailability(
                pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE, agent_id=agent.id), metadata=elsewhere
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await code(
            stub.UpsertAgent(
                pb.UpsertAgentRequest(email="z@example.com", name="Z", max_chats=1, department_ids=[sales.id]), metadata=elsewhere
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await code(stub.ListAgents(pb.ListAgentsRequest(department_id=str(uuid.uuid4())), metadata=admin))
        == grpc.StatusCode.NOT_FOUND
    )
    unchanged = await stub.GetAgent(pb.GetAgentRequest(agent_id=agent.id), metadata=admin)
    assert unchanged.availability == pb.AVAILABILITY_OFFLINE


async def test_rout01_get_department_answers_for_the_callers_tenant_only(kit, tenant):
    sales = await kit.department("Sales", pb.STRATEGY_ROUND_ROBIN, accept_timeout_seconds=12, max_wait_seconds=90)
    # Admins, agents and services (conversation asks before StartChat) may read it.
    for md in (kit.admin(), kit.as_agent(str(uuid.uuid4())), auth(tenant, "service", "conversation")):
        assert await kit.stub.GetDepartment(pb.GetDepartmentRequest(department_id=sales.id), metadata=md) == sales
    get = lambda department_id, md=None: kit.stub.GetDepartment(
        pb.GetDepartmentRequest(department_id=department_id), metadata=md or kit.admin()
    )
    assert await status_of(get(str(uuid.uuid4()))) == grpc.StatusCode.NOT_FOUND
    assert await status_of(get(sales.id, auth(f"{tenant}-other", "service", "conversation"))) == grpc.StatusCode.NOT_FOUND
    assert await status_of(get(sales.id, auth(f"{tenant}-other", "admin", "admin"))) == grpc.StatusCode.NOT_FOUND
    assert await status_of(get("sales")) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(get("")) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(get(sales.id, kit.visitor("v-1"))) == grpc.StatusCode.PERMISSION_DENIED
