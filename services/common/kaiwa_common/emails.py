"""One e-mail rule for every service: trimmed, one @, no spaces, a dotted domain with no
empty labels, at most 254 characters (64 before the @). Pragmatic, not RFC 5322: it
refuses what a person mistyped, not what a mail server might accept.

`normalize_email` gives the lower-cased form used as a key (agents, visitors);
`valid_email` keeps the case as typed, for records that show it (a CRM lead) and match
it case-insensitively."""

from __future__ import annotations

import re

from .errors import InvalidArgument

MAX_EMAIL = 254
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")


def normalize_email(raw: str, what: str = "email") -> str:
    """The address as a key: valid and lower-cased; InvalidArgument naming `what` otherwise."""
    return valid_email(raw, what).lower()


def valid_email(raw: str, what: str = "email") -> str:
    """The address trimmed, case kept; InvalidArgument naming `what` otherwise."""
    email = (raw or "").strip()
    if not email:
        raise InvalidArgument(f"{what} is required", field=_field(what))
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise InvalidArgument(f"{what} {raw!r} is not a valid e-mail address", field=_field(what))
    return email


def optional_email(raw: str, what: str = "email") -> str:
    """Empty stays empty; anything else must be a valid address."""
    return normalize_email(raw, what) if (raw or "").strip() else ""


def _field(what: str) -> str | None:
    return what if what.isidentifier() else None
