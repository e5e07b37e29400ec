"""PLAT-02: a returning visitor proves who it is with a rotating secret (never its id alone):
rotation, reuse detection, logout, admin revocation, widget-key revocation, idle expiry and
tenant isolation, through the gRPC API against real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
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


async def new_key(visitors, tenant: str) -> str:
    return (await visitors.CreateWidgetKey(pb.CreateWidgetKeyRequest(), metadata=auth(tenant, "admin", "a"))).key


def issue(visitors, key: str, secret: str = "", visitor_id: str = ""):
    return visitors.IssueVisitorToken(pb.IssueVisitorTokenRequest(widget_key=key, visitor_secret=secret, visitor_id=visitor_id))


async def refused(call) -> str:
    """The details of a call refused as UNAUTHENTICATED."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, err.value.details()
    return err.value.details()


async def test_plat02_returning_visitor_proves_secret_and_rotates(visitors, tenant):
    key = await new_key(visitors, tenant)
    first = await issue(visitors, key)
    second = await issue(visitors, key, first.visitor_secret)
    third = await issue(visitors, key, second.visitor_secret, visitor_id=str(uuid.uuid4()))  # the id changes nothing

    assert first.visitor_id == second.visitor_id == third.visitor_id
    assert len({first.visitor_secret, second.visitor_secret, third.visitor_secret}) == 3
    assert verify_token(Settings(), third.token).sub == first.visitor_id
    assert third.visitor_secret_expires_at.seconds >= first.visitor_secret_expires_at.seconds
    view = await visitors.TrackPageView(pb.TrackPageViewRequest(url=PAGE), metadata=bearer(third.token))
    assert view.visitor_id == first.visitor_id

    # Each secret works once; leading or trailing blanks from the widget's storage are ignored.
    fourth = await issue(visitors, key, f"  {third.visitor_secret}\n")
    assert fourth.visitor_id == first.visitor_id


async def test_plat02_reused_visitor_secret_revokes_family(visitors, tenant):
    key = await new_key(visitors, tenant)
    neighbour = await issue(visitors, key)  # another visitor: must not be touched
    victim = await issue(visitors, key)

    # A thief copied the victim's secret and refreshes first: it gets the next secret...
    thief = await issue(visitors, key, victim.visitor_secret)
    assert thief.visitor_id == victim.visitor_id
    # ...then the victim presents the copy it still holds: reuse. The session is revoked.
    details = await refused(issue(visitors, key, victim.visitor_secret))
    assert "already used" in details and "revoked" in details
    # The thief's newer secret died with it, and a second reuse is refused as revoked.
    assert "revoked" in await refused(issue(visitors, key, thief.visitor_secret))
    assert "revoked" in await refused(issue(visitors, key, victim.visitor_secret))

    # The widget starts over with the key alone: a new visitor; the neighbour is unaffected.
    fresh = await issue(visitors, key)
    assert fresh.visitor_id != victim.visitor_id
    assert (await issue(visitors, key, neighbour.visitor_secret)).visitor_id == neighbour.visitor_id


async def test_plat02_concurrent_refreshes_with_one_secret_rotate_it_once(visitors, tenant):
    key = await new_key(visitors, tenant)
    first = await issue(visitors, key)
    results = await asyncio.gather(*(issue(visitors, key, first.visitor_secret) for _ in range(6)), return_exceptions=True)
    issued = [r for r in results if isinstance(r, pb.VisitorToken)]
    failed = [r for r in results if not isinstance(r, pb.VisitorToken)]
    assert len(issued) == 1
    assert {f.code() for f in failed} == {grpc.StatusCode.UNAUTHENTICATED}
    # Two holders of one secret cannot be told apart from a theft: the session is gone.
    assert "revoked" in await refused(issue(visitors, key, issued[0].visitor_secret))


