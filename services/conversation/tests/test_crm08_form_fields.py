"""CRM-08 (conversation's part): StartChat takes the widget's pre-chat form fields, checks
them (at most 50; names of letters, digits, _, space or -, up to 100; values up to 2000
characters), keeps them with the chat and carries them on chat_started for the CRM bridge."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from kaiwa.conversation.v1 import conversation_pb2 as pb

from tests.fixtures import auth, eventually


def violations(err: grpc.aio.AioRpcError) -> list[str]:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return [v.field for v in bad.field_violations]
    return []


async def test_crm08_form_fields_are_kept_with_the_chat_and_on_chat_started(conv, tenant):
    form = {"Company size": " 50-99 ", "会社名": "川根商事", "budget_yen": "300万", "empty-one": "  "}
    chat = await conv.start(tenant, fields=form, question="見積もり")
    kept = {"Company size": "50-99", "会社名": "川根商事", "budget_yen": "300万"}  # trimmed, the empty one dropped
    assert dict(chat.fields) == kept
    read = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=auth(tenant, "admin", "root"))
    assert dict(read.fields) == kept
    [started] = await eventually(lambda: conv.events(tenant, "chat_started", chat.id), "chat_started")
    assert dict(started.chat_started.fields) == kept
    plain = await conv.start(tenant)
    assert dict(plain.fields) == {}


@pytest.mark.parametrize(
    "fields",
    [
        {f"field {i}": "x" for i in range(51)},  # too many
        {"": "x"},  # empty name
        {"   ": "x"},  # blank name
        {"n" * 101: "x"},  # name too long
        {"company/size": "x"},  # not a letter, digit, _, space or -
        {"<script>": "x"},
        {"note": "x" * 2001},  # value too long
    ],
)
async def test_crm08_bad_form_fields_are_refused_naming_the_field(conv, tenant, fields):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await conv.start(tenant, visitor="v-refused", fields=fields)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "fields" in err.value.details() and violations(err.value) == ["fields"]
    listed = await conv.stub.ListVisitorChats(
        pb.ListVisitorChatsRequest(visitor_id="v-refused"), metadata=auth(tenant, "admin", "root")
    )
    assert list(listed.chats) == []  # nothing was stored


async def test_crm08_form_fields_at_the_limits_are_taken(conv, tenant):
    fields = {f"f-{i:02d}_{'n' * 90}": "v" * 2000 for i in range(50)}
    chat = await conv.start(tenant, fields=fields)
    assert dict(chat.fields) == fields
