"""Protobuf <-> domain values (enums by the contracts' `<ENUM>_<NAME>` convention,
through kaiwa_common.protobuf)."""

from __future__ import annotations

from kaiwa.routing.v1 import routing_pb2 as rpb
from kaiwa.visitor.v1 import visitor_pb2 as pb

from kaiwa_common.protobuf import enum_name, enum_value, timestamp, to_datetime

from .domain.model import Action, Block, CrmLink, PageView, TrackingSettings, Visit, VisitContext, Visitor, VisitorSummary
from kaiwa_common.crm_conditions import Condition
from .domain.triggers import Trigger
from .tracking import EventIn


def event_in(e: pb.TrackedEvent) -> EventIn:
    kind = enum_name(pb.TrackedEventKind, e.kind, "kind", default="page_view")
    when = to_datetime(e.occurred_at, e.HasField("occurred_at"))
    if kind == "leave":
        return EventIn("leave", visitor_id=e.leave.visitor_id, page_view_id=e.leave.page_view_id, occurred_at=when)
    return page_view_in(e.page_view, when)


def page_view_in(r: pb.TrackPageViewRequest, when=None) -> EventIn:
    return EventIn(
        "page_view",
        visitor_id=r.visitor_id,
        url=r.url,
        title=r.title,
        referrer=r.referrer,
        user_agent=r.user_agent,
        ip=r.ip,
        language=r.language,
        screen_width=r.screen_width,
        screen_height=r.screen_height,
        occurred_at=when,
    )


def page_view_pb(v: PageView) -> pb.PageView:
    return pb.PageView(
        id=v.id,
        visitor_id=v.visitor_id,
        url=v.url,
        title=v.title,
        referrer=v.referrer,
        user_agent=v.user_agent,
        ip=v.ip,
        landing=v.landing,
        viewed_at=timestamp(v.viewed_at),
        visit_id=v.visit_id,
        time_on_page_seconds=v.time_on_page,
        action=pb.ACTION_KIND_ACCESS if v.landing else pb.ACTION_KIND_NAVIGATE,
    )


def _crm(link: CrmLink | None) -> pb.CrmLink | None:
    return pb.CrmLink(record_id=link.record_id, record_type=link.record_type, owner=link.owner) if link else None


def _context(c: VisitContext) -> dict:
    values = dict(
        referrer=c.referrer,
        search_engine=c.search_engine,
        search_keywords=c.search_keywords,
        campaign=pb.Campaign(**c.campaign.__dict__),
        ip=c.ip,
        client=pb.Client(**c.client.__dict__),
        language=c.language,
        screen_resolution=c.screen,
    )
    if c.location is not None:
        loc = {k: v for k, v in c.location.__dict__.items() if v is not None}
        values["location"] = pb.Location(**loc)
    return values


def summary_pb(s: VisitorSummary) -> pb.VisitorSummary:
    return pb.VisitorSummary(
        id=s.id,
        name=s.name,
        email=s.email,
        lead_score=s.lead_score,
        visitor_type=enum_value(pb.VisitorType, s.visitor_type),
        crm=_crm(s.crm),
        visit_count=s.visit_count,
    )


def _action(a: Action) -> pb.Action:
    return pb.Action(
        kind=enum_value(pb.ActionKind, a.kind),
        title=a.title,
        url=a.url,
        at=timestamp(a.at),
        time_spent_seconds=a.time_spent,
        chat_id=a.chat_id,
    )


def visit_pb(v: Visit) -> pb.Visit:
    return pb.Visit(
        id=v.id,
        visitor_id=v.visitor_id,
        started_at=timestamp(v.started_at),
        last_seen_at=timestamp(v.last_seen_at),
        page_view_count=v.page_view_count,
        landing_url=v.landing_url,
        landing_title=v.landing_title,
        current_url=v.current_url,
        current_title=v.current_title,
        time_spent_seconds=v.time_spent,
        chatted=v.chatted,
        visitor=summary_pb(v.visitor) if v.visitor else None,
        priority=v.priority if v.priority is not None and v.visitor else 0,
        actions=[_action(a) for a in v.actions],
        left_at=timestamp(v.left_at),
        **_context(v.context),
    )


def visitor_pb(v: Visitor) -> pb.Visitor:
    return pb.Visitor(
        id=v.id,
        name=v.name,
        email=v.email,
        visit_count=v.visit_count,
        page_view_count=v.page_view_count,
        first_seen_at=timestamp(v.first_seen_at),
        last_seen_at=timestamp(v.last_seen_at),
        recent_page_views=[page_view_pb(p) for p in v.recent_page_views],
        phone=v.phone,
        lead_score=v.lead_score,
        visitor_type=enum_value(pb.VisitorType, v.visitor_type),
        crm=_crm(v.crm),
        chat_count=v.chat_count,
        time_spent_seconds=v.time_spent,
        identified_at=timestamp(v.identified_at),
        current_visit=visit_pb(v.current_visit) if v.current_visit else None,
    )


def block_pb(b: Block) -> pb.Block:
    return pb.Block(
        id=b.id,
        kind=enum_value(pb.BlockKind, b.kind),
        network=b.network,
        channel=b.channel,
        thread_id=b.thread_id,
        visitor_id=b.visitor_id,
        reason=b.reason,
        blocked_by=b.blocked_by,
        created_at=timestamp(b.created_at),
        unblocked_at=timestamp(b.unblocked_at),
        unblocked_by=b.unblocked_by,
        chat_id=b.chat_id,
    )


def trigger_in(t: pb.Trigger) -> Trigger:
    conditions = tuple(
        Condition(c.field.strip(), enum_name(rpb.Operator, c.op, "conditions.op", default=""), c.value) for c in t.conditions
    )
    return Trigger(
        id=t.id.strip(),
        name=t.name,
        enabled=t.enabled,
        page_pattern=t.page_pattern,
        landing_only=t.landing_only,
        conditions=conditions,
        delay_seconds=t.delay_seconds,
        action=enum_name(pb.TriggerAction, t.action, "action", default=""),
        message=t.message,
        agent_id=t.agent_id,
    )


def trigger_pb(t: Trigger) -> pb.Trigger:
    return pb.Trigger(
        id=t.id,
        name=t.name,
        enabled=t.enabled,
        page_pattern=t.page_pattern,
        landing_only=t.landing_only,
        conditions=[rpb.Condition(field=c.field, op=enum_value(rpb.Operator, c.op), value=c.value) for c in t.conditions],
        delay_seconds=t.delay_seconds,
        action=enum_value(pb.TriggerAction, t.action),
        message=t.message,
        agent_id=t.agent_id,
    )


def settings_pb(s: TrackingSettings) -> pb.TrackingSettings:
    return pb.TrackingSettings(
        visit_timeout_minutes=s.visit_timeout_minutes, time_zone=s.time_zone, top_lead_score=s.top_lead_score
    )
