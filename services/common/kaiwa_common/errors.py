"""Domain errors: what went wrong, in the caller's terms. They know nothing of gRPC; the
interceptor maps each class to its status code (never UNKNOWN for a caller's mistake)."""

from __future__ import annotations

import uuid


class DomainError(Exception):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field  # the request field at fault, when one is (google.rpc.BadRequest)


class InvalidArgument(DomainError):
    pass


class NotFound(DomainError):
    pass


class FailedPrecondition(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class Unavailable(DomainError):
    pass


class PermanentEventError(Exception):
    """An event a consumer can never apply: it is parked in the dead-letter table."""


def parse_uuid(value: str, what: str) -> str:
    field = what if what.isidentifier() else None  # "chat_id" names a field; "deal id" does not
    if not value:
        raise InvalidArgument(f"{what} is required", field=field)
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(f"{what} {value!r} is not a valid id (expected a UUID)", field=field) from None
