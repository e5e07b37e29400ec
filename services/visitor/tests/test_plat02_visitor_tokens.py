"""PLAT-02 for the visitor service: public widget keys, short-lived visitor tokens, roles and
tenant isolation, through the gRPC API against real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid

import grpc
import pytest
from kaiwa.visitor.v1 import visitor_pb2 as pb
from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

from kaiwa_common.auth import bearer, verify_token
from kaiwa_common.config import Settings
from kaiwa_visitor.main import SPEC
from tests.fixtures import auth, channel_to, running, status_of

PAGE = "https://shop.example.co.jp/"


@pytest.fixture(scope="module")
async def visitors():
    async with running(SPEC) as runner, channel_to(runner) as channel:
        yield VisitorServiceStub(channel)


def admin(tenant: str):
    return auth(tenant, "admin", "admin-1")


async def failure(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details()


async def test_plat02_widget_key_buys_a_short_lived_visitor_token(visitors, tenant):
    key = await visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(label="corporate site"), metadata=admin(tenant))
    assert key.label == "corporate site"
    assert key.created_at.seconds > 0 and not key.HasField("revoked_at")

    issued = await visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=key.key))  # no authorization
    identity = verify_token(Settings(), issued.token)
    assert (identity.tenant, identity.role, identity.sub) == (tenant, "visitor", issued.visitor_id)
    assert uuid.UUID(issued.visitor_id)
    lifetime = issued.expires_at.seconds - time.time()
    assert 3000 < lifetime <= 3600
    # With it, a secret to come back with: 256 random bits, valid for 180 idle days.
    assert issued.visitor_secret.startswith("vs.") and len(issued.visitor_secret) >= 46
    assert abs(issued.visitor_secret_expires_at.seconds - time.time() - 180 * 86400) < 60

    # The token works for what a visitor may do, and for nothing else.
    view = await visitors.TrackPageView(
        pb.TrackPageViewRequest(visitor_id=issued.visitor_id, url=PAGE), metadata=bearer(issued.token)
    )
    assert view.visitor_id == issued.visitor_id
    assert (
        await status_of(visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=issued.visitor_id), metadata=bearer(issued.token)))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await status_of(visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(), metadata=bearer(issued.token)))
        == grpc.StatusCode.PERMISSION_DENIED
    )


async def test_plat02_visitor_id_alone_starts_a_new_visitor(visitors, tenant):
    key = (await visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(), metadata=admin(tenant))).key
    victim = await visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=key))
    await visitors.TrackPageView(pb.TrackPageViewRequest(url=PAGE), metadata=bearer(victim.token))

    # Anyone can read the public key from the site's HTML and may have seen the victim's
    # id: the id alone buys a token for a new visitor, never for the victim.
    for stored in [
        victim.visitor_id,
        victim.visitor_id.upper(),
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
        "1; DROP TABLE visitors",
        " ",
        "",
    ]:
        fresh = await visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=key, visitor_id=stored))
        assert fresh.visitor_id.lower() not in (stored.lower(), victim.visitor_id)
        assert uuid.UUID(fresh.visitor_id).int != 0
        assert verify_token(Settings(), fresh.token).sub == fresh.visitor_id
        assert fresh.visitor_secret != victim.visitor_secret
        call = visitors.TrackPageView(
            pb.TrackPageViewRequest(visitor_id=victim.visitor_id, url=PAGE), metadata=bearer(fresh.token)
        )
        assert await status_of(call) == grpc.StatusCode.PERMISSION_DENIED

    # The victim's history holds its own page view only, and its secret still works.
    seen = await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=victim.visitor_id), metadata=auth(tenant, "agent", "a"))
    assert seen.page_view_count == 1
    again = await visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=key, visitor_secret=victim.visitor_secret))
    assert again.visitor_id == victim.visitor_id


async def test_plat02_keys_are_unguessable_and_name_their_tenant_only(visitors, tenant):
    keys = {(await visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(), metadata=admin(tenant))).key for _ in range(3)}
    assert len(keys) == 3
    for key in keys:
        assert len(key.rsplit(".", 1)[1]) >= 32

    # A key of this tenant with another tenant's name in it is unknown there: no lookup crosses tenants.
    other = f"{tenant}-other"
    await visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(), metadata=admin(other))
    prefix, _, secret = next(iter(keys)).split(".")
    forged = f"{prefix}.{base64.urlsafe_b64encode(other.encode()).decode().rstrip('=')}.{secret}"
    code, details = await failure(visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=forged)))
    assert (code, details) == (grpc.StatusCode.UNAUTHENTICATED, "unknown widget key")


async def test_plat02_revoked_key_issues_no_more_tokens(visitors, tenant):
    key = (await visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(label="old site"), metadata=admin(tenant))).key
    revoked = await visitors.RevokeWidgetKey(pb.RevokeWidgetKeyRequest(key=key), metadata=admin(tenant))
    assert revoked.HasField("revoked_at") and revoked.label == "old site"
    again = await visitors.RevokeWidgetKey(pb.RevokeWidgetKeyRequest(key=key), metadata=admin(tenant))
    assert again.revoked_at == revoked.revoked_at  # revoking twice changes nothing
    code, details = await failure(visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=key)))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "revoked" in details


async def test_plat02_issue_visitor_token_bad_input(visitors, tenant):
    real = (await visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(), metadata=admin(tenant))).key
    unknown = real.rsplit(".", 1)[0] + "." + "A" * 32
    for widget_key, code, words in [
        ("", grpc.StatusCode.INVALID_ARGUMENT, "widget_key is required"),
        ("   ", grpc.StatusCode.INVALID_ARGUMENT, "widget_key is required"),
        ("hello", grpc.StatusCode.UNAUTHENTICATED, "widget key is not valid"),
        ("wk.!!!.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", grpc.StatusCode.UNAUTHENTICATED, "widget key is not valid"),
        ("wk." + "A" * 600, grpc.StatusCode.UNAUTHENTICATED, "widget key is not valid"),
        ("wk.日本語.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", grpc.StatusCode.UNAUTHENTICATED, "widget key is not valid"),
        (unknown, grpc.StatusCode.UNAUTHENTICATED, "unknown widget key"),
    ]:
        got, details = await failure(visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=widget_key)))
        assert got == code, widget_key
        assert words in details, details


async def test_plat02_widget_key_admin_calls_bad_input_and_roles(visitors, tenant):
    request = pb.CreateWidgetKeyRequest(label="x")
    assert await status_of(visitors.CreateWidgetKey(request)) == grpc.StatusCode.UNAUTHENTICATED
    assert (
        await status_of(visitors.CreateWidgetKey(request, metadata=(("authorization", "Bearer x.y.z"),)))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    assert (
        await status_of(visitors.CreateWidgetKey(request, metadata=auth(tenant, "agent", "a1")))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    code, details = await failure(visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(label="l" * 101), metadata=admin(tenant)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "label" in details

    theirs = (await visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(), metadata=admin(f"{tenant}-b"))).key
    for key, code in [
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("nonsense", grpc.StatusCode.INVALID_ARGUMENT),
        (theirs, grpc.StatusCode.NOT_FOUND),
    ]:
        assert await status_of(visitors.RevokeWidgetKey(pb.RevokeWidgetKeyRequest(key=key), metadata=admin(tenant))) == code
    assert (
        await status_of(
            visitors.RevokeWidgetKey(pb.RevokeWidgetKeyRequest(key=theirs), metadata=auth(f"{tenant}-b", "agent", "a"))
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    # The other tenant's key still works: nothing was revoked by the failed attempts.
    await visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=theirs))


async def test_plat02_visitors_of_one_tenant_are_invisible_to_another(visitors, tenant):
    visitor_id = str(uuid.uuid4())
    await visitors.TrackPageView(
        pb.TrackPageViewRequest(visitor_id=visitor_id, url=PAGE), metadata=auth(tenant, "visitor", visitor_id)
    )
    mine = await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=auth(tenant, "agent", "a"))
    assert mine.page_view_count == 1
    call = visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=auth(f"{tenant}-x", "agent", "a"))
    assert await status_of(call) == grpc.StatusCode.NOT_FOUND


async def test_plat02_create_widget_key_retry_with_request_id_returns_the_first_key(visitors, tenant):
    def create(label: str, request_id: str, who: str = tenant):
        return visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(label=label, request_id=request_id), metadata=admin(who))

    first = await create("shop", "req-1")
    retried = await create("shop", "req-1")
    assert retried == first
    assert (await create("shop", "req-2")).key != first.key  # another request, another key
    without_id = {(await create("shop", "")).key for _ in range(2)}  # no id: no dedupe
    assert len(without_id) == 2 and first.key not in without_id

    # Concurrent retries of one request make one key.
    keys = await asyncio.gather(*(create("blog", "req-3") for _ in range(8)))
    assert len({k.key for k in keys}) == 1

    # The retry reports the key as it is now; the first key is never replaced by a new one.
    await visitors.RevokeWidgetKey(pb.RevokeWidgetKeyRequest(key=first.key), metadata=admin(tenant))
    late = await create("shop", "req-1")
    assert late.key == first.key and late.HasField("revoked_at")

    # Request ids are the tenant's own: another tenant's same id makes its own key.
    theirs = await create("shop", "req-1", who=f"{tenant}-b")
    assert theirs.key != first.key and base64.urlsafe_b64encode(f"{tenant}-b".encode()).decode().rstrip("=") in theirs.key

    code, details = await failure(create("another label", "req-1"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in details
    code, details = await failure(create("shop", "r" * 129))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in details
