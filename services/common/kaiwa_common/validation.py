"""Checks every request message at the boundary, once, for every RPC of every service,
before a handler sees it:

- a string (or map key/value) holding U+0000, which PostgreSQL cannot store in text;
- a string longer than MAX_STRING characters (no field of ours needs more; a single
  oversized value must not reach the database or the logs);
- an enum number the contract does not define (proto3 keeps unknown numbers);
- more than MAX_REPEATED items in one repeated field;
- a google.protobuf.Timestamp outside its documented range (years 1 to 9999, nanos
  0..999,999,999), which no datetime can hold.

A violation is InvalidArgument naming the field path (e.g. `file.name`, `spans[2].text`),
which the interceptor also returns as a google.rpc.BadRequest field violation.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from .errors import InvalidArgument

MAX_STRING = 100_000
MAX_REPEATED = 10_000

_STRING = FieldDescriptor.TYPE_STRING
_ENUM = FieldDescriptor.TYPE_ENUM
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
_TIMESTAMP = "google.protobuf.Timestamp"
TIMESTAMP_SECONDS = (-62135596800, 253402300799)  # 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z


def check_request(message: Message) -> None:
    """Raise InvalidArgument for the first field a database or a handler must never see."""
    _check_message(message, "")


def _check_message(message: Message, prefix: str) -> None:
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            _check_map(field, value, path)
        elif field.is_repeated:
            if len(value) > MAX_REPEATED:
                raise InvalidArgument(f"{path}: at most {MAX_REPEATED} items", field=path)
            for index, item in enumerate(value):
                _check_value(field, item, f"{path}[{index}]")
        else:
            _check_value(field, value, path)


def _check_map(field: FieldDescriptor, entries, path: str) -> None:
    key_field = field.message_type.fields_by_name["key"]
    value_field = field.message_type.fields_by_name["value"]
    for key, value in entries.items():
        _check_value(key_field, key, f"{path}[{key!r}]")
        _check_value(value_field, value, f"{path}[{key!r}]")


def _check_value(field: FieldDescriptor, value, path: str) -> None:
    if field.type == _STRING:
        _check_string(value, path)
    elif field.type == _ENUM:
        if value not in field.enum_type.values_by_number:
            raise InvalidArgument(f"{path}: {value} is not a known {field.enum_type.name} value", field=path)
    elif field.type == _MESSAGE and field.message_type.full_name == _TIMESTAMP:
        _check_timestamp(value, path)
    elif field.type == _MESSAGE:
        _check_message(value, f"{path}.")


def _check_string(value: str, path: str) -> None:
    if "\x00" in value:
        raise InvalidArgument(f"{path} must not contain NUL characters (U+0000)", field=path)
    if len(value) > MAX_STRING:
        raise InvalidArgument(f"{path}: at most {MAX_STRING} characters", field=path)


def _check_timestamp(value, path: str) -> None:
    low, high = TIMESTAMP_SECONDS
    if not low <= value.seconds <= high or not 0 <= value.nanos <= 999_999_999:
        raise InvalidArgument(f"{path}: not a valid time (years 1 to 9999, nanos 0..999999999)", field=path)
