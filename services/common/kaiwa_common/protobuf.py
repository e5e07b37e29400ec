"""Protobuf <-> domain values, the same way in every service's api.py.

Enums follow the contracts' convention `<ENUM>_<NAME>` with 0 = `<ENUM>_UNSPECIFIED`;
the domain uses the lower-case name (`AVAILABILITY_ONLINE` <-> "online").
"""

from __future__ import annotations

from datetime import datetime, timezone

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.timestamp_pb2 import Timestamp

from .errors import InvalidArgument


def timestamp(value: datetime | None) -> Timestamp | None:
    """A Timestamp for an aware datetime (None stays unset)."""
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def to_datetime(stamp: Timestamp, has_value: bool = True) -> datetime | None:
    """An aware UTC datetime, or None for an unset Timestamp."""
    if not has_value or (stamp.seconds == 0 and stamp.nanos == 0):
        return None
    return stamp.ToDatetime(tzinfo=timezone.utc)


def _prefix(enum: EnumTypeWrapper) -> str:
    first = enum.keys()[0]  # <ENUM>_UNSPECIFIED
    return first.removesuffix("UNSPECIFIED")


def enum_name(enum: EnumTypeWrapper, value: int, what: str, *, default: str | None = None) -> str:
    """The domain name of an enum number: UNSPECIFIED gives `default` (or is refused)."""
    if value == 0:
        if default is None:
            choices = ", ".join(k.removeprefix(_prefix(enum)).lower() for k in enum.keys()[1:])
            raise InvalidArgument(f"{what} is required: one of {choices}", field=what if what.isidentifier() else None)
        return default
    if value not in enum.values():
        raise InvalidArgument(f"{what}: {value} is not a known value", field=what if what.isidentifier() else None)
    return enum.Name(value).removeprefix(_prefix(enum)).lower()


def enum_value(enum: EnumTypeWrapper, name: str) -> int:
    """The enum number of a domain name ("" gives UNSPECIFIED)."""
    if not name:
        return 0
    return enum.Value(f"{_prefix(enum)}{name.upper()}")
