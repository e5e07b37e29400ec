"""ROUT-06: assign or reassign a chat; transfer to an agent by e-mail or a department by
name with a note; the target accepts or declines; a decline keeps the chat with its agent
or returns it to the queue when that agent has gone."""

from __future__ import annotations

import uuid

import grpc
from kaiwa.routing.v1 import routing_pb2 as pb

from tests.fixtures import auth, status_of


async def _assigned_chat(kit, dept, agent) -> str:
    chat = await kit.start_chat(dept.id)
    await kit.wait_state(chat, pb.ASSIGNMENT_STATE_QUEUED)
    await kit.stub.AssignChat(pb.AssignChatRequest(chat_id=chat, agent_id=agent.id), metadata=kit.admin())
    return chat


async def test_rout06_assign_to_oneself_and_reassign_to_another_agent(kit, events):
    dept = await kit.department("Sales")
    a = await kit.agent("a@example.com", [dept.id])
    b = await kit.agent("b@example.com", [dept.id])
    chat = await kit.start_chat(dept.id)
    await kit.wait_offers(b.id, lambda o: chat in o)
    mine = await kit.stub.AssignChat(pb.AssignChatRequest(chat_id=chat), metadata=kit.as_agent(a.id))
    assert mine.state == pb.ASSIGNMENT_STATE_ASSIGNED and mine.agent_id == a.id
    assert await kit.offers(b.id) == []
    moved = await kit.stub.AssignChat(
        pb.AssignChatRequest(chat_id=chat, agent_email="B@example.com"), metadata=kit.as_agent(a.id)
    )
    assert moved.agent_id == b.id
    await events.wait("chat_assigned", chat_id=chat, how="reassigned", previous_agent_id=a.id, agent_id=b.id)
    assert (await kit.wait_agent(a.id, 0)).active_chats == 0
    assert (await kit.wait_agent(b.id, 1)).active_chats == 1

    # Bad input: state unchanged.
    assign = lambda md, **kw: kit.stub.AssignChat(pb.AssignChatRequest(chat_id=chat, **kw), metadata=md)
    assert await status_of(assign(kit.as_agent(a.id), agent_id=b.id)) == grpc.StatusCode.FAILED_PRECONDITION
    off = await kit.agent("off@example.com", [dept.id], online=False)
    assert await status_of(assign(kit.admin(), agent_id=off.id)) == grpc.StatusCode.FAILED_PRECONDITION
    full = await kit.agent("full@example.com", [dept.id], max_chats=1)
    await _assigned_chat(kit, dept, full)
    assert await status_of(assign(kit.admin(), agent_id=full.id)) == grpc.StatusCode.FAILED_PRECONDITION
    assert await status_of(assign(kit.admin())) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(assign(kit.admin(), agent_id=str(uuid.uuid4()))) == grpc.StatusCode.NOT_FOUND
    assert await status_of(assign(kit.admin(), agent_email="nobody@example.com")) == grpc.StatusCode.NOT_FOUND
    assert await status_of(assign(kit.admin(), agent_id=a.id, agent_email="a@example.com")) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(assign(kit.visitor("v"), agent_id=a.id)) == grpc.StatusCode.PERMISSION_DENIED
    assert await status_of(assign(auth(f"{kit.tenant}-x", "admin", "x"), agent_id=a.id)) == grpc.StatusCode.NOT_FOUND
    assert (await kit.assignment(chat)).agent_id == b.id


