"""ROUT-02: round robin, least loaded, offer timeout and decline move to the next agent,
away agents get no offers, offers stream live to the agent."""

from __future__ import annotations

import asyncio
import uuid

import grpc
from kaiwa.routing.v1 import routing_pb2 as pb

from kaiwa_routing.router import queue_key
from services.routing.tests.kit import POLL
from tests.fixtures import eventually, status_of


async def _offered_to(kit, chat: str, agents) -> list[str]:
    """The agents who hold an offer of this chat, once somebody does."""

    async def holders():
        return [a.id for a in agents if chat in await kit.offers(a.id)]

    return await eventually(holders, f"chat {chat} offered to somebody", interval=POLL)


async def test_rout02_round_robin_offers_one_agent_at_a_time_in_turn(kit):
    dept = await kit.department("Sales", pb.STRATEGY_ROUND_ROBIN)
    agents = [await kit.agent(f"{n}@example.com", [dept.id], max_chats=5) for n in "abc"]
    turns = []
    for _ in range(6):
        chat = await kit.start_chat(dept.id)
        holders = await _offered_to(kit, chat, agents)
        assert len(holders) == 1
        turns.append(holders[0])
        await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=kit.as_agent(holders[0]))
    assert sorted(turns[:3]) == sorted(a.id for a in agents)  # each agent once per round
    assert turns[3:] == turns[:3]


async def test_rout02_least_loaded_picks_fewest_open_chats_then_longest_idle(kit):
    dept = await kit.department("Support", pb.STRATEGY_LEAST_LOADED)
    a, b, c = [await kit.agent(f"{n}@example.com", [dept.id], max_chats=5) for n in "abc"]

    async def give(agent):
        chat = await kit.start_chat(dept.id)
        await kit.wait_state(chat, pb.ASSIGNMENT_STATE_QUEUED)
        await kit.stub.AssignChat(pb.AssignChatRequest(chat_id=chat, agent_id=agent.id), metadata=kit.admin())
        await kit.wait_offers(agent.id, lambda o: chat not in o)

    await give(a)
    await give(a)
    await give(c)
    # a: 2 open chats, c: 1, b: 0 -> b
    chat = await kit.start_chat(dept.id)
    assert await _offered_to(kit, chat, [a, b, c]) == [b.id]
    await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=kit.as_agent(b.id))
    # b and c have 1 each; c was assigned longer ago (idle longer) -> c
    chat = await kit.start_chat(dept.id)
    assert await _offered_to(kit, chat, [a, b, c]) == [c.id]


async def test_rout02_unanswered_offer_times_out_to_the_next_agent_and_decline_moves_on(kit, events):
    dept = await kit.department("Sales", pb.STRATEGY_ROUND_ROBIN, accept_timeout_seconds=0.3, max_wait_seconds=60)
    a, b = [await kit.agent(f"{n}@example.com", [dept.id], max_chats=3) for n in "ab"]
    chat = await kit.start_chat(dept.id)
    first = (await _offered_to(kit, chat, [a, b]))[0]
    second = b.id if first == a.id else a.id
    # Nobody answers: the offer goes to the other agent.
    await kit.wait_offers(second, lambda o: chat in o, "offer after timeout")
    assert chat not in await kit.offers(first)
    timed_out = await events.wait("offer_declined", chat_id=chat)
    assert timed_out[0].agent_id == first and timed_out[0].reason == "timeout"
    # The second declines: the chat goes back to the first (the only one left who did not decline).
    await kit.stub.DeclineChat(pb.DeclineChatRequest(chat_id=chat, reason="busy with a call"), metadata=kit.as_agent(second))
    declined = await events.wait("offer_declined", chat_id=chat, agent_id=second)
    assert declined[0].reason == "busy with a call"
    again = kit.stub.DeclineChat(pb.DeclineChatRequest(chat_id=chat), metadata=kit.as_agent(second))
    assert await status_of(again) == grpc.StatusCode.FAILED_PRECONDITION
    await kit.wait_offers(first, lambda o: chat in o, "offer back to the first agent")
    await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=kit.as_agent(first))
    assert (await kit.assignment(chat)).agent_id == first


async def test_rout02_away_agents_get_no_offers_and_going_away_withdraws_them(kit):
    dept = await kit.department("Sales", pb.STRATEGY_RING_ALL)
    a, b = [await kit.agent(f"{n}@example.com", [dept.id]) for n in "ab"]
    chat = await kit.start_chat(dept.id)
    await kit.wait_offers(a.id, lambda o: chat in o)
    await kit.stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_AWAY), metadata=kit.as_agent(a.id))
    assert await kit.offers(a.id) == []
    assert (
        await status_of(kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=kit.as_agent(a.id)))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    await kit.wait_offers(b.id, lambda o: chat in o)
    await kit.stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_OFFLINE), metadata=kit.as_agent(b.id))
    assert await kit.offers(b.id) == []
    later = await kit.start_chat(dept.id)
    await kit.wait_state(later, pb.ASSIGNMENT_STATE_QUEUED)
    assert await kit.offers(a.id) == [] and await kit.offers(b.id) == []
    # Back online: both waiting chats are offered again.
    await kit.stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE), metadata=kit.as_agent(a.id))
    await kit.wait_offers(a.id, lambda o: sorted(o) == sorted([chat, later]))


