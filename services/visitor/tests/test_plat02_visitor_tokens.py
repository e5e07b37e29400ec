"""PLAT-02 for the visitor service: public widget keys, short-lived visitor tokens, roles and
tenant isolation, through the gRPC API against real PostgreSQL and NATS."""

from __future__ import annotations

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

    # The token works for what a visitor may do, and for nothing else.
    view = await visitors.TrackPageView(pb.TrackPageViewRequest(visitor_id=issued.visitor_id, url=PAGE),
                                        metadata=bearer(issued.token))
    assert view.visitor_id == issued.visitor_id
    assert await status_of(visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=issued.visitor_id),
                                               metadata=bearer(issued.token))) == grpc.StatusCode.PERMISSION_DENIED
    assert await status_of(visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(), metadata=bearer(issued.token))) \
        == grpc.StatusCode.PERMISSION_DENIED


async def test_plat02_returning_visitor_keeps_its_id(visitors, tenant):
    key = (await visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(), metadata=admin(tenant))).key
    first = await visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=key))
    again = await visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=key, visitor_id=first.visitor_id))
    assert again.visitor_id == first.visitor_id
    assert verify_token(Settings(), again.token).sub == first.visitor_id
    # Whatever else a widget's storage holds gets a fresh visitor id.
    for stored in ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1; DROP TABLE visitors"]:
        fresh = await visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=key, visitor_id=stored))
        assert fresh.visitor_id not in (stored, first.visitor_id)
        assert uuid.UUID(fresh.visitor_id).int != 0


async def test_plat02_keys_are_unguessable_and_name_their_tenant_only(visitors, tenant):
    keys = {(await visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(), metadata=admin(tenant))).key
            for _ in range(3)}
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
    assert again.revoked_at == revoked.revoked_at             # revoking twice changes nothing
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
    assert await status_of(visitors.CreateWidgetKey(request, metadata=(("authorization", "Bearer x.y.z"),))) \
        == grpc.StatusCode.UNAUTHENTICATED
    assert await status_of(visitors.CreateWidgetKey(request, metadata=auth(tenant, "agent", "a1"))) \
        == grpc.StatusCode.PERMISSION_DENIED
    code, details = await failure(visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(label="l" * 101),
                                                           metadata=admin(tenant)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "label" in details

    theirs = (await visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(), metadata=admin(f"{tenant}-b"))).key
    for key, code in [("", grpc.StatusCode.INVALID_ARGUMENT), ("nonsense", grpc.StatusCode.INVALID_ARGUMENT),
                      (theirs, grpc.StatusCode.NOT_FOUND)]:
        assert await status_of(visitors.RevokeWidgetKey(pb.RevokeWidgetKeyRequest(key=key), metadata=admin(tenant))) \
            == code
    assert await status_of(visitors.RevokeWidgetKey(pb.RevokeWidgetKeyRequest(key=theirs),
                                                    metadata=auth(f"{tenant}-b", "agent", "a"))) \
        == grpc.StatusCode.PERMISSION_DENIED
    # The other tenant's key still works: nothing was revoked by the failed attempts.
    await visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=theirs))


async def test_plat02_visitors_of_one_tenant_are_invisible_to_another(visitors, tenant):
    visitor_id = str(uuid.uuid4())
    await visitors.TrackPageView(pb.TrackPageViewRequest(visitor_id=visitor_id, url=PAGE),
                                 metadata=auth(tenant, "visitor", visitor_id))
    mine = await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=auth(tenant, "agent", "a"))
    assert mine.page_view_count == 1
    call = visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=auth(f"{tenant}-x", "agent", "a"))
    assert await status_of(call) == grpc.StatusCode.NOT_FOUND
