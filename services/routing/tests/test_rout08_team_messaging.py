"""ROUT-08: agent-to-agent direct messages and a team board, with a live stream."""

from __future__ import annotations

import asyncio
import uuid

import grpc
from kaiwa.routing.v1 import routing_pb2 as pb

from tests.fixtures import status_of


async def test_rout08_direct_messages_and_board_posts_reach_the_right_agents_live(kit):
    a = await kit.agent("a@example.com", [], name="Aiko")
    b = await kit.agent("b@example.com", [], name="Ben")
    c = await kit.agent("c@example.com", [], name="Chie")
    stream_b = kit.stub.StreamTeamMessages(pb.StreamTeamMessagesRequest(), metadata=kit.as_agent(b.id))
    stream_c = kit.stub.StreamTeamMessages(pb.StreamTeamMessagesRequest(), metadata=kit.as_agent(c.id))
    dm = await kit.stub.SendTeamMessage(
        pb.SendTeamMessageRequest(to_agent_email="b@example.com", text="Lunch?"), metadata=kit.as_agent(a.id)
    )
    post = await kit.stub.SendTeamMessage(pb.SendTeamMessageRequest(text="Release at 5pm"), metadata=kit.as_agent(c.id))
    assert dm.to_agent_id == b.id and dm.from_name == "Aiko" and post.to_agent_id == "" and post.seq > dm.seq

    got_b = [await asyncio.wait_for(stream_b.read(), 10) for _ in range(2)]
    assert [(m.text, m.from_agent_id) for m in got_b] == [("Lunch?", a.id), ("Release at 5pm", c.id)]
    got_c = await asyncio.wait_for(stream_c.read(), 10)
    assert got_c.text == "Release at 5pm"  # c never sees a's message to b
    reply = await kit.stub.SendTeamMessage(pb.SendTeamMessageRequest(to_agent_id=a.id, text="Sure"), metadata=kit.as_agent(b.id))
    assert (await asyncio.wait_for(stream_b.read(), 10)).id == reply.id  # one's own messages too
    stream_b.cancel()
    stream_c.cancel()

    board = await kit.stub.ListTeamMessages(pb.ListTeamMessagesRequest(board=True), metadata=kit.as_agent(a.id))
    assert [m.text for m in board.messages] == ["Release at 5pm"]
    with_b = await kit.stub.ListTeamMessages(pb.ListTeamMessagesRequest(with_agent_id=b.id), metadata=kit.as_agent(a.id))
    assert [m.text for m in with_b.messages] == ["Lunch?", "Sure"]
    with_a = await kit.stub.ListTeamMessages(pb.ListTeamMessagesRequest(with_agent_id=a.id), metadata=kit.as_agent(c.id))
    assert list(with_a.messages) == []
    # Resuming after a seq delivers only what came later.
    resumed = kit.stub.StreamTeamMessages(pb.StreamTeamMessagesRequest(after_seq=post.seq), metadata=kit.as_agent(a.id))
    assert (await asyncio.wait_for(resumed.read(), 10)).id == reply.id
    resumed.cancel()


async def test_rout08_team_messaging_bad_input(kit):
    a = await kit.agent("a@example.com", [])
    send = lambda md=None, **kw: kit.stub.SendTeamMessage(pb.SendTeamMessageRequest(**kw), metadata=md or kit.as_agent(a.id))
    cases = [
        (send(text="  "), grpc.StatusCode.INVALID_ARGUMENT),
        (send(text="x" * 4001), grpc.StatusCode.INVALID_ARGUMENT),
        (send(text="hi", to_agent_id=a.id), grpc.StatusCode.INVALID_ARGUMENT),
        (send(text="hi", to_agent_id="nope"), grpc.StatusCode.INVALID_ARGUMENT),
        (send(text="hi", to_agent_id=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND),
        (send(text="hi", to_agent_email="who@example.com"), grpc.StatusCode.NOT_FOUND),
        (send(kit.admin(), text="hi"), grpc.StatusCode.PERMISSION_DENIED),
        (send(kit.visitor("v"), text="hi"), grpc.StatusCode.PERMISSION_DENIED),
        (send(kit.as_agent(str(uuid.uuid4())), text="hi"), grpc.StatusCode.PERMISSION_DENIED),
    ]
    for call, expected in cases:
        assert await status_of(call) == expected
    listing = lambda **kw: kit.stub.ListTeamMessages(pb.ListTeamMessagesRequest(**kw), metadata=kit.as_agent(a.id))
    assert await status_of(listing(limit=501)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(listing(after_seq=-1)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(listing(board=True, with_agent_id=a.id)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(listing(with_agent_id=str(uuid.uuid4()))) == grpc.StatusCode.NOT_FOUND
    assert list((await listing()).messages) == []


async def test_rout08_a_message_retried_with_its_request_id_is_sent_once(kit):
    a = await kit.agent("a@example.com", [])
    b = await kit.agent("b@example.com", [])
    send = lambda md=None, **kw: kit.stub.SendTeamMessage(pb.SendTeamMessageRequest(**kw), metadata=md or kit.as_agent(a.id))
    first = await send(to_agent_email="b@example.com", text="Lunch?", request_id="r-1")
    again = await send(to_agent_email="b@example.com", text="Lunch?", request_id="r-1")
    assert again == first
    other = await send(to_agent_email="b@example.com", text="Lunch?", request_id="r-2")  # another request: sent again
    assert other.id != first.id
    assert await status_of(send(text="something else", request_id="r-1")) == grpc.StatusCode.INVALID_ARGUMENT
    # The same key from another agent is not theirs to replay.
    assert (
        await status_of(send(kit.as_agent(b.id), to_agent_email="b@example.com", text="Lunch?", request_id="r-1"))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert await status_of(send(text="hi", request_id="x" * 129)) == grpc.StatusCode.INVALID_ARGUMENT
    seen = await kit.stub.ListTeamMessages(pb.ListTeamMessagesRequest(with_agent_id=b.id), metadata=kit.as_agent(a.id))
    assert [m.id for m in seen.messages] == [first.id, other.id]
