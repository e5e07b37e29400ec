"""Widget keys and visitor tokens (PLAT-02): one transaction each. The other use cases
live in one module per capability (tracking, profiles, lists, blocking, triggers,
streams, settings)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from kaiwa_common.app import ServiceContext
from kaiwa_common.auth import mint_token
from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import NotFound, Unauthenticated
from kaiwa_common.idempotency import claim_request, fingerprint_of

from . import store
from .config import VisitorSettings
from .domain import (
    RevokedSession,
    Verdict,
    WidgetKey,
    check_secret_format,
    hash_secret,
    judge_secret,
    new_visitor_secret,
    new_widget_key,
    tenant_of_key,
)

log = logging.getLogger("kaiwa.visitor")


@dataclass(frozen=True)
class VisitorToken:
    token: str
    visitor_id: str
    expires_at: datetime
    visitor_secret: str  # the next refresh credential, shown once
    visitor_secret_expires_at: datetime  # refused if unused until then


async def create_widget_key(ctx: ServiceContext, tenant: str, label: str, request_id: str) -> WidgetKey:
    """A new public key; a retry with the same request id returns the first one."""
    async with unit_of_work(ctx.pool) as conn:
        claim = await claim_request(conn, tenant, "CreateWidgetKey", request_id, fingerprint_of(label))
        if claim.result_id:
            return await store.get_widget_key(conn, tenant, claim.result_id)
        key = await store.insert_widget_key(conn, tenant, new_widget_key(tenant), label)
        await claim.record(conn, key.key)
    return key


async def revoke_widget_key(ctx: ServiceContext, tenant: str, key: str) -> WidgetKey:
    async with unit_of_work(ctx.pool) as conn:
        revoked = await store.revoke_widget_key(conn, tenant, key)
    if revoked is None:
        raise NotFound("no such widget key in this tenant")
    return revoked


async def _tenant_of(ctx: ServiceContext, widget_key: str, *, active: bool) -> str:
    """The tenant of a known widget key (an active one when `active`), else Unauthenticated."""
    tenant = tenant_of_key(widget_key)
    async with ctx.pool.acquire() as conn:
        key = await store.get_widget_key(conn, tenant, widget_key)
    if key is None:
        raise Unauthenticated("unknown widget key")
    if active and key.revoked_at is not None:
        raise Unauthenticated("widget key has been revoked; ask the site's admin for the current one")
    return tenant


async def issue_visitor_token(
    ctx: ServiceContext, settings: VisitorSettings, widget_key: str, visitor_secret: str
) -> VisitorToken:
    """PLAT-02: a widget key alone starts a new visitor; a returning visitor proves itself
    with its secret, which is rotated (the rules: domain/secrets.py)."""
    tenant = await _tenant_of(ctx, widget_key, active=True)
    if not visitor_secret:
        return await _new_visitor(ctx, settings, tenant, widget_key)
    return await _returning_visitor(ctx, settings, tenant, widget_key, check_secret_format(visitor_secret))


async def _new_visitor(ctx: ServiceContext, settings: VisitorSettings, tenant: str, widget_key: str) -> VisitorToken:
    secret = new_visitor_secret()
    async with unit_of_work(ctx.pool) as conn:
        visitor_id, issued_at = await store.start_session(conn, tenant, widget_key, hash_secret(secret))
    return _visitor_token(ctx, settings, tenant, visitor_id, secret, issued_at)


async def _returning_visitor(
    ctx: ServiceContext, settings: VisitorSettings, tenant: str, widget_key: str, presented: str
) -> VisitorToken:
    secret = new_visitor_secret()
    async with unit_of_work(ctx.pool) as conn:
        stored = await store.lock_secret(conn, tenant, hash_secret(presented))
        verdict = judge_secret(stored, settings.secret_idle_lifetime)
        if verdict is Verdict.REUSED:  # committed before the refusal: the copy is dead too
            await store.revoke_session(conn, tenant, stored.session_id, "reuse")
        elif verdict is Verdict.VALID:
            issued_at = await store.rotate_secret(conn, tenant, stored, hash_secret(secret), widget_key)
    if verdict is Verdict.REUSED:
        log.warning(
            "visitor secret reused: session revoked",
            extra={"fields": {"tenant": tenant, "visitor_id": stored.visitor_id, "session_id": stored.session_id}},
        )
    if verdict is not Verdict.VALID:
        raise Unauthenticated(verdict.value)
    return _visitor_token(ctx, settings, tenant, stored.visitor_id, secret, issued_at)


def _visitor_token(
    ctx: ServiceContext, settings: VisitorSettings, tenant: str, visitor_id: str, secret: str, issued_at: datetime
) -> VisitorToken:
    expires_at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=settings.token_ttl)
    token = mint_token(ctx.settings, tenant, "visitor", visitor_id, ttl_seconds=settings.token_ttl)
    return VisitorToken(
        token=token,
        visitor_id=visitor_id,
        expires_at=expires_at,
        visitor_secret=secret,
        visitor_secret_expires_at=issued_at + settings.secret_idle_lifetime,
    )


async def revoke_visitor_secret(ctx: ServiceContext, widget_key: str, visitor_secret: str) -> RevokedSession:
    """The widget's logout: the session of this secret (any of its secrets) is revoked."""
    tenant = await _tenant_of(ctx, widget_key, active=False)
    secret_hash = hash_secret(check_secret_format(visitor_secret))
    async with unit_of_work(ctx.pool) as conn:
        revoked = await store.revoke_session_of_secret(conn, tenant, secret_hash, "logout")
    if revoked is None:
        raise Unauthenticated("unknown visitor secret (none like it was issued in this tenant)")
    return revoked


async def revoke_visitor_sessions(ctx: ServiceContext, tenant: str, visitor_id: str) -> int:
    """An admin ends every session of a visitor: none of its secrets works any more."""
    async with unit_of_work(ctx.pool) as conn:
        revoked = await store.revoke_visitor_sessions(conn, tenant, visitor_id, "admin")
    if revoked is None:
        raise NotFound(f"visitor {visitor_id} not found")
    return revoked
