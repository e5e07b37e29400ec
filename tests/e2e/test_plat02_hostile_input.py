"""PLAT-02: every RPC of every service, driven from the contracts (not by hand, so a new
RPC is covered the day it is added), with hostile input under every role.

- U+0000, an oversized string or an unknown enum number in any field: INVALID_ARGUMENT
  naming the field, also as a google.rpc.BadRequest field violation;
- odd but legal values (quotes, SQL, right-to-left marks, emoji, huge and negative
  numbers) under admin, agent, visitor and service tokens: never INTERNAL or UNKNOWN.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.rpc import error_details_pb2, status_pb2
from kaiwa_common.validation import MAX_STRING
from tests.e2e.contracts import NEVER, call, methods, refused_by_policy, request_class
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


def _scalar_paths(message_type, prefix="", depth=0):
    """(path, field, parent path) of every scalar field, nested messages two levels deep."""
    for field in message_type.fields:
        path = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if (
                depth < 2
                and not field.message_type.GetOptions().map_entry
                and not field.message_type.full_name.startswith("google.protobuf.")
            ):
                yield from _scalar_paths(field.message_type, f"{path}.", depth + 1)
        else:
            yield path, field


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
    if field.is_repeated:
        getattr(target, leaf).append(value)
    else:
        setattr(target, leaf, value)
    named.append(f"{leaf}[0]" if field.is_repeated else leaf)
    return request, ".".join(named)


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


async def test_plat02_nul_oversized_and_unknown_enums_are_invalid_argument_naming_the_field(suite, tenant):
    roles = list(_roles(tenant).values())
    checked, wrong = 0, []
    for service, descriptor, method in methods():
        for path, field in _scalar_paths(method.input_type):
            if field.type == FieldDescriptor.TYPE_STRING:
                bad_values = ["a\x00b", "y" * (MAX_STRING + 1)]
            elif field.type == FieldDescriptor.TYPE_ENUM:
                bad_values = [999]
            else:
                continue
            for value in bad_values:
                request, expected = _request(method, path, value)
                for metadata in roles:  # the first role the method admits
                    err = await _call(suite, service, descriptor, method, request, metadata)
                    if not refused_by_policy(err):
                        break
                if (
                    err is None
                    or err.code() != grpc.StatusCode.INVALID_ARGUMENT
                    or expected not in err.details()
                    or _field_violations(err) != [expected]
                ):
                    wrong.append((method.full_name, path, str(value)[:12], err and err.code(), err and err.details()))
                checked += 1
    assert not wrong, "\n".join(map(str, wrong))
    assert checked > 100  # the contracts really were walked


async def test_plat02_odd_values_under_every_role_are_never_internal(suite, tenant):
    called, wrong = 0, []
    for role, metadata in _roles(tenant).items():
        for service, descriptor, method in methods():
            for path, field in _scalar_paths(method.input_type):
                if field.type == FieldDescriptor.TYPE_STRING:
                    values = ODD_STRINGS
                elif field.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64):
                    values = [n for n in ODD_NUMBERS if field.cpp_type == FieldDescriptor.CPPTYPE_INT64 or abs(n) < 2**31]
                elif field.cpp_type == FieldDescriptor.CPPTYPE_DOUBLE:
                    values = [-1.0, 1e308, float("nan"), float("inf")]
                else:
                    continue
                for value in values:
                    err = await _call(suite, service, descriptor, method, _request(method, path, value)[0], metadata)
                    if err is not None and err.code() in NEVER:
                        wrong.append((role, method.full_name, path, str(value)[:12], err.details()))
                    called += 1
    assert not wrong, "\n".join(map(str, wrong))
    assert called > 500
    assert not suite.error_lines()
