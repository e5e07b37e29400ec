"""Caller identity from `authorization: Bearer <JWT>` (HS256 or RS256).

Claims: `tenant` (portal id), `sub` (agent id, visitor id or service name), `role`
(admin, agent, visitor, service). The identity of the current RPC is in a context
variable set by the server interceptor (interceptor.py).
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass
from functools import lru_cache

import jwt

from .config import Settings
from .errors import Unauthenticated

ADMIN, AGENT, VISITOR, SERVICE = "admin", "agent", "visitor", "service"
ROLES = (ADMIN, AGENT, VISITOR, SERVICE)
# Role sets for the services' access policies (method -> roles allowed).
STAFF = frozenset({ADMIN, AGENT, SERVICE})
ANYONE = frozenset(ROLES)
AUDIENCE = "kaiwa"


@dataclass(frozen=True)
class Identity:
    tenant: str
    sub: str
    role: str


_current: contextvars.ContextVar[Identity] = contextvars.ContextVar("kaiwa_identity")


def current_identity() -> Identity:
    return _current.get()


def set_identity(identity: Identity) -> contextvars.Token:
    return _current.set(identity)


def reset_identity(token: contextvars.Token) -> None:
    try:
        _current.reset(token)
    except ValueError:  # a stream closed from another context: nothing to restore
        pass


def mint_token(settings: Settings, tenant: str, role: str, sub: str, ttl_seconds: int = 86400) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    now = int(time.time())
    claims = {"tenant": tenant, "role": role, "sub": sub, "iat": now, "exp": now + ttl_seconds, "aud": AUDIENCE}
    if settings.jwt_private_key:
        return jwt.encode(claims, settings.jwt_private_key, algorithm="RS256")
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def verify_token(settings: Settings, token: str) -> Identity:
    if settings.jwt_public_key:
        key, algorithms = settings.jwt_public_key, ("RS256",)
    else:
        key, algorithms = settings.jwt_secret, ("HS256",)
    identity, expires_at = _verified(key, algorithms, token)
    if expires_at <= time.time():
        raise Unauthenticated("token has expired")
    return identity


@lru_cache(maxsize=8192)
def _verified(key: str, algorithms: tuple[str, ...], token: str) -> tuple[Identity, float]:
    """Signature and claims checked once per token (clients reuse theirs on every call);
    expiry is checked by the caller on every use. Failures are not cached."""
    try:
        claims = jwt.decode(token, key, algorithms=list(algorithms), audience=AUDIENCE, options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("token has expired") from None
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from None
    tenant, role, sub = claims.get("tenant"), claims.get("role"), claims.get("sub")
    if not tenant or not isinstance(tenant, str):
        raise Unauthenticated("token has no tenant claim")
    if role not in ROLES:
        raise Unauthenticated(f"token role {role!r} is not one of {', '.join(ROLES)}")
    return Identity(tenant=tenant, sub=str(sub), role=role), float(claims["exp"])


def identity_from_metadata(settings: Settings, metadata) -> Identity:
    header = None
    for key, value in metadata or ():
        if key == "authorization":
            header = value
            break
    if not header:
        raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
    return verify_token(settings, token.strip())


def bearer(token: str) -> tuple[tuple[str, str]]:
    """Call metadata for a token."""
    return (("authorization", f"Bearer {token}"),)
