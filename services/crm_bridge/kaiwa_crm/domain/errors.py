"""How a CRM answers when it does not do what was asked (CRM-10)."""

from __future__ import annotations

from datetime import datetime

from kaiwa_common.errors import FailedPrecondition, Unavailable


class CrmUnavailable(Unavailable):
    """The CRM cannot be reached, erred on its side, or asked to slow down (429): worth
    another try, at `retry_at` when the CRM said when."""

    def __init__(self, message: str, retry_at: datetime | None = None):
        super().__init__(message)
        self.retry_at = retry_at


class CrmAuthFailed(FailedPrecondition):
    """The CRM refuses Kaiwa's credentials (revoked key, wrong client): writes wait until
    an admin connects the account again."""


class CrmRefused(FailedPrecondition):
    """The CRM refused this request (invalid data, a missing mandatory field, no
    permission): trying again changes nothing, so the write is parked for an admin."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code
