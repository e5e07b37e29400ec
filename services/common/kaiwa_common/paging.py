"""Paging with stable cursors, the same everywhere (AIP-158 style).

page_size 0 takes the list's default, a larger one is capped at its limit, a negative
one is refused. page_token is opaque to the client: a keyset position (base64 JSON), so
a page never repeats or skips a row when new ones are written meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from .errors import InvalidArgument


@dataclass(frozen=True)
class PageLimits:
    default: int
    limit: int

    def size(self, requested: int) -> int:
        if requested < 0:
            raise InvalidArgument("page_size must not be negative", field="page_size")
        return min(requested or self.default, self.limit)


def encode_token(position) -> str:
    """A next_page_token for a keyset position (an int, or (datetime, id))."""
    if isinstance(position, tuple):
        when, ident = position
        position = [when.isoformat(), str(ident)]
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def decode_seq_token(token: str) -> int | None:
    """The sequence number a token was made from (None: the first page)."""
    value = _decode(token)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise _invalid()
    return value


def decode_time_token(token: str) -> tuple[datetime, str] | None:
    """The (time, id) position a token was made from (None: the first page)."""
    value = _decode(token)
    if value is None:
        return None
    try:
        when, ident = value
        return datetime.fromisoformat(when), ident
    except (TypeError, ValueError):
        raise _invalid() from None


def _decode(token: str):
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _invalid() from None


def _invalid() -> InvalidArgument:
    return InvalidArgument("page_token is not valid (pass back a next_page_token unchanged)", field="page_token")
