"""gRPC servicer: protobuf <-> use cases, nothing else. Identity and errors are the
interceptor's (kaiwa_common): use cases raise domain errors, which it maps to status codes."""

from __future__ import annotations

from kaiwa.visitor.v1 import visitor_pb2 as pb
from kaiwa.visitor.v1 import visitor_pb2_grpc

from kaiwa_common.auth import current_identity
from kaiwa_common.errors import InvalidArgument, NotFound, Unauthenticated, parse_uuid
from kaiwa_common.statuses import status_of
from kaiwa_common.protobuf import enum_name, timestamp

from . import blocking, handlers, lists, profiles, settings, streams, tracking, triggers
from .context import Actor, Deps
from .convert import (
    block_pb,
    event_in,
    page_view_in,
    page_view_pb,
    settings_pb,
    trigger_in,
    trigger_pb,
    visit_pb,
    visitor_pb,
)
from .domain import WidgetKey, tenant_of_key, validate_label
from kaiwa_common.addresses import client_address
from .tracking import EventIn


class VisitorApi(visitor_pb2_grpc.VisitorServiceServicer):
    def __init__(self, deps: Deps):
        self.deps = deps
        self.ctx = deps.ctx
        self.settings = deps.settings

    def _client_ip(self, context) -> str:
        forwarded = next((v for k, v in context.invocation_metadata() or () if k == "x-forwarded-for"), "")
        return client_address(context.peer(), forwarded, self.settings.trusted_proxies)

    # --- widget keys and visitor tokens (PLAT-02) -----------------------------------

    async def IssueVisitorToken(self, request: pb.IssueVisitorTokenRequest, context) -> pb.VisitorToken:
        # request.visitor_id is ignored on purpose: an id proves nothing, only the secret does.
        issued = await handlers.issue_visitor_token(
            self.ctx, self.settings, _required(request.widget_key, "widget_key"), request.visitor_secret.strip()
        )
        return pb.VisitorToken(
            token=issued.token,
            visitor_id=issued.visitor_id,
            visitor_secret=issued.visitor_secret,
            expires_at=timestamp(issued.expires_at),
            visitor_secret_expires_at=timestamp(issued.visitor_secret_expires_at),
        )

    async def RevokeVisitorSecret(self, request: pb.RevokeVisitorSecretRequest, context) -> pb.RevokeVisitorSecretResponse:
        revoked = await handlers.revoke_visitor_secret(
            self.ctx, _required(request.widget_key, "widget_key"), _required(request.visitor_secret, "visitor_secret")
        )
        return pb.RevokeVisitorSecretResponse(visitor_id=revoked.visitor_id, revoked_at=timestamp(revoked.revoked_at))

    async def RevokeVisitorSessions(self, request: pb.RevokeVisitorSessionsRequest, context) -> pb.RevokeVisitorSessionsResponse:
        visitor_id = parse_uuid(request.visitor_id.strip(), "visitor_id")
        revoked = await handlers.revoke_visitor_sessions(self.ctx, current_identity().tenant, visitor_id)
        return pb.RevokeVisitorSessionsResponse(revoked_sessions=revoked)

    async def CreateWidgetKey(self, request: pb.CreateWidgetKeyRequest, context) -> pb.WidgetKey:
        key = await handlers.create_widget_key(
            self.ctx, current_identity().tenant, validate_label(request.label), request.request_id
        )
        return _widget_key_to_pb(key)

    async def RevokeWidgetKey(self, request: pb.RevokeWidgetKeyRequest, context) -> pb.WidgetKey:
        key = request.key.strip()
        if not key:
            raise InvalidArgument("key is required")
        try:
            tenant = tenant_of_key(key)
        except Unauthenticated:
            raise InvalidArgument("key is not a widget key") from None
        if tenant != current_identity().tenant:
            raise NotFound("no such widget key in this tenant")
        return _widget_key_to_pb(await handlers.revoke_widget_key(self.ctx, tenant, key))

    # --- tracking (VIS-01, VIS-02) -----------------------------------------------------

    async def TrackPageView(self, request: pb.TrackPageViewRequest, context) -> pb.PageView:
        view = await tracking.track_one(self.deps, Actor.current(), page_view_in(request), self._client_ip(context))
        return page_view_pb(view)

    async def TrackLeave(self, request: pb.TrackLeaveRequest, context) -> pb.PageView:
        event = EventIn("leave", visitor_id=request.visitor_id, page_view_id=request.page_view_id)
        return page_view_pb(await tracking.track_one(self.deps, Actor.current(), event, self._client_ip(context)))

    async def TrackEvents(self, request_iterator, context) -> pb.TrackEventsResponse:
        async def batches():
            async for message in request_iterator:
                yield [event_in(e) for e in message.events]

        outcome = await tracking.track_events(self.deps, Actor.current(), batches(), self._client_ip(context))
        errors = [
            pb.EventError(index=i, code=_status_name(exc), message=exc.message) for i, exc in (outcome.errors or {}).items()
        ]
        return pb.TrackEventsResponse(accepted=outcome.accepted, errors=errors)

    # --- profiles (VIS-03) ---------------------------------------------------------------

    async def GetVisitor(self, request: pb.GetVisitorRequest, context) -> pb.Visitor:
        return visitor_pb(await profiles.get_visitor(self.deps, current_identity().tenant, request.visitor_id))

    async def GetVisit(self, request: pb.GetVisitRequest, context) -> pb.Visit:
        return visit_pb(await profiles.get_visit(self.deps, current_identity().tenant, request.visit_id))

    async def IdentifyVisitor(self, request: pb.IdentifyVisitorRequest, context) -> pb.Visitor:
        source = enum_name(pb.IdentitySource, request.source, "source", default="")
        visitor = await profiles.identify(
            self.deps, Actor.current(), request.visitor_id, request.name, request.email, request.phone, source
        )
        return visitor_pb(visitor)

    # --- lists and live (VIS-04, VIS-07) -----------------------------------------------

    async def ListVisits(self, request: pb.ListVisitsRequest, context) -> pb.ListVisitsResponse:
        which = enum_name(pb.VisitList, request.list, "list", default="all")
        visits, token = await lists.list_visits(
            self.deps, current_identity().tenant, which, request.page_size, request.page_token
        )
        return pb.ListVisitsResponse(visits=[visit_pb(v) for v in visits], next_page_token=token)

    async def ListOnlineVisitors(self, request: pb.ListOnlineVisitorsRequest, context) -> pb.ListVisitsResponse:
        visits = await lists.online_visitors(self.deps, current_identity().tenant, request.window_seconds, request.page_size)
        return pb.ListVisitsResponse(visits=[visit_pb(v) for v in visits])

    async def StreamArrivals(self, request: pb.StreamArrivalsRequest, context):
        async for a in streams.arrivals(self.deps, current_identity().tenant, request.owner):
            yield pb.Arrival(
                kind=pb.ARRIVAL_KIND_ARRIVED if a.kind == "arrived" else pb.ARRIVAL_KIND_NOTIFY,
                visit=visit_pb(a.visit),
                initial=a.initial,
                trigger_id=a.trigger_id,
                message=a.message,
                agent_id=a.agent_id,
            )

    # --- blocking (VIS-05) -------------------------------------------------------------

    async def BlockVisitor(self, request: pb.BlockVisitorRequest, context) -> pb.Block:
        r = request
        made = await blocking.block(self.deps, Actor.current(), r.ip, r.visitor_id, r.channel, r.thread_id, r.reason, r.chat_id)
        return block_pb(made)

    async def UnblockVisitor(self, request: pb.UnblockVisitorRequest, context) -> pb.Block:
        return block_pb(await blocking.unblock(self.deps, Actor.current(), request.block_id))

    async def ListBlocks(self, request: pb.ListBlocksRequest, context) -> pb.ListBlocksResponse:
        blocks, token = await blocking.list_blocks(
            self.deps, current_identity().tenant, request.include_unblocked, request.page_size, request.page_token
        )
        return pb.ListBlocksResponse(blocks=[block_pb(b) for b in blocks], next_page_token=token)

    # --- proactive triggers (VIS-06) ---------------------------------------------------

    async def UpsertTrigger(self, request: pb.Trigger, context) -> pb.Trigger:
        saved = await triggers.upsert_trigger(self.deps, Actor.current(), trigger_in(request), request.request_id)
        return trigger_pb(saved)

    async def ListTriggers(self, request: pb.ListTriggersRequest, context) -> pb.ListTriggersResponse:
        found = await triggers.list_triggers(self.deps, current_identity().tenant)
        return pb.ListTriggersResponse(triggers=[trigger_pb(t) for t in found])

    async def DeleteTrigger(self, request: pb.DeleteTriggerRequest, context) -> pb.DeleteTriggerResponse:
        await triggers.delete_trigger(self.deps, Actor.current(), request.trigger_id)
        return pb.DeleteTriggerResponse()

    async def StreamPrompts(self, request: pb.StreamPromptsRequest, context):
        identity = current_identity()
        async for p in streams.prompts(self.deps, identity.tenant, parse_uuid(identity.sub, "visitor token subject")):
            yield pb.Prompt(
                trigger_id=p.trigger_id, message=p.message, visit_id=p.visit_id, url=p.url, fired_at=timestamp(p.fired_at)
            )

    # --- settings ----------------------------------------------------------------------

    async def GetTrackingSettings(self, request: pb.GetTrackingSettingsRequest, context) -> pb.TrackingSettings:
        return settings_pb(await settings.get_settings(self.deps, current_identity().tenant))

    async def UpdateTrackingSettings(self, request: pb.TrackingSettings, context) -> pb.TrackingSettings:
        r = request
        saved = await settings.update_settings(
            self.deps, current_identity().tenant, r.visit_timeout_minutes, r.time_zone, r.top_lead_score
        )
        return settings_pb(saved)


def _status_name(exc) -> str:
    code = status_of(exc)
    return "INVALID_ARGUMENT" if code == code.INTERNAL else code.name


def _required(value: str, name: str) -> str:
    if not value.strip():
        raise InvalidArgument(f"{name} is required")
    return value.strip()


def _widget_key_to_pb(key: WidgetKey) -> pb.WidgetKey:
    return pb.WidgetKey(key=key.key, label=key.label, created_at=timestamp(key.created_at), revoked_at=timestamp(key.revoked_at))
