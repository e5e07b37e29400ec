"""One server interceptor for every service: readiness, identity, role policy, errors.

- not ready yet (PostgreSQL or NATS not up)  -> UNAVAILABLE
- no or bad token                            -> UNAUTHENTICATED
- role not allowed for the method            -> PERMISSION_DENIED
- request bytes that do not decode           -> INVALID_ARGUMENT (grpc would say UNKNOWN)
- a request field no handler may see         -> INVALID_ARGUMENT naming it (validation.py)
- DomainError raised by a handler            -> its status code and message (statuses.py);
                                                a field at fault also as google.rpc.BadRequest
- data the database refuses (class 22)       -> INVALID_ARGUMENT (a backstop: validation
                                                should have caught it, so it is logged)
- database briefly unreachable               -> UNAVAILABLE (safe to retry: nothing committed)
- anything else (a defect of ours)            -> INTERNAL, logged with its trace id

It also opens the call's SERVER span and counts the call in the service's metrics, by
method and status code, with its latency (health checks and reflection are neither).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import AsyncIterator, Callable

import grpc
from google.protobuf.message import Message
from opentelemetry import propagate, trace

from .auth import Identity, identity_from_metadata, reset_identity, set_identity
from .config import Settings
from .metrics import Metrics
from .errors import DomainError, InvalidArgument, PermissionDenied, Unavailable
from .statuses import abort_domain, abort_for
from .telemetry import tracer
from .validation import check_request

log = logging.getLogger("kaiwa.grpc")

PUBLIC = "public"  # policy value for methods that need no token
EXEMPT_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class KaiwaInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        settings: Settings,
        policy: dict[str, set[str] | str],
        is_ready: Callable[[], bool],
        metrics: Metrics | None = None,
    ):
        self.settings = settings
        self.metrics = metrics
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
        metrics = self.metrics

        async def unary(request, context: grpc.aio.ServicerContext):
            if metrics is not None:
                started = time.perf_counter()
                try:
                    return await guarded(request, context)
                except asyncio.CancelledError:
                    context.set_code(grpc.StatusCode.CANCELLED)
                    raise
                finally:
                    metrics.rpc(method, context.code(), time.perf_counter() - started)
            return await guarded(request, context)

        async def guarded(request, context: grpc.aio.ServicerContext):
            with _server_span(method, context):
                token = await self._enter(method, request, context)
                try:
                    return await behavior(_checked(request), context)
                except (grpc.aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    await abort_for(exc, method, context)
                finally:
                    reset_identity(token)

        return unary

    def _wrap_stream(self, method: str, behavior):
        metrics = self.metrics

        async def stream(request, context: grpc.aio.ServicerContext):
            if metrics is None:
                async for response in guarded(request, context):
                    yield response
                return
            started = time.perf_counter()
            try:
                async for response in guarded(request, context):
                    yield response
            except (asyncio.CancelledError, GeneratorExit):
                context.set_code(grpc.StatusCode.CANCELLED)
                raise
            finally:
                metrics.rpc(method, context.code(), time.perf_counter() - started)

        async def guarded(request, context: grpc.aio.ServicerContext):
            # The span is current only while a step runs, never across a `yield`: a stream the
            # client cancels is closed from another context, where detaching it would fail.
            span = _server_span(method, context, current=False)
            token = None
            try:
                with _current(span):
                    token = await self._enter(method, request, context)
                responses = stream_responses(behavior, _checked(request), context).__aiter__()
                while True:
                    with _current(span):
                        try:
                            response = await responses.__anext__()
                        except StopAsyncIteration:
                            return
                        except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit):
                            raise
                        except Exception as exc:
                            await abort_for(exc, method, context)
                    yield response
            finally:
                if token is not None:
                    reset_identity(token)
                span.end()

        return stream

    async def _enter(self, method: str, request, context: grpc.aio.ServicerContext):
        """Admit the call and bind its identity; aborts with the right status otherwise."""
        try:
            identity = self._admit(method, context.invocation_metadata())
            if _is_single_message(request):
                _check_decoded(request)
                check_request(request)
        except DomainError as exc:
            await abort_domain(context, exc)
        return set_identity(identity)


def _server_span(method: str, context: grpc.aio.ServicerContext, current: bool = True):
    """The call's SERVER span, a child of the caller's (W3C context in the metadata): as a
    context manager that makes it current, or (current=False) started and returned."""
    carrier = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
    service, _, name = method[1:].partition("/")
    start = tracer("kaiwa.grpc").start_as_current_span if current else tracer("kaiwa.grpc").start_span
    options = {"record_exception": False, "set_status_on_exception": False} if current else {}
    return start(
        method[1:],
        context=propagate.extract(carrier),
        kind=trace.SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        **options,
    )


def _current(span: trace.Span):
    return trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)


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


def _is_single_message(request) -> bool:
    return isinstance(request, (Message, _Undecodable))


def _checked(request):
    """A client stream whose every message is checked as it arrives; a single request as is."""
    if _is_single_message(request):
        return request
    return _checked_stream(request)


async def _checked_stream(requests):
    async for request in requests:
        check_request(request)
        yield request


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
