"""Domain errors that map to gRPC status codes; never UNKNOWN for a caller's mistake."""

from __future__ import annotations

import grpc


class DomainError(Exception):
    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE


class PermanentEventError(Exception):
    """An event a consumer can never apply: it is parked in the dead-letter table."""


def parse_uuid(value: str, what: str) -> str:
    import uuid

    if not value:
        raise InvalidArgument(f"{what} is required")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(f"{what} {value!r} is not a valid id (expected a UUID)") from None
