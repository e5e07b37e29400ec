"""PLAT-04: the gateway (Envoy) in front of all five services, each in its own process.

Plain HTTP with JSON (the gRPC-JSON transcoder and the google.api.http annotations) and
gRPC-Web (what a browser speaks; server streams included) through the same port; the JWT
checked at the edge; the visitor's address taken from the connection, never from what the
client claims.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import jwt
import pytest
from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.routing.v1 import routing_pb2 as rt
from kaiwa.visitor.v1 import visitor_pb2 as vis

from tests.e2e.suite import Suite
from tests.fixtures import eventually, token

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def suite():
    async with Suite.start(gateway=True) as running_suite:
        yield running_suite


@pytest.fixture
async def http(suite: Suite):
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=30) as client:
        yield client


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


async def _ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


async def _tenant_with_agent(http: httpx.AsyncClient, tenant: str) -> tuple[dict, dict, dict, str]:
    """An admin sets up a department and an online agent, and a widget key, all over REST."""
    admin = bearer(token(tenant, "admin", "admin@example.com"))
    sales = await _ok(await http.post("/v1/departments", json={"name": "Sales"}, headers=admin))
    agent = await _ok(
        await http.post(
            "/v1/agents",
            json={"email": "aiko@example.com", "name": "Aiko", "departmentIds": [sales["id"]], "maxChats": 2},
            headers=admin,
        )
    )
    as_agent = bearer(token(tenant, "agent", agent["id"]))
    await _ok(await http.post("/v1/agents:setAvailability", json={"availability": "AVAILABILITY_ONLINE"}, headers=as_agent))
    key = await _ok(await http.post("/v1/widgetKeys", json={"label": "site"}, headers=admin))
    return admin, as_agent, sales, key["key"]


async def test_plat04_rest_json_start_chat_and_send(suite: Suite, http: httpx.AsyncClient, tenant):
    admin, as_agent, sales, key = await _tenant_with_agent(http, tenant)

    # The widget trades its public key for a visitor token: no Authorization at all.
    issued = await _ok(await http.post("/v1/visitorTokens", json={"widgetKey": key}))
    as_visitor = bearer(issued["token"])

    chat = await _ok(
        await http.post(
            "/v1/chats",
            json={"channel": "CHANNEL_WEB", "departmentId": sales["id"], "question": "Do you ship to Osaka?"},
            headers=as_visitor,
        )
    )
    assert chat["state"] == "CHAT_STATE_QUEUED"
    position = await _ok(await http.get(f"/v1/chats/{chat['id']}/queuePosition", headers=as_visitor))
    assert position["chatId"] == chat["id"]

    async def offered():
        offers = await _ok(await http.get("/v1/offers", headers=as_agent))
        return chat["id"] in [o["chatId"] for o in offers.get("offers", [])]

    await eventually(offered, "the chat is offered to the online agent", timeout=30)
    await _ok(await http.post(f"/v1/offers/{chat['id']}:accept", json={}, headers=as_agent))

    async def is_open():
        current = await _ok(await http.get(f"/v1/chats/{chat['id']}", headers=as_agent))
        return current["state"] == "CHAT_STATE_OPEN"

    await eventually(is_open, "the chat is open with the agent", timeout=30)
    sent = await _ok(await http.post(f"/v1/chats/{chat['id']}/messages", json={"text": "Hello from REST"}, headers=as_visitor))
    assert sent["text"] == "Hello from REST"
    listed = await _ok(await http.get(f"/v1/chats/{chat['id']}/messages", headers=as_agent))
    assert "Hello from REST" in [m["text"] for m in listed["messages"]]
    await _ok(await http.post(f"/v1/chats/{chat['id']}:end", json={}, headers=admin))


async def test_plat04_jwt_checked_at_the_edge(suite: Suite, http: httpx.AsyncClient, tenant):
    missing = await http.post("/v1/chats", json={"channel": "CHANNEL_WEB"})
    assert missing.status_code == 401, missing.text
    claims = {"tenant": tenant, "role": "admin", "sub": "x", "aud": "kaiwa", "exp": 4102444800}
    forged = jwt.encode(claims, "not-our-secret-but-long-enough-for-hs256")
    refused = await http.get(f"/v1/chats/{uuid.uuid4()}", headers=bearer(forged))
    assert refused.status_code == 401, refused.text
    # gRPC-Web is held to the same rule.
    grpc_web = await http.post(
        "/kaiwa.conversation.v1.ConversationService/GetChat",
        content=_frame(conv.GetChatRequest(chat_id=str(uuid.uuid4()))),
        headers=GRPC_WEB,
    )
    assert grpc_web.status_code == 401


async def test_plat04_rest_error_maps_to_http_status(suite: Suite, http: httpx.AsyncClient, tenant):
    admin = bearer(token(tenant, "admin", "admin@example.com"))
    missing = await http.get(f"/v1/chats/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404, missing.text
    body = missing.json()
    assert body["code"] == 5 and body["message"], body  # NOT_FOUND with the service's message
    bad = await http.post("/v1/visitorTokens", json={})  # INVALID_ARGUMENT -> 400
    assert bad.status_code == 400, bad.text
    assert bad.json()["code"] == 3 and "widget_key" in bad.json()["message"]
    denied = await http.post("/v1/chats", json={"channel": "CHANNEL_WEB"}, headers=admin)  # PERMISSION_DENIED
    assert denied.status_code == 403, denied.text
    unknown = await http.get("/v1/nothing-here", headers=admin)
    assert unknown.status_code == 404


async def test_plat04_cors_preflight(suite: Suite, http: httpx.AsyncClient):
    reply = await http.options(
        "/v1/chats",
        headers={
            "origin": "https://shop.example.com",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert "authorization" in reply.headers["access-control-allow-headers"]


async def test_plat04_visitor_address_is_the_connection_not_x_forwarded_for(suite: Suite, http: httpx.AsyncClient, tenant):
    _, _, _, key = await _tenant_with_agent(http, tenant)
    issued = await _ok(await http.post("/v1/visitorTokens", json={"widgetKey": key}))
    view = await _ok(
        await http.post(
            f"/v1/visitors/{issued['visitorId']}/pageViews",
            json={"url": "https://shop.example.com/", "ip": "198.51.100.1"},
            headers={**bearer(issued["token"]), "x-forwarded-for": "203.0.113.66, 203.0.113.67"},
        )
    )
    assert view["ip"] == "127.0.0.1"


# --- a small gRPC-Web client: length-prefixed frames over a plain HTTP POST --------------

GRPC_WEB = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "accept": "application/grpc-web+proto"}


def _frame(message) -> bytes:
    data = message.SerializeToString()
    return b"\x00" + len(data).to_bytes(4, "big") + data


def _frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Complete frames (flag, payload) taken off the front of `buffer`."""
    out = []
    while len(buffer) >= 5:
        size = int.from_bytes(buffer[1:5], "big")
        if len(buffer) < 5 + size:
            break
        out.append((buffer[0], bytes(buffer[5 : 5 + size])))
        del buffer[: 5 + size]
    return out


