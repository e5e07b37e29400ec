"""PLAT-02: every RPC of every service, driven from the contracts (not by hand, so a new
RPC is covered the day it is added), with hostile input under every role.

- U+0000, an oversized string, an unknown enum number or a Timestamp outside years
  1..9999 in any field: INVALID_ARGUMENT naming the field, also as a google.rpc.BadRequest
  field violation;
- odd but legal values (quotes, SQL, right-to-left marks, emoji, huge and negative
  numbers) under admin, agent, visitor and service tokens: never INTERNAL or UNKNOWN.

The calls go 16 at a time (contracts.gather_bounded): thousands of them, one by one,
took minutes.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.rpc import error_details_pb2, status_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from kaiwa_common.validation import MAX_STRING, TIMESTAMP_SECONDS
from tests.e2e.contracts import NEVER, call, gather_bounded, methods, refused_by_policy, request_class
from tests.e2e.suite import Suite
from tests.fixtures import auth

pytestmark = pytest.mark.asyncio(loop_scope="session")

ODD_STRINGS = [
    "'; DROP TABLE chats; --",
    "\u202eevil\u202c",
    "😀" * 50,
    "x" * 5000,
    "../../etc/passwd",
    "00000000-0000-0000-0000-000000000000",
    " ",
    "%s%n{0}",
]
ODD_NUMBERS = [-1, 2**31, -(2**31) - 1, 2**62]
TIMESTAMP = "google.protobuf.Timestamp"


def _scalar_paths(message_type, prefix="", depth=0):
    """(path, field) of every scalar field and Timestamp, nested messages two levels deep."""
    for field in message_type.fields:
        path = f"{prefix}{field.name}"
        if field.type != FieldDescriptor.TYPE_MESSAGE or field.message_type.full_name == TIMESTAMP:
            yield path, field
        elif (
            depth < 2
            and not field.message_type.GetOptions().map_entry
            and not field.message_type.full_name.startswith("google.protobuf.")
        ):
            yield from _scalar_paths(field.message_type, f"{path}.", depth + 1)


def _request(method, path: str, value):
    """A request with only `path` set to `value`, and the path as the server names it."""
    request = request_class(method)()
    *parents, leaf = path.split(".")
    target, named = request, []
    for name in parents:
        field = target.DESCRIPTOR.fields_by_name[name]
        target = getattr(target, name).add() if field.is_repeated else getattr(target, name)
        named.append(f"{name}[0]" if field.is_repeated else name)
    field = target.DESCRIPTOR.fields_by_name[leaf]
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        (getattr(target, leaf).add() if field.is_repeated else getattr(target, leaf)).CopyFrom(value)
    elif field.is_repeated:
        getattr(target, leaf).append(value)
    else:
        setattr(target, leaf, value)
    named.append(f"{leaf}[0]" if field.is_repeated else leaf)
    return request, ".".join(named)


def _invalid_values(field) -> list:
    if field.type == FieldDescriptor.TYPE_STRING:
        return ["a\x00b", "y" * (MAX_STRING + 1)]
    if field.type == FieldDescriptor.TYPE_ENUM:
        return [999]
    if field.type == FieldDescriptor.TYPE_MESSAGE:  # a Timestamp no datetime can hold
        return [Timestamp(seconds=2**62), Timestamp(seconds=1, nanos=-1), Timestamp(seconds=TIMESTAMP_SECONDS[0] - 1)]
    return []


def _odd_values(field) -> list:
    if field.type == FieldDescriptor.TYPE_STRING:
        return ODD_STRINGS
    if field.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64):
        return [n for n in ODD_NUMBERS if field.cpp_type == FieldDescriptor.CPPTYPE_INT64 or abs(n) < 2**31]
    if field.cpp_type == FieldDescriptor.CPPTYPE_DOUBLE:
        return [-1.0, 1e308, float("nan"), float("inf")]
    return []


async def _call(suite: Suite, service: str, descriptor, method, request, metadata):
    """The error of one call (None for a served call or a stream that started)."""
    return (await call(suite.channel(service), descriptor, method, request, metadata))[1]


def _field_violations(err: grpc.aio.AioRpcError) -> list[str]:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return [v.field for v in bad.field_violations]
    return []


@pytest.fixture(scope="module")
async def suite():
    async with Suite.start() as running_suite:
        yield running_suite


def _roles(tenant):
    return {
        "admin": auth(tenant, "admin", "admin@example.com"),
        "agent": auth(tenant, "agent", "agent@example.com"),
        "visitor": auth(tenant, "visitor", "00000000-0000-4000-8000-000000000001"),
        "service": auth(tenant, "service", "e2e"),
    }


async def _first_admitted(suite: Suite, service: str, descriptor, method, request, roles: list):
    """The error of the call under the first role the method admits."""
    for metadata in roles:
        err = await _call(suite, service, descriptor, method, request, metadata)
        if not refused_by_policy(err):
            return err
    return err


async def test_plat02_nul_oversized_unknown_enums_and_impossible_times_are_invalid_argument_naming_the_field(suite, tenant):
    roles = list(_roles(tenant).values())

    async def check(service, descriptor, method, path, value):
        request, expected = _request(method, path, value)
        err = await _first_admitted(suite, service, descriptor, method, request, roles)
        if (
            err is None
            or err.code() != grpc.StatusCode.INVALID_ARGUMENT
            or expected not in err.details()
            or _field_violations(err) != [expected]
        ):
            return (method.full_name, path, str(value)[:12], err and err.code(), err and err.details())
        return None

    checks = [
        (service, descriptor, method, path, value)
        for service, descriptor, method in methods()
        for path, field in _scalar_paths(method.input_type)
        for value in _invalid_values(field)
    ]
    wrong = [found for found in await gather_bounded(check(*c) for c in checks) if found]
    assert not wrong, "\n".join(map(str, wrong))
    assert len(checks) > 100  # the contracts really were walked
    assert any(isinstance(value, Timestamp) for *_, value in checks)  # Timestamps were reached too


async def test_plat02_odd_values_under_every_role_are_never_internal(suite, tenant):
    async def check(role, metadata, service, descriptor, method, path, value):
        err = await _call(suite, service, descriptor, method, _request(method, path, value)[0], metadata)
        if err is not None and err.code() in NEVER:
            return (role, method.full_name, path, str(value)[:12], err.details())
        return None

    checks = [
        (role, metadata, service, descriptor, method, path, value)
        for role, metadata in _roles(tenant).items()
        for service, descriptor, method in methods()
        for path, field in _scalar_paths(method.input_type)
        for value in _odd_values(field)
    ]
    wrong = [found for found in await gather_bounded(check(*c) for c in checks) if found]
    assert not wrong, "\n".join(map(str, wrong))
    assert len(checks) > 500
    assert not suite.error_lines()