async def test_rout06_transfer_to_an_agent_accepted_moves_chat_and_capacity(kit, events):
    dept = await kit.department("Sales")
    a = await kit.agent("a@example.com", [dept.id])
    b = await kit.agent("b@example.com", [dept.id])
    chat = await _assigned_chat(kit, dept, a)
    transfer = await kit.stub.TransferChat(
        pb.TransferChatRequest(chat_id=chat, to_agent_email="b@example.com", note="needs billing help"),
        metadata=kit.as_agent(a.id),
    )
    assert transfer.state == pb.TRANSFER_STATE_PENDING and transfer.to_agent_id == b.id
    requested = await events.wait("transfer_requested", chat_id=chat)
    assert requested[0].note == "needs billing help" and requested[0].to_agent_id == b.id
    waiting = await kit.stub.ListTransfers(pb.ListTransfersRequest(), metadata=kit.as_agent(b.id))
    assert [t.id for t in waiting.transfers] == [transfer.id]
    assert list((await kit.stub.ListTransfers(pb.ListTransfersRequest(), metadata=kit.as_agent(a.id))).transfers) == []
    again = kit.stub.TransferChat(
        pb.TransferChatRequest(chat_id=chat, to_agent_email="b@example.com"), metadata=kit.as_agent(a.id)
    )
    assert await status_of(again) == grpc.StatusCode.FAILED_PRECONDITION  # one pending transfer at a time
    wrong = kit.stub.AnswerTransfer(pb.AnswerTransferRequest(transfer_id=transfer.id, accept=True), metadata=kit.as_agent(a.id))
    assert await status_of(wrong) == grpc.StatusCode.PERMISSION_DENIED

    done = await kit.stub.AnswerTransfer(
        pb.AnswerTransferRequest(transfer_id=transfer.id, accept=True), metadata=kit.as_agent(b.id)
    )
    assert done.state == pb.TRANSFER_STATE_ACCEPTED and done.answered_by == b.id
    await events.wait("chat_assigned", chat_id=chat, how="transferred", previous_agent_id=a.id, agent_id=b.id)
    assert (await kit.assignment(chat)).agent_id == b.id
    assert (await kit.wait_agent(a.id, 0)).active_chats == 0 and (await kit.wait_agent(b.id, 1)).active_chats == 1
    twice = kit.stub.AnswerTransfer(pb.AnswerTransferRequest(transfer_id=transfer.id, accept=True), metadata=kit.as_agent(b.id))
    assert await status_of(twice) == grpc.StatusCode.FAILED_PRECONDITION


async def test_rout06_declined_transfer_stays_or_returns_to_the_queue_when_the_agent_has_gone(kit, events):
    dept = await kit.department("Sales")
    a = await kit.agent("a@example.com", [dept.id])
    b = await kit.agent("b@example.com", [dept.id])
    chat = await _assigned_chat(kit, dept, a)
    t = await kit.stub.TransferChat(
        pb.TransferChatRequest(chat_id=chat, to_agent_email="b@example.com", note="VIP"), metadata=kit.as_agent(a.id)
    )
    declined = await kit.stub.AnswerTransfer(
        pb.AnswerTransferRequest(transfer_id=t.id, accept=False, reason="in a call"), metadata=kit.as_agent(b.id)
    )
    assert declined.state == pb.TRANSFER_STATE_DECLINED and declined.decline_reason == "in a call"
    event = (await events.wait("transfer_declined", transfer_id=t.id))[0]
    assert event.note == "VIP" and event.reason == "in a call" and not event.returned_to_queue
    assert (await kit.assignment(chat)).agent_id == a.id

    # The owner goes offline and the next transfer is declined: back to the queue.
    t2 = await kit.stub.TransferChat(
        pb.TransferChatRequest(chat_id=chat, to_agent_email="b@example.com", note="leaving"), metadata=kit.as_agent(a.id)
    )
    await kit.stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_OFFLINE), metadata=kit.as_agent(a.id))
    await kit.stub.AnswerTransfer(
        pb.AnswerTransferRequest(transfer_id=t2.id, accept=False, reason="no"), metadata=kit.as_agent(b.id)
    )
    event = (await events.wait("transfer_declined", transfer_id=t2.id))[0]
    assert event.returned_to_queue and event.note == "leaving"
    assert (await kit.assignment(chat)).state == pb.ASSIGNMENT_STATE_QUEUED
    assert (await kit.wait_agent(a.id, 0)).active_chats == 0
    await kit.wait_offers(b.id, lambda o: chat in o)


async def test_rout06_transfer_to_a_department_by_name_and_timeout(kit, events):
    # A transfer waits for an answer as long as the chat's department accepts offers: long
    # here (the answers below take their time on a loaded machine), short for the timeout.
    sales = await kit.department("Sales", accept_timeout_seconds=30)
    billing = await kit.department("Billing", accept_timeout_seconds=0.4)
    a = await kit.agent("a@example.com", [sales.id])
    x = await kit.agent("x@example.com", [billing.id])
    y = await kit.agent("y@example.com", [billing.id])
    chat = await _assigned_chat(kit, sales, a)
    t = await kit.stub.TransferChat(
        pb.TransferChatRequest(chat_id=chat, to_department_name="Billing", note="invoice"), metadata=kit.as_agent(a.id)
    )
    assert t.to_department_id == billing.id
    requested = (await events.wait("transfer_requested", transfer_id=t.id))[0]
    assert requested.to_department_name == "Billing"
    outsider = kit.stub.AnswerTransfer(pb.AnswerTransferRequest(transfer_id=t.id, accept=True), metadata=kit.as_agent(a.id))
    assert await status_of(outsider) == grpc.StatusCode.PERMISSION_DENIED
    still = await kit.stub.AnswerTransfer(
        pb.AnswerTransferRequest(transfer_id=t.id, accept=False, reason="lunch"), metadata=kit.as_agent(x.id)
    )
    assert still.state == pb.TRANSFER_STATE_PENDING  # y may still take it
    assert list((await kit.stub.ListTransfers(pb.ListTransfersRequest(), metadata=kit.as_agent(x.id))).transfers) == []
    taken = await kit.stub.AnswerTransfer(pb.AnswerTransferRequest(transfer_id=t.id, accept=True), metadata=kit.as_agent(y.id))
    assert taken.state == pb.TRANSFER_STATE_ACCEPTED
    assert (await kit.assignment(chat)).agent_id == y.id

    # Nobody answers in the department's accept timeout: declined, the chat stays.
    await kit.department("Sales", accept_timeout_seconds=0.4)
    t2 = await kit.stub.TransferChat(
        pb.TransferChatRequest(chat_id=chat, to_agent_email="x@example.com"), metadata=kit.as_agent(y.id)
    )
    event = (await events.wait("transfer_declined", transfer_id=t2.id))[0]
    assert event.reason == "timeout" and not event.returned_to_queue
    assert (await kit.assignment(chat)).agent_id == y.id


