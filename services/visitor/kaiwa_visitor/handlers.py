"""Use cases of the visitor service: one transaction each, events through the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from kaiwa.events.v1.visitor_pb2 import PageViewed

from kaiwa_common.app import ServiceContext
from kaiwa_common.auth import mint_token
from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import NotFound, Unauthenticated

from . import store
from .config import VisitorSettings
from .domain import (PageView, PageViewInput, Visitor, WidgetKey, new_widget_key, starts_new_visit,
                     tenant_of_key, visitor_id_for)


@dataclass(frozen=True)
class VisitorToken:
    token: str
    visitor_id: str
    expires_at: datetime


async def create_widget_key(ctx: ServiceContext, tenant: str, label: str) -> WidgetKey:
    async with unit_of_work(ctx.pool) as conn:
        return await store.insert_widget_key(conn, tenant, new_widget_key(tenant), label)


async def revoke_widget_key(ctx: ServiceContext, tenant: str, key: str) -> WidgetKey:
    async with unit_of_work(ctx.pool) as conn:
        revoked = await store.revoke_widget_key(conn, tenant, key)
    if revoked is None:
        raise NotFound("no such widget key in this tenant")
    return revoked


async def issue_visitor_token(ctx: ServiceContext, settings: VisitorSettings, widget_key: str,
                              visitor_id: str) -> VisitorToken:
    """PLAT-02: a public widget key buys a short-lived token for one (new or returning) visitor."""
    tenant = tenant_of_key(widget_key)
    async with ctx.pool.acquire() as conn:
        key = await store.get_widget_key(conn, tenant, widget_key)
    if key is None:
        raise Unauthenticated("unknown widget key")
    if key.revoked_at is not None:
        raise Unauthenticated("widget key has been revoked; ask the site's admin for the current one")
    visitor_id = visitor_id_for(visitor_id)
    expires_at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=settings.token_ttl)
    token = mint_token(ctx.settings, tenant, "visitor", visitor_id, ttl_seconds=settings.token_ttl)
    return VisitorToken(token=token, visitor_id=visitor_id, expires_at=expires_at)


async def track_page_view(ctx: ServiceContext, settings: VisitorSettings, tenant: str,
                          view: PageViewInput) -> PageView:
    """VIS-01: store the page view; the first one of a visit is its landing page."""
    async with unit_of_work(ctx.pool) as conn:
        visitor = await store.lock_visitor(conn, tenant, view.visitor_id)
        now = visitor["now"]
        landing = starts_new_visit(visitor["last_seen_at"], now, settings.visit_timeout)
        if landing:
            visit_id = await store.start_visit(conn, tenant, view.visitor_id, now)
        else:
            visit_id = str(visitor["current_visit_id"])
        page_view = await store.add_page_view(conn, tenant, visit_id, view, landing=landing, now=now)
        await ctx.outbox.add(conn, tenant, PageViewed(
            visitor_id=page_view.visitor_id, page_view_id=page_view.id, url=page_view.url, title=page_view.title,
            referrer=page_view.referrer, visit_id=visit_id, landing=landing))
    return page_view


async def get_visitor(ctx: ServiceContext, settings: VisitorSettings, tenant: str, visitor_id: str) -> Visitor:
    async with ctx.pool.acquire() as conn:
        visitor = await store.get_visitor(conn, tenant, visitor_id, settings.recent_page_views)
    if visitor is None:
        raise NotFound(f"visitor {visitor_id} not found")
    return visitor

