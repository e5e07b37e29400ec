"""Domain errors and other failures -> gRPC status codes, in one place (the interceptor
and anything reporting a status per item, such as a stream's per-event answers, use it)."""

from __future__ import annotations

import logging

import asyncpg
import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry import trace

from .db import TRANSIENT_DB_ERRORS
from .errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unauthenticated, Unavailable

log = logging.getLogger("kaiwa.grpc")

STATUS_OF: dict[type[DomainError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_of(exc: DomainError) -> grpc.StatusCode:
    """The status code of a domain error (of a subclass too); INTERNAL for an unmapped one."""
    return STATUS_OF.get(type(exc)) or next(
        (status for cls, status in STATUS_OF.items() if isinstance(exc, cls)), grpc.StatusCode.INTERNAL
    )


async def abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str, trailing_metadata: tuple = ()) -> None:
    span = trace.get_current_span()
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN):
        span.set_status(trace.Status(trace.StatusCode.ERROR, message))
    await context.abort(code, message, trailing_metadata)


async def abort_domain(context: grpc.aio.ServicerContext, exc: DomainError) -> None:
    code = status_of(exc)
    details = () if exc.field is None else (("grpc-status-details-bin", bad_request(code, exc)),)
    await abort(context, code, exc.message, details)


def bad_request(code: grpc.StatusCode, exc: DomainError) -> bytes:
    """google.rpc.Status with one BadRequest field violation (Google API guidelines, AIP-193)."""
    violation = error_details_pb2.BadRequest.FieldViolation(field=exc.field, description=exc.message)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=exc.message)
    status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    return status.SerializeToString()


async def abort_for(exc: Exception, method: str, context: grpc.aio.ServicerContext) -> None:
    if isinstance(exc, DomainError):
        await abort_domain(context, exc)
    if isinstance(exc, asyncpg.DataError):
        # The database refused the caller's data: still the caller's mistake, never INTERNAL.
        log.warning("database refused request data", extra={"fields": {"method": method, "error": repr(exc)}})
        await abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"invalid value: {exc}")
    if isinstance(exc, TRANSIENT_DB_ERRORS):
        log.warning("database unavailable", extra={"fields": {"method": method, "error": repr(exc)}})
        await abort(context, grpc.StatusCode.UNAVAILABLE, "database unavailable, retry shortly")
    # A defect of ours, not the caller's: logged with the trace id, answered as INTERNAL.
    log.exception("unhandled error", extra={"fields": {"method": method}})
    span_context = trace.get_current_span().get_span_context()
    reference = f" (trace {span_context.trace_id:032x})" if span_context.is_valid else ""
    await abort(context, grpc.StatusCode.INTERNAL, f"internal error{reference}")
