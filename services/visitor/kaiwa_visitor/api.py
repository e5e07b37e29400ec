"""gRPC servicer: protobuf <-> domain. Identity and errors are handled by the interceptor."""

from __future__ import annotations

import ipaddress

from kaiwa.visitor.v1 import visitor_pb2 as pb
from kaiwa.visitor.v1 import visitor_pb2_grpc

from kaiwa_common.app import ServiceContext
from kaiwa_common.auth import current_identity
from kaiwa_common.errors import InvalidArgument, NotFound, Unauthenticated, parse_uuid

from . import handlers
from .config import VisitorSettings
from .domain import PageView, Visitor, WidgetKey, check_may_track, tenant_of_key, validate_label, validate_page_view


class VisitorApi(visitor_pb2_grpc.VisitorServiceServicer):
    def __init__(self, ctx: ServiceContext, settings: VisitorSettings):
        self.ctx = ctx
        self.settings = settings

    async def IssueVisitorToken(self, request: pb.IssueVisitorTokenRequest, context) -> pb.VisitorToken:
        # request.visitor_id is ignored on purpose: an id proves nothing, only the secret does.
        issued = await handlers.issue_visitor_token(
            self.ctx, self.settings, _required(request.widget_key, "widget_key"), request.visitor_secret.strip()
        )
        response = pb.VisitorToken(token=issued.token, visitor_id=issued.visitor_id, visitor_secret=issued.visitor_secret)
        response.expires_at.FromDatetime(issued.expires_at)
        response.visitor_secret_expires_at.FromDatetime(issued.visitor_secret_expires_at)
        return response

    async def RevokeVisitorSecret(self, request: pb.RevokeVisitorSecretRequest, context) -> pb.RevokeVisitorSecretResponse:
        revoked = await handlers.revoke_visitor_secret(
            self.ctx, _required(request.widget_key, "widget_key"), _required(request.visitor_secret, "visitor_secret")
        )
        response = pb.RevokeVisitorSecretResponse(visitor_id=revoked.visitor_id)
        response.revoked_at.FromDatetime(revoked.revoked_at)
        return response

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

    async def TrackPageView(self, request: pb.TrackPageViewRequest, context) -> pb.PageView:
        identity = current_identity()
        # A visitor's widget may leave the id out: the token says who it is.
        raw_id = request.visitor_id or (identity.sub if identity.role == "visitor" else "")
        visitor_id = parse_uuid(raw_id, "visitor_id")
        check_may_track(identity.role, identity.sub, visitor_id)
        ip = request.ip or (_peer_ip(context.peer()) if identity.role == "visitor" else "")
        view = validate_page_view(
            visitor_id=visitor_id,
            url=request.url,
            title=request.title,
            referrer=request.referrer,
            user_agent=request.user_agent,
            ip=ip,
        )
        page_view = await handlers.track_page_view(self.ctx, self.settings, identity.tenant, view)
        return _page_view_to_pb(page_view)

    async def GetVisitor(self, request: pb.GetVisitorRequest, context) -> pb.Visitor:
        visitor_id = parse_uuid(request.visitor_id, "visitor_id")
        visitor = await handlers.get_visitor(self.ctx, self.settings, current_identity().tenant, visitor_id)
        return _visitor_to_pb(visitor)


def _required(value: str, name: str) -> str:
    if not value.strip():
        raise InvalidArgument(f"{name} is required")
    return value.strip()


def _peer_ip(peer: str | None) -> str:
    """The caller's address from grpc's peer string ("ipv4:1.2.3.4:5678", "ipv6:[::1]:5678")."""
    if not peer or not peer.startswith(("ipv4:", "ipv6:")):
        return ""
    host = peer.split(":", 1)[1].rsplit(":", 1)[0].strip("[]")
    try:
        return str(ipaddress.ip_address(host.replace("%25", "%")))
    except ValueError:
        return ""


def _widget_key_to_pb(key: WidgetKey) -> pb.WidgetKey:
    message = pb.WidgetKey(key=key.key, label=key.label)
    message.created_at.FromDatetime(key.created_at)
    if key.revoked_at is not None:
        message.revoked_at.FromDatetime(key.revoked_at)
    return message


def _page_view_to_pb(view: PageView) -> pb.PageView:
    message = pb.PageView(
        id=view.id,
        visitor_id=view.visitor_id,
        url=view.url,
        title=view.title,
        referrer=view.referrer,
        user_agent=view.user_agent,
        ip=view.ip,
        landing=view.landing,
        visit_id=view.visit_id,
    )
    message.viewed_at.FromDatetime(view.viewed_at)
    return message


def _visitor_to_pb(visitor: Visitor) -> pb.Visitor:
    message = pb.Visitor(
        id=visitor.id,
        name=visitor.name,
        email=visitor.email,
        visit_count=visitor.visit_count,
        page_view_count=visitor.page_view_count,
        recent_page_views=[_page_view_to_pb(v) for v in visitor.recent_page_views],
    )
    if visitor.first_seen_at is not None:
        message.first_seen_at.FromDatetime(visitor.first_seen_at)
    if visitor.last_seen_at is not None:
        message.last_seen_at.FromDatetime(visitor.last_seen_at)
    return message
