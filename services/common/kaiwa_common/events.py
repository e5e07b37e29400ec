"""The one Event envelope, subjects and streams."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from google.protobuf.message import Message
from kaiwa.events.v1.envelope_pb2 import Event

from .telemetry import current_trace_context

SERVICES = ("routing", "conversation", "visitor", "crm_bridge", "ai_assist")

# Event type (the oneof field name) by payload message type, e.g. ChatStarted -> chat_started.
_TYPE_BY_PAYLOAD = {f.message_type.full_name: f.name for f in Event.DESCRIPTOR.oneofs_by_name["payload"].fields}


def event_type_of(payload: Message) -> str:
    try:
        return _TYPE_BY_PAYLOAD[payload.DESCRIPTOR.full_name]
    except KeyError:
        raise ValueError(f"{payload.DESCRIPTOR.full_name} is not an Event payload") from None


def make_event(source: str, tenant: str, payload: Message, occurred_at: datetime | None = None) -> Event:
    event_type = event_type_of(payload)
    event = Event(id=str(uuid.uuid4()), type=event_type, tenant=tenant, source=source)
    event.occurred_at.FromDatetime(occurred_at or datetime.now(timezone.utc))
    event.trace_context.update(current_trace_context())
    getattr(event, event_type).CopyFrom(payload)
    return event


def subject(prefix: str, source: str, event_type: str) -> str:
    return f"{prefix}.{source}.{event_type}"


def stream_name(prefix: str, source: str) -> str:
    return f"{prefix}_{source}".upper().replace(".", "_").replace("-", "_")


# How long a stream keeps an event: the longest an event can be redelivered after.
STREAM_MAX_AGE = timedelta(days=7)


async def ensure_streams(js, prefix: str, replicas: int = 1) -> None:
    """One stream per producing service, holding its events (idempotent); `replicas`
    copies of each on a NATS cluster (KAIWA_STREAM_REPLICAS)."""
    from nats.js.api import StreamConfig, StorageType
    from nats.js.errors import BadRequestError

    for source in SERVICES:
        config = StreamConfig(
            name=stream_name(prefix, source),
            subjects=[f"{prefix}.{source}.>"],
            storage=StorageType.FILE,
            duplicate_window=600.0,
            max_age=STREAM_MAX_AGE.total_seconds(),
            num_replicas=replicas,
        )
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
