"""PLAT-02: roles and tokens, against the five services as processes behind the gateway.

- a visitor token on every RPC its policy keeps from visitors, an agent token on every
  admin-only one: PERMISSION_DENIED (the roles come from the services' own policies);
- an agent of the tenant who is not in a chat cannot act in it, nor read its tone (AI-02)
  or have it read as context of a rewrite (AI-01);
- expired, unsigned (`alg: none`), foreign-key, tampered, wrong-audience and expiry-less
  tokens: UNAUTHENTICATED on every RPC of every service, and 401 at the gateway;
- a visitor naming another visitor (its id, its chat) is refused or acts as itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import grpc
import httpx
import jwt
import pytest
from kaiwa.ai_assist.v1 import ai_assist_pb2 as ai
from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.routing.v1 import routing_pb2 as rt
from kaiwa.visitor.v1 import visitor_pb2 as vis

from kaiwa_common.auth import ADMIN, AGENT, AUDIENCE, VISITOR, bearer
from kaiwa_common.config import Settings
from kaiwa_common.interceptor import PUBLIC
from tests.e2e.contracts import allowed_roles, call, methods, request_class
from tests.e2e.suite import Suite
from tests.e2e.tenant_objects import TenantObjects, populate
from tests.e2e.test_plat04_gateway import GRPC_WEB, _frame

pytestmark = pytest.mark.asyncio(loop_scope="session")
DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture(scope="module")
async def suite():
    async with Suite.start(gateway=True) as running_suite:
        yield running_suite


@pytest.fixture(scope="module")
async def objects(suite: Suite) -> TenantObjects:
    return await populate(suite, "t-roles", "roles")


def _guarded():
    """Every RPC that asks for a token."""
    return [(s, d, m) for s, d, m in methods(client_streaming=True) if allowed_roles(s, m) != PUBLIC]


async def _code(suite: Suite, service: str, descriptor, method, request, metadata) -> grpc.StatusCode:
    _, err = await call(suite.channel(service), descriptor, method, request, metadata)
    return err.code() if err is not None else grpc.StatusCode.OK


async def test_plat02_roles_visitors_and_agents_are_refused_what_their_policy_keeps_from_them(suite, objects):
    checked, wrong = {VISITOR: 0, AGENT: 0}, []
    for service, descriptor, method in _guarded():
        for role, metadata in ((VISITOR, objects.visitor), (AGENT, objects.agent)):
            if role in allowed_roles(service, method):
                continue
            code = await _code(suite, service, descriptor, method, request_class(method)(), metadata)
            checked[role] += 1
            if code != DENIED:
                wrong.append((role, method.full_name, code.name))
    print(f"\nrefused by role: visitor on {checked[VISITOR]} RPCs, agent on {checked[AGENT]} admin-only RPCs")
    assert not wrong, wrong
    assert checked[VISITOR] > 60 and checked[AGENT] > 15


async def test_plat02_an_agent_not_in_the_chat_cannot_act_in_it(suite, objects):
    chat_id, outsider = objects.ids["chat"], objects.outsider
    actions = {
        ("conversation", "SendMessage"): conv.SendMessageRequest(chat_id=chat_id, text="intruder"),
        ("conversation", "EndChat"): conv.EndChatRequest(chat_id=chat_id),
        ("conversation", "NotifyTyping"): conv.NotifyTypingRequest(chat_id=chat_id, typing=True),
        ("conversation", "RunCommand"): conv.RunCommandRequest(chat_id=chat_id, text="#e"),
        ("conversation", "CompleteChat"): conv.CompleteChatRequest(chat_id=chat_id),
        ("routing", "AcceptChat"): rt.AcceptChatRequest(chat_id=chat_id),
        ("routing", "TransferChat"): rt.TransferChatRequest(chat_id=chat_id, to_agent_email="other-roles@example.com"),
        ("routing", "InviteAgent"): rt.InviteAgentRequest(chat_id=chat_id, agent_id=objects.ids["outsider"]),
        ("ai_assist", "SuggestTone"): ai.SuggestToneRequest(chat_id=chat_id),
        ("ai_assist", "Rewrite"): ai.RewriteRequest(text="we will check", chat_id=chat_id),  # the chat as LLM context
    }
    wrong = []
    for (service, name), request in actions.items():
        code = await _code(suite, service, _descriptor(service), _method(service, name), request, outsider)
        if code not in (DENIED, grpc.StatusCode.FAILED_PRECONDITION):
            wrong.append((name, code.name))
    assert not wrong, wrong
    tone = actions[("ai_assist", "SuggestTone")]
    own = await _code(suite, "ai_assist", _descriptor("ai_assist"), _method("ai_assist", "SuggestTone"), tone, objects.agent)
    assert own == grpc.StatusCode.OK, "the chat's own agent reads its tone"
    listed = conv.ListMessagesRequest(chat_id=chat_id)
    messages = await _code_and_reply(suite, "conversation", "ListMessages", listed, objects.admin)
    assert "intruder" not in [m.text for m in messages.messages]


def _descriptor(service: str):
    return next(d for s, d, _ in methods() if s == service)


def _method(service: str, name: str):
    return _descriptor(service).methods_by_name[name]


async def _code_and_reply(suite: Suite, service: str, name: str, request, metadata):
    reply, err = await call(suite.channel(service), _descriptor(service), _method(service, name), request, metadata)
    assert err is None, err
    return reply


def _bad_tokens(tenant: str) -> dict[str, str]:
    now, secret = int(time.time()), Settings().jwt_secret
    claims = {"tenant": tenant, "role": ADMIN, "sub": "admin@example.com", "iat": now, "exp": now + 600, "aud": AUDIENCE}
    good = jwt.encode(claims, secret, algorithm="HS256")
    header, _, signature = good.split(".")
    tampered = _b64(json.dumps({**claims, "tenant": "t-someone-else"}).encode())
    return {
        "expired": jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, secret, algorithm="HS256"),
        "unsigned (alg none)": jwt.encode(claims, None, algorithm="none"),
        "signed with another key": jwt.encode(claims, "another-secret-that-is-long-enough-for-hs256", algorithm="HS256"),
        "tampered payload": f"{header}.{tampered}.{signature}",
        "wrong audience": jwt.encode({**claims, "aud": "someone-else"}, secret, algorithm="HS256"),
        "no expiry": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, secret, algorithm="HS256"),
        "not a JWT": "not-a-token",
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _direct_codes(suite: Suite, value: str) -> list[tuple[str, grpc.StatusCode]]:
    async def one(service, descriptor, method):
        return method.full_name, await _code(suite, service, descriptor, method, request_class(method)(), bearer(value))

    return await asyncio.gather(*(one(*m) for m in _guarded()))


async def _gateway_status(http: httpx.AsyncClient, descriptor, method, value: str) -> int:
    """The gateway's HTTP status for a gRPC-Web call with this token."""
    response = await http.post(
        f"/{descriptor.full_name}/{method.name}",
        content=_frame(request_class(method)()),
        headers={**GRPC_WEB, "authorization": f"Bearer {value}"},
    )
    return response.status_code


