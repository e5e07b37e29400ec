"""One server interceptor for every service: readiness, identity, role policy, errors.

- not ready yet (PostgreSQL or NATS not up)  -> UNAVAILABLE
- no or bad token                            -> UNAUTHENTICATED
- role not allowed for the method            -> PERMISSION_DENIED
- request bytes that do not decode           -> INVALID_ARGUMENT (grpc would say UNKNOWN)
- DomainError raised by a handler            -> its status code and message
- database briefly unreachable               -> UNAVAILABLE (safe to retry: nothing committed)
- anything else (a defect of ours)            -> INTERNAL, logged with its trace id

It also opens the call's SERVER span (health checks and reflection are not traced).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import AsyncIterator, Callable

import grpc
from opentelemetry import propagate, trace

from .auth import Identity, identity_from_metadata, reset_identity, set_identity
from .config import Settings
from .db import TRANSIENT_DB_ERRORS
from .errors import DomainError, InvalidArgument, PermissionDenied, Unavailable
from .telemetry import tracer

log = logging.getLogger("kaiwa.grpc")

PUBLIC = "public"  # policy value for methods that need no token
EXEMPT_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class KaiwaInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, settings: Settings, policy: dict[str, set[str] | str], is_ready: Callable[[], bool]):
        self.settings = settings
        self.policy = policy
        self.is_ready = is_ready
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}  # built once per method

    async def intercept_service(self, continuation, details):
        method = details.method
        if method.startswith(EXEMPT_PREFIXES):
            return await continuation(details)
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(details)
            if handler is None:
                return None
            wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        # Every kind of method is guarded, client-streaming ones included.
        if handler.response_streaming:
            if handler.request_streaming:
                behavior, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
            else:
                behavior, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
            wrapped = self._wrap_stream(method, behavior)
        else:
            if handler.request_streaming:
                behavior, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
            else:
                behavior, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler
            wrapped = self._wrap_unary(method, behavior)
        deserializer = handler.request_deserializer
        if not handler.request_streaming:
            deserializer = _tolerant(deserializer)
        return factory(wrapped, request_deserializer=deserializer, response_serializer=handler.response_serializer)

    def _admit(self, method: str, metadata) -> Identity | None:
        if not self.is_ready():
            raise Unavailable("service is starting: database or message bus not ready yet")
        allowed = self.policy.get(method.rsplit("/", 1)[-1])
        if allowed is None:
            log.error("no access policy for method", extra={"fields": {"method": method}})
            raise PermissionDenied(f"{method} has no access policy")
        if allowed == PUBLIC:
            return None
        identity = identity_from_metadata(self.settings, metadata)
        if identity.role not in allowed:
            raise PermissionDenied(f"role {identity.role!r} may not call {method.rsplit('/', 1)[-1]}")
        return identity

    def _wrap_unary(self, method: str, behavior):
        async def unary(request, context: grpc.aio.ServicerContext):
            with _server_span(method, context):
                token = await self._enter(method, request, context)
                try:
                    return await behavior(request, context)
                except (grpc.aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    await _abort_for(exc, method, context)
                finally:
                    reset_identity(token)

        return unary

    def _wrap_stream(self, method: str, behavior):
        async def stream(request, context: grpc.aio.ServicerContext):
            with _server_span(method, context):
                token = await self._enter(method, request, context)
                try:
                    async for response in stream_responses(behavior, request, context):
                        yield response
                except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit):
                    raise
                except Exception as exc:
                    await _abort_for(exc, method, context)
                finally:
                    reset_identity(token)

        return stream

    async def _enter(self, method: str, request, context: grpc.aio.ServicerContext):
        """Admit the call and bind its identity; aborts with the right status otherwise."""
        try:
            identity = self._admit(method, context.invocation_metadata())
            _check_decoded(request)
        except DomainError as exc:
            await _abort(context, exc.code, exc.message)
        return set_identity(identity)


def _server_span(method: str, context: grpc.aio.ServicerContext):
    """The call's SERVER span, a child of the caller's (W3C context in the metadata)."""
    carrier = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
    service, _, name = method[1:].partition("/")
    return tracer("kaiwa.grpc").start_as_current_span(
        method[1:], context=propagate.extract(carrier), kind=trace.SpanKind.SERVER,
        record_exception=False, set_status_on_exception=False,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name})


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    span = trace.get_current_span()
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN):
        span.set_status(trace.Status(trace.StatusCode.ERROR, message))
    await context.abort(code, message)


async def _abort_for(exc: Exception, method: str, context: grpc.aio.ServicerContext) -> None:
    if isinstance(exc, DomainError):
        await _abort(context, exc.code, exc.message)
    if isinstance(exc, TRANSIENT_DB_ERRORS):
        log.warning("database unavailable", extra={"fields": {"method": method, "error": repr(exc)}})
        await _abort(context, grpc.StatusCode.UNAVAILABLE, "database unavailable, retry shortly")
    # A defect of ours, not the caller's: logged with the trace id, answered as INTERNAL.
    log.exception("unhandled error", extra={"fields": {"method": method}})
    span_context = trace.get_current_span().get_span_context()
    reference = f" (trace {span_context.trace_id:032x})" if span_context.is_valid else ""
    await _abort(context, grpc.StatusCode.INTERNAL, f"internal error{reference}")


class _Undecodable:
    """Stands in for a request whose bytes did not decode, so the caller hears why."""

    def __init__(self, message: str):
        self.message = message


def _tolerant(deserializer):
    if deserializer is None:
        return None
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    expected = descriptor.full_name if descriptor is not None else "request"

    def deserialize(data: bytes):
        try:
            return deserializer(data)
        except Exception:
            return _Undecodable(f"malformed request: not a valid {expected} message")

    return deserialize


def _check_decoded(request) -> None:
    if isinstance(request, _Undecodable):
        raise InvalidArgument(request.message)


async def stream_responses(behavior, request, context) -> AsyncIterator:
    """The responses of a streaming handler in any style grpc.aio accepts: an async
    generator, a coroutine that sends with `context.write()`, or a plain iterator."""
    result = behavior(request, context)
    if hasattr(result, "__aiter__"):
        async for response in result:
            yield response
    elif inspect.isawaitable(result):
        await result
    else:
        for response in result or ():
            yield response
