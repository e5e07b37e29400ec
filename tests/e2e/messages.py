"""Hypothesis strategies for any request message, built from its descriptor: every field
may be unset or hold an empty, huge, hostile or random value (control characters, random
unicode, unknown enum numbers, out-of-range timestamps, nested and repeated messages)."""

from __future__ import annotations

from functools import lru_cache

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor as F
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

from kaiwa_common.validation import TIMESTAMP_SECONDS

MAX_DEPTH = 3
Known = tuple[tuple[str, str], ...]  # (request field name or "", a real object's id)
HOSTILE = [
    "'; DROP TABLE messages; --",
    '" OR 1=1 --',
    "<script>alert(1)</script>",
    "\u202eevil\u202c",
    "../../etc/passwd",
    "%s%n{0}$1\\",
    " ",
    "\ufeff",
    "ja-JP",
    "https://example.com/?q=<x>",
    "a@example.com",
]
# Values some fields need to be accepted at all (a locale, a time zone, a URL, a pattern).
WELL_FORMED = ["en", "ja", "Asia/Tokyo", "https://shop.example.com/pricing", "*", "2030-01-01", "hello"]
_INT_RANGES = {
    F.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    F.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    F.CPPTYPE_UINT32: (0, 2**32 - 1),
    F.CPPTYPE_UINT64: (0, 2**64 - 1),
}


def strings(known: tuple[str, ...] = (), tame: bool = False) -> st.SearchStrategy[str]:
    """Empty, short random unicode (surrogates cannot be encoded), control characters,
    hostile text, ids (random or of real objects) and huge values, some over the limit;
    tame: only ids of real objects, hostile text and short words."""
    choices = [
        st.sampled_from(HOSTILE),
        st.sampled_from(WELL_FORMED),
        st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
    ]
    if not tame:
        choices += [
            st.just(""),
            st.text(max_size=40),
            st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=12),
            st.uuids().map(str),
            st.integers(1_000, 101_000).map(lambda n: "界" * n),
        ]
    if known:
        choices.append(st.sampled_from(known))
    return st.one_of(choices)


def _integers(field, tame: bool) -> st.SearchStrategy[int]:
    low, high = _INT_RANGES[field.cpp_type]
    if tame:
        return st.integers(0, 100)
    return st.one_of(st.integers(max(low, -3), 200), st.sampled_from([low, high]), st.integers(low, high))


def _enums(field, tame: bool) -> st.SearchStrategy[int]:
    known = [v.number for v in field.enum_type.values]
    if tame:
        return st.sampled_from(known)
    return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))


def _scalar(field, known: Known, tame: bool) -> st.SearchStrategy:
    values = tuple(sorted({value for _, value in known}))
    named = [value for name, value in known if name == field.name]
    if field.type == F.TYPE_STRING and tame and named:
        return st.sampled_from(named)
    if field.type == F.TYPE_STRING and tame and values and _names_an_object(field.name):
        return st.sampled_from(values)
    if field.type == F.TYPE_STRING:
        return strings(values, tame)
    if field.type == F.TYPE_BYTES:
        return st.binary(max_size=256)
    if field.type == F.TYPE_BOOL:
        return st.booleans()
    if field.type == F.TYPE_ENUM:
        return _enums(field, tame)
    if field.cpp_type in (F.CPPTYPE_FLOAT, F.CPPTYPE_DOUBLE):
        return st.floats(0, 1000) if tame else st.floats(width=32 if field.cpp_type == F.CPPTYPE_FLOAT else 64)
    return _integers(field, tame)


def _names_an_object(name: str) -> bool:
    return name == "id" or name.endswith(("_id", "key", "email", "shortcut", "ticket"))


def _value(field, known: Known, tame: bool, depth: int) -> st.SearchStrategy:
    if field.type == F.TYPE_MESSAGE:
        return _messages(field.message_type, known, tame, depth + 1)
    return _scalar(field, known, tame)


def _field(field, known: Known, tame: bool, depth: int) -> st.SearchStrategy | None:
    if field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
        key, value = (field.message_type.fields_by_name[name] for name in ("key", "value"))
        return st.dictionaries(_scalar(key, known, tame), _value(value, known, tame, depth), max_size=4)
    if field.type == F.TYPE_MESSAGE and depth >= MAX_DEPTH:
        return None
    if field.is_repeated:
        return st.lists(_value(field, known, tame, depth), max_size=4)
    return _value(field, known, tame, depth)


def messages(descriptor, known: Known = ()) -> st.SearchStrategy:
    """Messages of `descriptor` with any subset of their fields set: wild values, or tame
    ones (the real object `known` names for a field of that name, defined enum numbers,
    small numbers) that get past validation and "not found" into the use cases."""
    return st.one_of(_messages(descriptor, known, True, 0), _messages(descriptor, known, False, 0))


@lru_cache(maxsize=None)
def _messages(descriptor, known: Known, tame: bool, depth: int) -> st.SearchStrategy:
    if descriptor.full_name == "google.protobuf.Timestamp":
        seconds = st.integers(*TIMESTAMP_SECONDS)
        return st.builds(_timestamp, seconds, st.integers(0, 999_999_999), st.just(True) if tame else st.booleans())
    optional = {f.name: s for f in descriptor.fields if (s := _field(f, known, tame, depth)) is not None}
    if tame:  # a few fields at a time, so that one odd value does not hide the others
        chosen = st.sets(st.sampled_from(sorted(optional)), max_size=3) if optional else st.just(set())
        values = chosen.flatmap(lambda names: st.fixed_dictionaries({name: optional[name] for name in names}))
    else:
        values = st.fixed_dictionaries({}, optional=optional)
    return values.map(lambda drawn: _build(descriptor, drawn))


def _timestamp(seconds: int, nanos: int, in_range: bool):
    return Timestamp(seconds=seconds, nanos=nanos) if in_range else Timestamp(seconds=2**62, nanos=-1)


def _build(descriptor, values: dict):
    message = message_factory.GetMessageClass(descriptor)()
    for name, value in values.items():
        field = descriptor.fields_by_name[name]
        target = getattr(message, name)
        if field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            _fill_map(field, target, value)
        elif field.is_repeated and field.type == F.TYPE_MESSAGE:
            for item in value:
                target.add().CopyFrom(item)
        elif field.is_repeated:
            target.extend(value)
        elif field.type == F.TYPE_MESSAGE:
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def _fill_map(field, target, entries: dict) -> None:
    if field.message_type.fields_by_name["value"].type == F.TYPE_MESSAGE:
        for key, item in entries.items():
            target[key].CopyFrom(item)
    else:
        target.update(entries)