async def test_plat02_bad_tokens_are_unauthenticated_on_every_rpc_and_at_the_gateway(suite, objects):
    """Every RPC directly; at the gateway, the first guarded RPC of each service (the edge
    checks the token before routing). Envoy answers a token for another audience with 403
    (its jwt_authn's "audience not allowed"), every other bad token with 401."""
    wrong, calls = [], 0
    first_of_service = {s: (d, m) for s, d, m in reversed(_guarded()) if not m.client_streaming}
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=30) as http:
        for kind, value in _bad_tokens(objects.tenant).items():
            for name, code in await _direct_codes(suite, value):
                calls += 1
                if code != grpc.StatusCode.UNAUTHENTICATED:
                    wrong.append((kind, name, code.name))
            for descriptor, method in first_of_service.values():
                status = await _gateway_status(http, descriptor, method, value)
                if status != (403 if kind == "wrong audience" else 401):
                    wrong.append((kind, f"gateway {method.full_name}", status))
    print(
        f"\nbad tokens refused: {calls} direct calls ({len(_guarded())} RPCs, {len(_bad_tokens(''))} kinds), and at the gateway"
    )
    assert not wrong, wrong[:20]


async def test_plat02_a_visitor_cannot_act_as_another_visitor(suite, objects):
    other = await populate(suite, "t-roles", "roles2")  # another visitor of the same tenant, with a chat
    victim_chat, victim = other.ids["chat"], other.ids["visitor"]
    refused = {
        ("conversation", "GetChat"): conv.GetChatRequest(chat_id=victim_chat),
        ("conversation", "SendMessage"): conv.SendMessageRequest(chat_id=victim_chat, text="impostor"),
        ("conversation", "EndChat"): conv.EndChatRequest(chat_id=victim_chat),
        ("conversation", "GetTranscript"): conv.GetTranscriptRequest(chat_id=victim_chat),
        ("conversation", "ListMessages"): conv.ListMessagesRequest(chat_id=victim_chat),
        ("conversation", "StreamChat"): conv.StreamChatRequest(chat_id=victim_chat),
        ("conversation", "NotifyTyping"): conv.NotifyTypingRequest(chat_id=victim_chat, typing=True),
        ("conversation", "UpdateMessageStatus"): conv.UpdateMessageStatusRequest(
            chat_id=victim_chat, seq=1, status=conv.MESSAGE_STATUS_READ
        ),
        ("conversation", "ListVisitorChats"): conv.ListVisitorChatsRequest(visitor_id=victim),
        ("routing", "GetQueuePosition"): rt.GetQueuePositionRequest(chat_id=victim_chat),
        ("routing", "ListMembers"): rt.ListMembersRequest(chat_id=victim_chat),
        ("visitor", "IdentifyVisitor"): vis.IdentifyVisitorRequest(visitor_id=victim, email="impostor@example.com"),
        ("visitor", "TrackPageView"): vis.TrackPageViewRequest(visitor_id=victim, url="https://impostor.example.com/"),
        ("visitor", "TrackLeave"): vis.TrackLeaveRequest(visitor_id=victim),
    }
    wrong = []
    for (service, name), request in refused.items():
        code = await _code(suite, service, _descriptor(service), _method(service, name), request, objects.visitor)
        if code not in (DENIED, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            wrong.append((name, code.name))
    assert not wrong, wrong
    victim_view = await _code_and_reply(suite, "visitor", "GetVisitor", vis.GetVisitorRequest(visitor_id=victim), other.admin)
    assert "impostor" not in str(victim_view)
    messages = await _code_and_reply(
        suite, "conversation", "ListMessages", conv.ListMessagesRequest(chat_id=victim_chat), other.admin
    )
    assert "impostor" not in [m.text for m in messages.messages]
    # Starting a chat in another visitor's name: refused, or the chat is the caller's own.
    request = conv.StartChatRequest(channel=conv.CHANNEL_WEB, department_id=objects.ids["department"], visitor_id=victim)
    started, err = await call(
        suite.channel("conversation"), _descriptor("conversation"), _method("conversation", "StartChat"), request, objects.visitor
    )
    if err is None:
        assert started.visitor_id == objects.ids["visitor"], started
    else:
        assert err.code() in (DENIED, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION), err