async def test_rout02_offers_stream_live_to_the_agent(kit):
    dept = await kit.department("Sales")
    a, b = [await kit.agent(f"{n}@example.com", [dept.id]) for n in "ab"]
    stream = kit.stub.StreamOffers(pb.StreamOffersRequest(), metadata=kit.as_agent(a.id))
    chat = await kit.start_chat(dept.id)
    update = await asyncio.wait_for(stream.read(), 10)
    assert update.offer.chat_id == chat and not update.withdrawn and update.offer.department_id == dept.id
    await kit.wait_offers(b.id, lambda o: chat in o)
    await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=kit.as_agent(b.id))
    update = await asyncio.wait_for(stream.read(), 10)
    assert update.offer.chat_id == chat and update.withdrawn
    stream.cancel()
    denied = kit.stub.StreamOffers(pb.StreamOffersRequest(), metadata=kit.visitor("v-1"))
    assert await status_of(denied.read()) == grpc.StatusCode.PERMISSION_DENIED


async def test_rout02_decline_bad_input(kit):
    dept = await kit.department("Sales")
    a = await kit.agent("a@example.com", [dept.id])
    stranger = await kit.agent("s@example.com", [], online=True)
    chat = await kit.start_chat(dept.id)
    await kit.wait_offers(a.id, lambda o: chat in o)
    decline = lambda chat_id, md: kit.stub.DeclineChat(pb.DeclineChatRequest(chat_id=chat_id), metadata=md)
    assert await status_of(decline("bad", kit.as_agent(a.id))) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(decline(chat, kit.as_agent(stranger.id))) == grpc.StatusCode.FAILED_PRECONDITION
    assert await status_of(decline(chat, kit.visitor("v"))) == grpc.StatusCode.PERMISSION_DENIED
    assert await kit.offers(a.id) == [chat]


async def _queue_lock_holder_waits_on(db, tenant: str, department_id: str, table: str) -> bool:
    """Whether the transaction holding this queue's pass lock (router.py) waits for `table`."""
    return await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks held JOIN pg_locks waiting ON waiting.pid = held.pid "
        "WHERE held.locktype = 'advisory' AND held.granted AND held.objsubid = 1 "
        "AND ((held.classid::bigint << 32) | held.objid::bigint) = hashtextextended($1, 0) "
        "AND waiting.relation = $2::regclass AND NOT waiting.granted)",
        "routing:" + queue_key(tenant, department_id),
        table,
    )


async def test_rout02_a_pass_with_stale_candidates_never_offers_to_an_agent_who_went_offline(kit, db, tenant):
    """The flake of the test above: a routing pass read its candidates (b online), b went
    offline (withdrawing b's offers), then the pass offered the chat to b from its stale
    list. Here a lock holds a pass exactly between the two reads."""
    dept = await kit.department("Sales", pb.STRATEGY_RING_ALL)
    a, b = [await kit.agent(f"{n}@example.com", [dept.id]) for n in "ab"]
    chat = await kit.start_chat(dept.id)
    await kit.wait_offers(a.id, lambda o: chat in o)
    await kit.wait_offers(b.id, lambda o: chat in o)

    held = db.transaction()
    await held.start()
    await db.execute("LOCK TABLE offer_refusals IN ACCESS EXCLUSIVE MODE")  # a pass reads it after the candidates
    try:
        await kit.department("Sales", pb.STRATEGY_RING_ALL)  # an upsert runs a pass of the queue
        await eventually(lambda: _queue_lock_holder_waits_on(db, tenant, dept.id, "offer_refusals"), "a pass held")
        await kit.stub.SetAvailability(
            pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_OFFLINE), metadata=kit.as_agent(b.id)
        )
        assert await kit.offers(b.id) == []
    finally:
        await held.rollback()  # the pass goes on: b is a candidate in its list, with no offer left
    async with db.transaction():  # the queue's pass lock, once that pass has committed
        await db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "routing:" + queue_key(tenant, dept.id))
    assert await kit.offers(b.id) == []
    assert await db.fetchval("SELECT count(*) FROM offers WHERE tenant = $1 AND agent_id = $2", tenant, uuid.UUID(b.id)) == 0
    assert await kit.offers(a.id) == [chat]
