"""A tiny test-only service built on kaiwa_common, to prove the event backbone.

It is a real service: ServiceSpec, migrations, gRPC API behind the shared interceptor,
outbox + relay, a durable consumer, timers. Run as a process with
`python tests/backbone/worker.py` (configured by the environment, see `spec_from_env`)
or in-process through `build_spec`.

- gRPC `kaiwa.backbone.v1.Backbone` (described at run time from well-known types, so
  reflection can describe it without a .proto in protos/):
  Write(StringValue note) -> StringValue event id: a `notes` row and one outbox event,
  in one transaction. Whoami, Slow (records that it started, then sleeps), Ping (public),
  Unlisted (deliberately missing from the policy), Count / Countdown (server streaming,
  written with context.write() and as an async generator).
- Producer: events are `AgentAvailabilityChanged(agent_id=<note>)` from source "routing"
  (streams and subjects live under the test's own KAIWA_SUBJECT_PREFIX).
- Consumer (when a durable name is given): each event adds one `applied` row. Notes
  starting with "permanent" raise PermanentEventError, "flaky" fail transiently twice,
  "boom" raise an unexpected error every time.
- Timer kind "bb_ping": each firing adds one `timer_fired` row; keys starting with
  "flaky" fail on their first attempt.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2, wrappers_pb2
from kaiwa.events.v1.routing_pb2 import AgentAvailabilityChanged

from kaiwa_common.app import ServiceContext, ServiceSpec
from kaiwa_common.auth import current_identity
from kaiwa_common.consumer import ConsumerSpec
from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import InvalidArgument, PermanentEventError, Unavailable
from kaiwa_common.interceptor import PUBLIC
from kaiwa_common.outbox import Outbox
from kaiwa_common.timers import Timer

SERVICE = "kaiwa.backbone.v1.Backbone"
SOURCE = "routing"  # a producing service known to ensure_streams
EVENT_TYPE = "agent_availability_changed"
TIMER_KIND = "bb_ping"
MIGRATIONS = Path(__file__).with_name("migrations")

POLICY = {
    "Write": {"admin", "agent"},
    "Whoami": {"admin", "agent", "service"},
    "Slow": {"admin", "agent"},
    "Ping": PUBLIC,
    "Count": {"admin", "agent"},
    "Countdown": {"admin", "agent"},
    # "Unlisted" is left out on purpose: a method without a policy is refused.
}

# Deliveries seen per note, in this process (for the transient-error test).
ATTEMPTS: Counter[str] = Counter()

_METHODS = {  # name -> (request type, response type, server streaming)
    "Write": (wrappers_pb2.StringValue, wrappers_pb2.StringValue, False),
    "Whoami": (empty_pb2.Empty, wrappers_pb2.StringValue, False),
    "Slow": (wrappers_pb2.DoubleValue, empty_pb2.Empty, False),
    "Ping": (empty_pb2.Empty, empty_pb2.Empty, False),
    "Unlisted": (empty_pb2.Empty, empty_pb2.Empty, False),
    "Count": (wrappers_pb2.Int64Value, wrappers_pb2.Int64Value, True),
    "Countdown": (wrappers_pb2.Int64Value, wrappers_pb2.Int64Value, True),
}


def _register_descriptor() -> None:
    """Describe the service in the default pool, so server reflection can serve it."""
    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(SERVICE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto(
        name="kaiwa/backbone/v1/backbone_test.proto",
        package="kaiwa.backbone.v1",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto", "google/protobuf/empty.proto"],
    )
    service = proto.service.add(name="Backbone")
    for name, (request, response, streaming) in _METHODS.items():
        service.method.add(
            name=name,
            input_type=f".{request.DESCRIPTOR.full_name}",
            output_type=f".{response.DESCRIPTOR.full_name}",
            server_streaming=streaming,
        )
    pool.AddSerializedFile(proto.SerializeToString())


_register_descriptor()


async def write_note(ctx: ServiceContext, conn, tenant: str, note: str) -> str:
    event = await ctx.outbox.add(conn, tenant, AgentAvailabilityChanged(agent_id=note, availability="online"))
    await conn.execute("INSERT INTO notes (tenant, note, event_id) VALUES ($1, $2, $3)", tenant, note, event.id)
    return event.id


async def produce(
    pool,
    outbox: Outbox,
    tenant: str,
    notes: list[str],
    per_transaction: int = 50,
    written: list[str] | None = None,
    pause: float = 0.0,
) -> list[str]:
    """Writes one event per note into the outbox, `per_transaction` events per transaction,
    as a stream (`pause` seconds between transactions). Committed ids go to `written`."""
    written = [] if written is None else written
    for start in range(0, len(notes), per_transaction):
        async with unit_of_work(pool) as conn:
            batch = [
                (await outbox.add(conn, tenant, AgentAvailabilityChanged(agent_id=note, availability="online"))).id
                for note in notes[start : start + per_transaction]
            ]
        written.extend(batch)
        await asyncio.sleep(pause)
    return written


class Backbone:
    def __init__(self, ctx: ServiceContext):
        self.ctx = ctx

    async def Write(self, request, context):
        if not request.value.strip():
            raise InvalidArgument("note must not be empty")
        tenant = current_identity().tenant
        async with unit_of_work(self.ctx.pool) as conn:
            event_id = await write_note(self.ctx, conn, tenant, request.value)
        return wrappers_pb2.StringValue(value=event_id)

    async def Whoami(self, request, context):
        who = current_identity()
        return wrappers_pb2.StringValue(value=f"{who.tenant}|{who.sub}|{who.role}")

    async def Slow(self, request, context):
        await self.ctx.pool.execute("INSERT INTO slow_calls (tenant) VALUES ($1)", current_identity().tenant)
        await asyncio.sleep(request.value)
        return empty_pb2.Empty()

    async def Ping(self, request, context):
        return empty_pb2.Empty()

    async def Unlisted(self, request, context):
        return empty_pb2.Empty()

    async def Count(self, request, context):
        """Server streaming, sent with context.write() (the style the health Watch uses)."""
        for i in range(request.value):
            await context.write(wrappers_pb2.Int64Value(value=i))

    async def Countdown(self, request, context):
        """Server streaming as an async generator."""
        for i in range(request.value, 0, -1):
            yield wrappers_pb2.Int64Value(value=i)


def add_servicers(server: grpc.aio.Server, ctx: ServiceContext) -> None:
    servicer = Backbone(ctx)
    handlers = {
        name: (grpc.unary_stream_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler)(
            getattr(servicer, name), request_deserializer=request.FromString, response_serializer=response.SerializeToString
        )
        for name, (request, response, streaming) in _METHODS.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def make_consumer(name: str, ack_wait: float = 30.0) -> ConsumerSpec:
    async def apply(event, conn) -> None:
        note = event.agent_availability_changed.agent_id
        ATTEMPTS[note] += 1
        if note.startswith("permanent"):
            raise PermanentEventError(f"note {note!r} can never be applied")
        if note.startswith("flaky") and ATTEMPTS[note] <= 2:
            raise Unavailable(f"note {note!r}: downstream briefly unavailable")
        if note.startswith("boom"):
            raise RuntimeError(f"note {note!r}: handler bug")
        await conn.execute(
            "INSERT INTO applied (tenant, consumer, event_id, note) VALUES ($1, $2, $3, $4)", event.tenant, name, event.id, note
        )

    return ConsumerSpec(name, SOURCE, [EVENT_TYPE], apply, max_attempts=2, ack_wait=ack_wait)


def timer_handler(runner: str):
    async def fire(timer: Timer, conn) -> None:
        if timer.key.startswith("flaky") and timer.attempts == 0:
            raise RuntimeError(f"timer {timer.key}: first attempt fails")
        await conn.execute("INSERT INTO timer_fired (tenant, key, runner) VALUES ($1, $2, $3)", timer.tenant, timer.key, runner)
        await asyncio.sleep(0.002)  # hold the claimed batch a moment, as real handlers do

    return fire


def build_spec(schema: str, consumer: str | None = None, ack_wait: float = 30.0, timers: bool = False) -> ServiceSpec:
    return ServiceSpec(
        name=SOURCE,
        schema=schema,
        migrations=MIGRATIONS,
        grpc_services=[SERVICE],
        policy=POLICY,
        add_servicers=add_servicers,
        consumers=lambda ctx: [make_consumer(consumer, ack_wait)] if consumer else [],
        timers=lambda ctx: {TIMER_KIND: timer_handler(f"pid{os.getpid()}")} if timers else {},
    )


def spec_from_env() -> ServiceSpec:
    """BB_SCHEMA, BB_CONSUMER (durable name; empty: no consumer), BB_ACK_WAIT, BB_TIMERS=1.
    Port, database, NATS, subject prefix and secrets come from the usual KAIWA_* variables
    (the port from KAIWA_ROUTING_PORT, as the service is named after its event source)."""
    return build_spec(
        os.environ["BB_SCHEMA"],
        os.environ.get("BB_CONSUMER") or None,
        float(os.environ.get("BB_ACK_WAIT", "30")),
        os.environ.get("BB_TIMERS") == "1",
    )


if __name__ == "__main__":
    from kaiwa_common.app import run

    run(spec_from_env())
    sys.exit(0)