async def test_plat02_other_tenant_secret_refused(visitors, tenant):
    mine, theirs = await new_key(visitors, tenant), await new_key(visitors, f"{tenant}-other")
    visitor = await issue(visitors, mine)

    # This tenant's secret with another tenant's key: unknown there (lookups never cross tenants).
    assert "unknown visitor secret" in await refused(issue(visitors, theirs, visitor.visitor_secret))
    call = visitors.RevokeVisitorSecret(pb.RevokeVisitorSecretRequest(widget_key=theirs, visitor_secret=visitor.visitor_secret))
    assert "unknown visitor secret" in await refused(call)
    call = visitors.RevokeVisitorSessions(
        pb.RevokeVisitorSessionsRequest(visitor_id=visitor.visitor_id), metadata=auth(f"{tenant}-other", "admin", "a")
    )
    assert await status_of(call) == grpc.StatusCode.NOT_FOUND

    # None of that touched it: the secret still works at home, once.
    again = await issue(visitors, mine, visitor.visitor_secret)
    assert again.visitor_id == visitor.visitor_id
    assert verify_token(Settings(), again.token).tenant == tenant


async def test_plat02_visitor_secret_bad_input(visitors, tenant):
    key = await new_key(visitors, tenant)
    real = await issue(visitors, key)
    for secret, words in [
        ("not-a-secret", "not valid"),
        ("'; DROP TABLE visitor_secrets; --", "not valid"),
        ("vs." + "日本語" * 15, "not valid"),
        ("vs.\u202e" + "A" * 43, "not valid"),
        ("vs." + "A" * 42, "not valid"),
        ("vs." + "A" * 500, "not valid"),
        (real.visitor_secret + "\x01", "not valid"),
        (key, "not valid"),  # the public key is no secret
        (real.token, "not valid"),  # nor is the access token
        (real.visitor_id, "not valid"),
        ("vs." + "A" * 43, "unknown visitor secret"),  # well-formed, never issued
        (real.visitor_secret[:-1] + ("A" if real.visitor_secret[-1] != "A" else "B"), "unknown visitor secret"),
    ]:
        details = await refused(issue(visitors, key, secret))
        assert words in details and "without it to start a new visitor" in details, (secret, details)

    # Empty or blank: no secret, so a new visitor.
    for blank in ["", "   "]:
        assert (await issue(visitors, key, blank)).visitor_id != real.visitor_id
    # A secret without a (valid) widget key is refused before the secret is looked at.
    for widget_key, code in [
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        (" ", grpc.StatusCode.INVALID_ARGUMENT),
        ("wk.bad", grpc.StatusCode.UNAUTHENTICATED),
        (key[:-4] + "AAAA", grpc.StatusCode.UNAUTHENTICATED),
    ]:
        assert await status_of(issue(visitors, widget_key, real.visitor_secret)) == code
    # None of the refusals used the real secret up.
    assert (await issue(visitors, key, real.visitor_secret)).visitor_id == real.visitor_id


async def test_plat02_visitor_logs_out_with_its_secret(visitors, tenant):
    key = await new_key(visitors, tenant)
    first = await issue(visitors, key)
    current = await issue(visitors, key, first.visitor_secret)

    logout = pb.RevokeVisitorSecretRequest(widget_key=key, visitor_secret=current.visitor_secret)
    revoked = await visitors.RevokeVisitorSecret(logout)  # no authorization: the secret is enough
    assert revoked.visitor_id == first.visitor_id and revoked.HasField("revoked_at")
    assert (await visitors.RevokeVisitorSecret(logout)).revoked_at == revoked.revoked_at  # idempotent
    earlier = pb.RevokeVisitorSecretRequest(widget_key=key, visitor_secret=first.visitor_secret)
    assert (await visitors.RevokeVisitorSecret(earlier)).revoked_at == revoked.revoked_at  # any secret of the session
    assert "revoked" in await refused(issue(visitors, key, current.visitor_secret))

    for widget_key, secret, code in [
        ("", current.visitor_secret, grpc.StatusCode.INVALID_ARGUMENT),
        (key, "", grpc.StatusCode.INVALID_ARGUMENT),
        (key, "  ", grpc.StatusCode.INVALID_ARGUMENT),
        (key, "vs.nope", grpc.StatusCode.UNAUTHENTICATED),
        (key, "vs." + "B" * 43, grpc.StatusCode.UNAUTHENTICATED),
        ("wk.x.y", current.visitor_secret, grpc.StatusCode.UNAUTHENTICATED),
    ]:
        call = visitors.RevokeVisitorSecret(pb.RevokeVisitorSecretRequest(widget_key=widget_key, visitor_secret=secret))
        assert await status_of(call) == code, (widget_key, secret)