def _trailers(payload: bytes) -> dict[str, str]:
    lines = payload.decode().strip().split("\r\n")
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}


async def grpc_web_unary(http: httpx.AsyncClient, method: str, request, reply_type, headers=None):
    response = await http.post(method, content=_frame(request), headers={**GRPC_WEB, **(headers or {})})
    assert response.status_code == 200, response.text
    buffer = bytearray(response.content)
    messages, trailers = [], {}
    for flag, payload in _frames(buffer):
        if flag & 0x80:
            trailers = _trailers(payload)
        else:
            messages.append(reply_type.FromString(payload))
    status = trailers.get("grpc-status", response.headers.get("grpc-status"))
    assert status == "0", (status, trailers, dict(response.headers))
    return messages[0]


async def grpc_web_stream(http: httpx.AsyncClient, method: str, request, reply_type, headers, into: list, until) -> None:
    """Reads a server stream's messages into `into` until `until(into)` holds."""
    async with http.stream("POST", method, content=_frame(request), headers={**GRPC_WEB, **headers}) as response:
        assert response.status_code == 200
        buffer = bytearray()
        async for chunk in response.aiter_raw():
            buffer.extend(chunk)
            for flag, payload in _frames(buffer):
                assert not flag & 0x80, f"the stream ended: {_trailers(payload)}"
                into.append(reply_type.FromString(payload))
            if until(into):
                return


async def test_plat04_grpc_web_unary_and_server_streams(suite: Suite, http: httpx.AsyncClient, tenant):
    _, as_agent, sales, key = await _tenant_with_agent(http, tenant)
    issued = await grpc_web_unary(
        http, "/kaiwa.visitor.v1.VisitorService/IssueVisitorToken", vis.IssueVisitorTokenRequest(widget_key=key), vis.VisitorToken
    )
    as_visitor = bearer(issued.token)

    # The agent follows offers live (StreamOffers) before the visitor starts a chat.
    offers: list = []
    watching_offers = asyncio.create_task(
        grpc_web_stream(
            http,
            "/kaiwa.routing.v1.RoutingService/StreamOffers",
            rt.StreamOffersRequest(),
            rt.OfferUpdate,
            as_agent,
            offers,
            lambda seen: any(u.HasField("offer") for u in seen),
        )
    )
    chat = await grpc_web_unary(
        http,
        "/kaiwa.conversation.v1.ConversationService/StartChat",
        conv.StartChatRequest(channel=conv.CHANNEL_WEB, department_id=sales["id"], question="gRPC-Web?"),
        conv.Chat,
        as_visitor,
    )
    await asyncio.wait_for(watching_offers, 60)
    assert chat.id in [u.offer.chat_id for u in offers if u.HasField("offer")]

    await grpc_web_unary(
        http, "/kaiwa.routing.v1.RoutingService/AcceptChat", rt.AcceptChatRequest(chat_id=chat.id), rt.Assignment, as_agent
    )

    # The visitor follows the chat live (StreamChat) and sees the agent's reply arrive.
    events: list = []
    watching_chat = asyncio.create_task(
        grpc_web_stream(
            http,
            "/kaiwa.conversation.v1.ConversationService/StreamChat",
            conv.StreamChatRequest(chat_id=chat.id),
            conv.ChatEvent,
            as_visitor,
            events,
            lambda seen: any(e.HasField("message") and e.message.text == "Hi over gRPC-Web" for e in seen),
        )
    )

    async def open_for_agent():
        current = await grpc_web_unary(
            http, "/kaiwa.conversation.v1.ConversationService/GetChat", conv.GetChatRequest(chat_id=chat.id), conv.Chat, as_agent
        )
        return current.state == conv.CHAT_STATE_OPEN

    await eventually(open_for_agent, "the chat is open with the agent", timeout=30)
    await grpc_web_unary(
        http,
        "/kaiwa.conversation.v1.ConversationService/SendMessage",
        conv.SendMessageRequest(chat_id=chat.id, text="Hi over gRPC-Web"),
        conv.Message,
        as_agent,
    )
    await asyncio.wait_for(watching_chat, 60)
    assert "Hi over gRPC-Web" in [e.message.text for e in events if e.HasField("message")]
