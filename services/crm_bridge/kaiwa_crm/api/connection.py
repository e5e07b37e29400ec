"""Connection, CRM users, settings, custom fields, queued and refused writes (CRM-01..10)."""

from __future__ import annotations

from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1 import settings_pb2 as spb

from kaiwa_common.errors import InvalidArgument
from kaiwa_common.protobuf import timestamp

from ..domain.connection import BUILTIN, ZOHO, Connection
from ..domain.settings import CrmSettings
from ..handlers import connection, settings, writes
from ..handlers.common import Caller
from ..store.tenancy import CrmUser
from .base import Base
from .convert import TYPE_TO_PB, record_type, write_pb
from .settings import settings_from_pb, settings_pb

_KINDS = {pb.CRM_KIND_BUILTIN: BUILTIN, pb.CRM_KIND_ZOHO: ZOHO}


class ConnectionApi(Base):
    async def ConnectCrm(self, request: pb.ConnectCrmRequest, context) -> pb.Connection:
        kind = _KINDS.get(request.kind)
        if kind is None:
            raise InvalidArgument("kind is required: builtin or zoho", field="kind")
        link = await connection.connect(
            self.rt,
            Caller.current(),
            kind,
            request.admin_email,
            request.integration_key,
            request.client_id,
            request.client_secret,
            request.data_center,
        )
        return _connection_pb(link, {})

    async def GetConnection(self, request: pb.GetConnectionRequest, context) -> pb.Connection:
        return _connection_pb(*await connection.get(self.rt, Caller.current().tenant))

    async def DisableCrm(self, request: pb.DisableCrmRequest, context) -> pb.Connection:
        return _connection_pb(*await connection.set_enabled(self.rt, Caller.current().tenant, False))

    async def EnableCrm(self, request: pb.EnableCrmRequest, context) -> pb.Connection:
        return _connection_pb(*await connection.set_enabled(self.rt, Caller.current().tenant, True))

    async def UpsertCrmUser(self, request: pb.UpsertCrmUserRequest, context) -> pb.CrmUser:
        user = await connection.upsert_user(
            self.rt, Caller.current().tenant, request.email, request.name, request.admin, request.agent_id
        )
        return _user_pb(user)

    async def ListCrmUsers(self, request: pb.ListCrmUsersRequest, context) -> pb.ListCrmUsersResponse:
        return pb.ListCrmUsersResponse(users=[_user_pb(u) for u in await connection.users(self.rt, Caller.current().tenant)])

    async def SetIntegrationKey(self, request: pb.SetIntegrationKeyRequest, context) -> pb.SetIntegrationKeyResponse:
        email = await connection.set_integration_key(self.rt, Caller.current(), request.integration_key)
        return pb.SetIntegrationKeyResponse(admin_email=email)

    async def GetCrmSettings(self, request: spb.GetCrmSettingsRequest, context) -> spb.CrmSettings:
        return settings_pb(await settings.get(self.rt, Caller.current().tenant))

    async def UpdateCrmSettings(self, request: spb.CrmSettings, context) -> spb.CrmSettings:
        def changed(current: CrmSettings) -> CrmSettings:
            return settings_from_pb(request, current)

        return settings_pb(await settings.update(self.rt, Caller.current().tenant, changed))

    async def DefineCustomField(self, request: pb.DefineCustomFieldRequest, context) -> pb.CustomField:
        kind = record_type(request.type)
        if kind is None:
            raise InvalidArgument("type is required: lead or contact", field="type")
        kind, name, label = await settings.define_field(self.rt, Caller.current().tenant, kind, request.name, request.label)
        return pb.CustomField(type=TYPE_TO_PB[kind], name=name, label=label)

    async def ListCustomFields(self, request: pb.ListCustomFieldsRequest, context) -> pb.ListCustomFieldsResponse:
        found = await settings.fields(self.rt, Caller.current().tenant)
        return pb.ListCustomFieldsResponse(
            fields=[pb.CustomField(type=TYPE_TO_PB[t], name=n, label=label) for t, n, label in found]
        )

    async def ListDeadLetters(self, request: pb.ListDeadLettersRequest, context) -> pb.ListDeadLettersResponse:
        found = await writes.listed(self.rt, Caller.current().tenant, request.include_queued)
        return pb.ListDeadLettersResponse(writes=[write_pb(w) for w in found])

    async def ReplayDeadLetter(self, request: pb.ReplayDeadLetterRequest, context) -> pb.CrmWrite:
        return write_pb(await writes.replay(self.rt, Caller.current().tenant, request.write_id))

    async def GetWrite(self, request: pb.GetWriteRequest, context) -> pb.CrmWrite:
        return write_pb(await writes.get(self.rt, Caller.current().tenant, request.write_id))


def _connection_pb(link: Connection, counts: dict[str, int]) -> pb.Connection:
    return pb.Connection(
        kind=pb.CRM_KIND_ZOHO if link.kind == ZOHO else pb.CRM_KIND_BUILTIN,
        enabled=link.enabled,
        admin_email=link.admin_email,
        has_integration_key=bool(link.key_cipher),
        connected_by=link.connected_by,
        connected_at=timestamp(link.connected_at),
        data_center=link.data_center if link.kind == ZOHO else "",
        status=link.status,
        queued_writes=counts.get("queued", 0),
        dead_letters=counts.get("dead", 0),
    )


def _user_pb(u: CrmUser) -> pb.CrmUser:
    return pb.CrmUser(id=u.id, email=u.email, name=u.name, admin=u.admin, agent_id=u.agent_id)
