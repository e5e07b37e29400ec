"""gRPC servicer: protobuf <-> domain, one part per area. Identity and errors are handled
by the interceptor."""

from __future__ import annotations

from kaiwa.crm_bridge.v1 import crm_bridge_pb2_grpc

from .actions import ActionsApi
from .connection import ConnectionApi
from .desk import DeskApi
from .records import RecordsApi


class CrmBridgeApi(RecordsApi, ConnectionApi, ActionsApi, DeskApi, crm_bridge_pb2_grpc.CrmBridgeServiceServicer):
    pass
