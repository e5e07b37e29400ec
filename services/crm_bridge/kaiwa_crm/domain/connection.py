"""CRM-01/CRM-10: the tenant's CRM connection. Which CRM (the built-in one unless an
account was connected), whether it is enabled, and who its admin is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kaiwa_common.errors import FailedPrecondition, InvalidArgument, PermissionDenied

BUILTIN, ZOHO = "builtin", "zoho"
KINDS = (BUILTIN, ZOHO)

# CRM-01, the seed's refusal (004) when the caller is not recognised as the CRM admin.
NOT_CRM_ADMIN = "現在のメールアドレスをZoho CRMの管理者として認識できませんでした"

# Zoho's data centres: the accounts server and the API domain of each.
ZOHO_DATA_CENTERS = ("com", "eu", "in", "com.au", "jp", "ca", "sa", "com.cn")

MIN_KEY = 16
MAX_KEY = 1000


@dataclass(frozen=True)
class Connection:
    kind: str = BUILTIN
    enabled: bool = True
    admin_email: str = ""
    key_cipher: str = ""
    client_id: str = ""
    client_secret_cipher: str = ""
    data_center: str = "com"
    connected_by: str = ""
    connected_at: datetime | None = None
    status: str = "ok"

    @property
    def external(self) -> bool:
        return self.kind != BUILTIN

    def require_enabled(self) -> None:
        if not self.enabled:
            raise FailedPrecondition("the CRM integration is disabled; an admin can enable it again (EnableCrm)")


def refused(reason: str = "") -> PermissionDenied:
    """CRM-01: the seed's message, naming the form's fields (admin e-mail, integration key)."""
    detail = f" ({reason})" if reason else ""
    return PermissionDenied(
        f"{NOT_CRM_ADMIN}。CRMの管理者のメールアドレスと連携キーを入力してください{detail}", field="integration_key"
    )


def valid_key(key: str, what: str = "integration_key") -> str:
    key = (key or "").strip()
    if not MIN_KEY <= len(key) <= MAX_KEY or any(c.isspace() for c in key):
        raise InvalidArgument(f"{what} must be {MIN_KEY}-{MAX_KEY} characters without spaces", field=what)
    return key


def valid_data_center(value: str) -> str:
    value = (value or "com").strip().lower()
    if value not in ZOHO_DATA_CENTERS:
        raise InvalidArgument(f"data_center must be one of {', '.join(ZOHO_DATA_CENTERS)}", field="data_center")
    return value
