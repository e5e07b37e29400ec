"""Visitor secrets (PLAT-02): how a returning visitor proves who it is.

A widget key is public, and so is a visitor id, so neither proves anything. A widget
keeps a secret instead, used once, like an OAuth refresh token:

    widget key                  -> new visitor V, session S, secret s1
    widget key + s1             -> s1 used; s2 (same V, same S)
    widget key + s1 again       -> a copy of s1 exists: S revoked (reuse), refused
    logout with s2 / admin      -> S revoked / every session of V revoked

A presented secret, read together with its session under the session's row lock:

| the secret                                        | outcome                        |
|---------------------------------------------------|--------------------------------|
| not `vs.` + 43..125 base64url characters           | refused: not valid             |
| no such secret in the widget key's tenant          | refused: unknown               |
| its session was revoked (logout, admin, reuse)     | refused: revoked               |
| already traded for its successor                   | session revoked, refused       |
| the key its session last used has been revoked     | refused: key revoked           |
| unused for longer than the idle lifetime           | refused: expired               |
| otherwise                                          | rotated: new secret and token  |

A secret may be presented with any active key of its tenant (so an admin can replace a
key without logging visitors out); its session then moves to that key. Revoking a key
ends the sessions still on it: the answer to secrets stolen from one site.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from kaiwa_common.errors import Unauthenticated

PREFIX = "vs."
SECRET_BYTES = 32  # 256 bits from `secrets`
_FORMAT = re.compile(r"vs\.[A-Za-z0-9_-]{43,125}")
START_AGAIN = "call again without it to start a new visitor"


@dataclass(frozen=True)
class StoredSecret:
    """A presented secret as stored, with its session; read under the session's lock."""

    secret_hash: bytes
    session_id: str
    visitor_id: str
    created_at: datetime
    used_at: datetime | None  # set once traded for its successor
    session_revoked_at: datetime | None
    key_revoked_at: datetime | None  # of the widget key the session last used
    checked_at: datetime  # the database clock when it was read


class Verdict(Enum):
    """What a presented secret earns; the value is the refusal's message."""

    VALID = ""
    UNKNOWN = f"unknown visitor secret (none like it was issued in this tenant); {START_AGAIN}"
    REVOKED = f"visitor secret has been revoked (logged out); {START_AGAIN}"
    REUSED = f"visitor secret was already used once: a copy of it exists, so its session has been revoked; {START_AGAIN}"
    KEY_REVOKED = f"visitor secret belongs to a widget key that has been revoked; {START_AGAIN}"
    EXPIRED = f"visitor secret has expired (unused for too long); {START_AGAIN}"


def new_visitor_secret() -> str:
    return PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def check_secret_format(secret: str) -> str:
    """The secret as presented, or Unauthenticated before anything is looked up."""
    if not _FORMAT.fullmatch(secret):
        raise Unauthenticated(f"visitor secret is not valid (expected the visitor_secret of the previous token); {START_AGAIN}")
    return secret


def judge_secret(stored: StoredSecret | None, idle_lifetime: timedelta) -> Verdict:
    if stored is None:
        return Verdict.UNKNOWN
    if stored.session_revoked_at is not None:
        return Verdict.REVOKED
    if stored.used_at is not None:
        return Verdict.REUSED
    if stored.key_revoked_at is not None:
        return Verdict.KEY_REVOKED
    if stored.checked_at - stored.created_at > idle_lifetime:
        return Verdict.EXPIRED
    return Verdict.VALID
