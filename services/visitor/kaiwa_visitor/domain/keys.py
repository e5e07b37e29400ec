"""Public widget keys. A key names its tenant, so a lookup never searches other tenants:
`wk.<tenant, base64url>.<random part>`. The random part (192 bits) makes keys unguessable."""

from __future__ import annotations

import base64
import secrets

from kaiwa_common.errors import InvalidArgument, Unauthenticated

PREFIX = "wk"
MAX_LABEL = 100
MAX_KEY = 512


def new_widget_key(tenant: str) -> str:
    encoded = base64.urlsafe_b64encode(tenant.encode()).decode().rstrip("=")
    return f"{PREFIX}.{encoded}.{secrets.token_urlsafe(24)}"


def tenant_of_key(key: str) -> str:
    """The tenant a well-formed key belongs to; Unauthenticated for anything else."""
    parts = key.split(".")
    if len(key) > MAX_KEY or len(parts) != 3 or parts[0] != PREFIX or not parts[1] or len(parts[2]) < 32:
        raise Unauthenticated("widget key is not valid (expected the key shown when it was created)")
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        tenant = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):  # binascii.Error, non-ASCII input
        raise Unauthenticated("widget key is not valid (expected the key shown when it was created)") from None
    if not tenant:
        raise Unauthenticated("widget key is not valid (expected the key shown when it was created)")
    return tenant


def validate_label(label: str) -> str:
    label = (label or "").strip()
    if len(label) > MAX_LABEL:
        raise InvalidArgument(f"label is longer than {MAX_LABEL} characters")
    return label
