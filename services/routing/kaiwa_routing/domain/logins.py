"""CMD-02: what an XMPP login is made of (seed 003). Pure: no I/O.

user name   6-30 of [A-Za-z0-9_.], unique in the portal regardless of case; kept in
            lower case (XMPP's nodeprep lower-cases the address's local part)
password    8-128 characters; kept as scrypt$N$r$p$salt$hash (hashlib.scrypt, 16-byte
            salt, N=2^14, r=8, p=1: about 16 MiB and tens of milliseconds per check)
login       "<portal>|<user name>@<domain>" or "<portal>\\<user name>@<domain>"
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from kaiwa_common.errors import InvalidArgument

USER_NAME = re.compile(r"^[A-Za-z0-9_.]{6,30}$")
AVAILABLE = "入力したユーザー名は利用可能です"
NOT_AVAILABLE = "入力したユーザー名は利用できません"
FORM = "6 to 30 letters, digits, '_' and '.'"
MIN_PASSWORD, MAX_PASSWORD = 8, 128
N, R, P = 2**14, 8, 1


def user_name_problem(user_name: str) -> str:
    """Why this is no user name ("" when it is one)."""
    return "" if USER_NAME.match(user_name or "") else f"a user name is {FORM}"


def canonical_user_name(user_name: str) -> str:
    return (user_name or "").strip().lower()


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password or "") <= MAX_PASSWORD:
        raise InvalidArgument(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password")
    return password


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def password_matches(password: str, stored: str) -> bool:
    """Constant time; a missing or foreign hash never matches (after the same work)."""
    parts = (stored or "").split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        hash_password(password, b"0" * 16)
        return False
    n, r, p = (int(x) for x in parts[1:4])
    digest = hashlib.scrypt(password.encode(), salt=_unb64(parts[4]), n=n, r=r, p=p, dklen=32)
    return hmac.compare_digest(digest, _unb64(parts[5]))


def split_login(login: str) -> tuple[str, str] | None:
    """(portal, user name) of "<portal>|<user>" or "<portal>\\<user>" (the local part of
    the address the agent typed), else None."""
    for sep in ("|", "\\"):
        portal, found, user = (login or "").partition(sep)
        if found and portal and user:
            return portal, user
    return None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)
