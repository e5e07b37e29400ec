"""ROUT-01/02: a chat is routed only within a department routing knows. Conversation
refuses a StartChat for a department that is not the tenant's (it asks GetDepartment), so
an event naming one comes from before that check or from a defect: the chat becomes a
missed chat at once (reason unknown_department) and rings nobody, where routing used to
offer it to every agent of the tenant. A chat without a department (a portal without
departments) still goes to every agent."""

from __future__ import annotations

import uuid

from kaiwa.events.v1 import conversation_pb2 as conv
from kaiwa.routing.v1 import routing_pb2 as pb

from services.routing.tests.kit import Kit


async def test_rout02_a_chat_for_a_department_routing_does_not_know_is_missed_at_once_and_rings_nobody(kit, events, tenant):
    sales = await kit.department("Sales")
    member = await kit.agent("a@example.com", [sales.id])
    anyone = await kit.agent("b@example.com", [])
    elsewhere = await Kit(kit.stub, kit.nc, f"{tenant}-other").department("Sales")

    unknown = [str(uuid.uuid4()), "sales", elsewhere.id]  # never created, not an id, another tenant's
    chats = [await kit.start_chat(department) for department in unknown]
    bot = await kit.start_chat(sales.id, state="bot")
    await kit.wait_state(bot, pb.ASSIGNMENT_STATE_BOT)
    handed_over_to = str(uuid.uuid4())
    await kit.publish(conv.BotHandedOver(chat_id=bot, department_id=handed_over_to, visitor_id="v-9", summary="human"))

    for chat, department in zip(chats + [bot], unknown + [handed_over_to], strict=True):
        missed = (await events.wait("chat_missed", chat_id=chat))[0]
        assert missed.reason == "unknown_department" and missed.department_id == department
        assert missed.waited_seconds == 0
        assert (await kit.assignment(chat)).state == pb.ASSIGNMENT_STATE_MISSED
    listed = await kit.stub.ListMissedChats(pb.ListMissedChatsRequest(), metadata=kit.admin())
    assert sorted((c.chat_id, c.reason) for c in listed.chats) == sorted((c, "unknown_department") for c in chats + [bot])

    # A chat without a department goes to every agent of the tenant; it is offered last,
    # so once it is, the missed chats have had every chance to be offered and were not.
    plain = await kit.start_chat("")
    await kit.wait_offers(anyone.id, lambda o: o == [plain])
    await kit.wait_offers(member.id, lambda o: o == [plain])
    assert {e.chat_id for e in events.of("chat_offered")} == {plain}