async def test_plat02_admin_revokes_every_session_of_a_visitor(visitors, tenant):
    key = await new_key(visitors, tenant)
    target, bystander = await issue(visitors, key), await issue(visitors, key)
    request = pb.RevokeVisitorSessionsRequest(visitor_id=target.visitor_id)

    for metadata in [auth(tenant, "agent", "a"), auth(tenant, "visitor", target.visitor_id), bearer(target.token)]:
        assert await status_of(visitors.RevokeVisitorSessions(request, metadata=metadata)) == grpc.StatusCode.PERMISSION_DENIED
    assert await status_of(visitors.RevokeVisitorSessions(request)) == grpc.StatusCode.UNAUTHENTICATED

    admin = auth(tenant, "admin", "a")
    assert (await visitors.RevokeVisitorSessions(request, metadata=admin)).revoked_sessions == 1
    assert (await visitors.RevokeVisitorSessions(request, metadata=admin)).revoked_sessions == 0
    assert "revoked" in await refused(issue(visitors, key, target.visitor_secret))
    assert (await issue(visitors, key, bystander.visitor_secret)).visitor_id == bystander.visitor_id

    for visitor_id, code in [
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("v-1", grpc.StatusCode.INVALID_ARGUMENT),
        ("'; DROP TABLE visitors; --", grpc.StatusCode.INVALID_ARGUMENT),
        (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
    ]:
        call = visitors.RevokeVisitorSessions(pb.RevokeVisitorSessionsRequest(visitor_id=visitor_id), metadata=admin)
        assert await status_of(call) == code, visitor_id


async def test_plat02_revoked_widget_key_ends_its_visitor_secrets(visitors, tenant):
    admin = auth(tenant, "admin", "a")
    old, new = await new_key(visitors, tenant), await new_key(visitors, tenant)
    stayed, moved = await issue(visitors, old), await issue(visitors, old)
    # The site switches keys: a visitor who comes back meanwhile moves to the new key.
    moved = await issue(visitors, new, moved.visitor_secret)

    await visitors.RevokeWidgetKey(pb.RevokeWidgetKeyRequest(key=old), metadata=admin)
    assert "widget key has been revoked" in await refused(issue(visitors, old, stayed.visitor_secret))
    assert "widget key that has been revoked" in await refused(issue(visitors, new, stayed.visitor_secret))
    again = await issue(visitors, new, moved.visitor_secret)
    assert again.visitor_id == moved.visitor_id
    # Logging out still works with a revoked key: it only ever takes access away.
    logout = pb.RevokeVisitorSecretRequest(widget_key=old, visitor_secret=again.visitor_secret)
    assert (await visitors.RevokeVisitorSecret(logout)).visitor_id == moved.visitor_id


async def test_plat02_idle_visitor_secret_expires(tenant, monkeypatch):
    # The rule is "180 days unused"; a 2-second lifetime exercises it quickly.
    monkeypatch.setenv("KAIWA_VISITOR_SECRET_IDLE_TTL", "2")
    async with running(SPEC) as runner, channel_to(runner) as channel:
        visitors = VisitorServiceStub(channel)
        key = await new_key(visitors, tenant)
        idle, busy = await issue(visitors, key), await issue(visitors, key)
        assert idle.visitor_secret_expires_at.seconds <= time.time() + 3
        await asyncio.sleep(1.2)
        busy = await issue(visitors, key, busy.visitor_secret)  # each use starts the clock again
        await asyncio.sleep(1.2)
        assert "expired" in await refused(issue(visitors, key, idle.visitor_secret))
        assert (await issue(visitors, key, busy.visitor_secret)).visitor_id == busy.visitor_id