async def test_rout06_transfer_bad_input(kit):
    dept = await kit.department("Sales")
    a = await kit.agent("a@example.com", [dept.id])
    b = await kit.agent("b@example.com", [dept.id], max_chats=1)
    off = await kit.agent("off@example.com", [dept.id], online=False)
    empty = await kit.department("Empty")
    chat = await _assigned_chat(kit, dept, a)
    transfer = lambda md=None, **kw: kit.stub.TransferChat(pb.TransferChatRequest(**kw), metadata=md or kit.as_agent(a.id))
    cases = [
        (transfer(chat_id=chat, to_agent_email="a@example.com"), grpc.StatusCode.INVALID_ARGUMENT),  # to oneself
        (transfer(chat_id=chat), grpc.StatusCode.INVALID_ARGUMENT),
        (transfer(chat_id=chat, to_agent_email="b@example.com", to_department_name="Sales"), grpc.StatusCode.INVALID_ARGUMENT),
        (transfer(chat_id=chat, to_agent_email="bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (transfer(chat_id=chat, to_agent_email="b@example.com", note="x" * 1001), grpc.StatusCode.INVALID_ARGUMENT),
        (transfer(chat_id=chat, to_agent_email="off@example.com"), grpc.StatusCode.FAILED_PRECONDITION),  # offline
        (transfer(chat_id=chat, to_department_name="Empty"), grpc.StatusCode.FAILED_PRECONDITION),
        (transfer(chat_id=chat, to_agent_email="who@example.com"), grpc.StatusCode.NOT_FOUND),
        (transfer(chat_id=chat, to_department_name="Nope"), grpc.StatusCode.NOT_FOUND),
        (transfer(chat_id=str(uuid.uuid4()), to_agent_email="b@example.com"), grpc.StatusCode.NOT_FOUND),
        (transfer(kit.as_agent(b.id), chat_id=chat, to_agent_email="off@example.com"), grpc.StatusCode.PERMISSION_DENIED),
        (transfer(kit.visitor("v"), chat_id=chat, to_agent_email="b@example.com"), grpc.StatusCode.PERMISSION_DENIED),
    ]
    for call, expected in cases:
        assert await status_of(call) == expected
    await _assigned_chat(kit, dept, b)  # b now at capacity
    assert await status_of(transfer(chat_id=chat, to_agent_email="b@example.com")) == grpc.StatusCode.FAILED_PRECONDITION
    queued = await kit.start_chat(empty.id)
    await kit.wait_state(queued, pb.ASSIGNMENT_STATE_QUEUED)
    assert (
        await status_of(transfer(kit.admin(), chat_id=queued, to_agent_email="b@example.com"))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    answer = lambda md, **kw: kit.stub.AnswerTransfer(pb.AnswerTransferRequest(**kw), metadata=md)
    assert await status_of(answer(kit.as_agent(b.id), transfer_id="x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(answer(kit.as_agent(b.id), transfer_id=str(uuid.uuid4()))) == grpc.StatusCode.NOT_FOUND
    assert await status_of(answer(kit.admin(), transfer_id=str(uuid.uuid4()))) == grpc.StatusCode.PERMISSION_DENIED
    assert list((await kit.stub.ListTransfers(pb.ListTransfersRequest(), metadata=kit.as_agent(b.id))).transfers) == []
    assert (await kit.assignment(chat)).agent_id == a.id and off.id


async def test_rout06_a_transfer_retried_with_its_request_id_is_created_once(kit, events):
    dept = await kit.department("Sales")
    a = await kit.agent("a@example.com", [dept.id])
    b = await kit.agent("b@example.com", [dept.id])
    chat = await _assigned_chat(kit, dept, a)
    request = pb.TransferChatRequest(chat_id=chat, to_agent_email="b@example.com", note="billing", request_id="t-1")
    first = await kit.stub.TransferChat(request, metadata=kit.as_agent(a.id))
    again = await kit.stub.TransferChat(request, metadata=kit.as_agent(a.id))  # not "a transfer is already waiting"
    assert again == first
    await kit.stub.AnswerTransfer(pb.AnswerTransferRequest(transfer_id=first.id, accept=True), metadata=kit.as_agent(b.id))
    late = await kit.stub.TransferChat(request, metadata=kit.as_agent(a.id))  # after the answer: still the same one
    assert late.id == first.id and late.state == pb.TRANSFER_STATE_ACCEPTED
    changed = pb.TransferChatRequest(chat_id=chat, to_agent_email="b@example.com", note="other", request_id="t-1")
    assert await status_of(kit.stub.TransferChat(changed, metadata=kit.as_agent(a.id))) == grpc.StatusCode.INVALID_ARGUMENT
    assert len(await events.wait("transfer_requested", chat_id=chat)) == 1
    assert (await kit.assignment(chat)).agent_id == b.id


async def test_rout06_transfer_events_name_the_target_agent_and_department(kit, events):
    """TransferRequested names the target agent; TransferDeclined names who declined (the
    addressed agent when nobody answered; nobody for an unanswered department) and the
    department, so conversation's system messages can name them."""
    sales = await kit.department("Sales", accept_timeout_seconds=0.4)
    billing = await kit.department("Billing", accept_timeout_seconds=0.4)
    a = await kit.agent("a@example.com", [sales.id], name="Aiko")
    b = await kit.agent("b@example.com", [sales.id], name="Ben")
    x = await kit.agent("x@example.com", [billing.id], name="Xu")
    chat = await _assigned_chat(kit, sales, a)
    owner = kit.as_agent(a.id)

    # To an agent, declined by them.
    t1 = await kit.stub.TransferChat(pb.TransferChatRequest(chat_id=chat, to_agent_email="b@example.com"), metadata=owner)
    requested = (await events.wait("transfer_requested", transfer_id=t1.id))[0]
    assert (requested.to_agent_id, requested.to_agent_name) == (b.id, "Ben")
    assert (requested.to_department_id, requested.to_department_name) == ("", "")
    await kit.stub.AnswerTransfer(pb.AnswerTransferRequest(transfer_id=t1.id, accept=False), metadata=kit.as_agent(b.id))
    declined = (await events.wait("transfer_declined", transfer_id=t1.id))[0]
    assert (declined.to_agent_id, declined.to_agent_name) == (b.id, "Ben")
    assert (declined.to_department_id, declined.to_department_name) == ("", "")

    # To an agent, not answered in time: still the addressed agent.
    t2 = await kit.stub.TransferChat(pb.TransferChatRequest(chat_id=chat, to_agent_email="b@example.com"), metadata=owner)
    declined = (await events.wait("transfer_declined", transfer_id=t2.id))[0]
    assert declined.reason == "timeout" and (declined.to_agent_id, declined.to_agent_name) == (b.id, "Ben")

    # To a department, declined by its last agent: that agent and the department.
    t3 = await kit.stub.TransferChat(pb.TransferChatRequest(chat_id=chat, to_department_name="Billing"), metadata=owner)
    requested = (await events.wait("transfer_requested", transfer_id=t3.id))[0]
    assert (requested.to_department_id, requested.to_department_name) == (billing.id, "Billing")
    assert (requested.to_agent_id, requested.to_agent_name) == ("", "")
    await kit.stub.AnswerTransfer(pb.AnswerTransferRequest(transfer_id=t3.id, accept=False), metadata=kit.as_agent(x.id))
    declined = (await events.wait("transfer_declined", transfer_id=t3.id))[0]
    assert (declined.to_agent_id, declined.to_agent_name) == (x.id, "Xu")
    assert (declined.to_department_id, declined.to_department_name) == (billing.id, "Billing")

    # To a department, not answered in time: the department, no agent.
    t4 = await kit.stub.TransferChat(pb.TransferChatRequest(chat_id=chat, to_department_name="Billing"), metadata=owner)
    declined = (await events.wait("transfer_declined", transfer_id=t4.id))[0]
    assert declined.reason == "timeout" and (declined.to_agent_id, declined.to_agent_name) == ("", "")
    assert (declined.to_department_id, declined.to_department_name) == (billing.id, "Billing")
    assert (await kit.assignment(chat)).agent_id == a.id
