"""JetStream consumers of other services' events (use cases in events.py).

conversation chat_started    the visitor's e-mail, known from now on
conversation chat_ended      CRM-03..08 (a missed chat ends with reason "missed", with
                             routing's reason and the time waited: its note comes from here)
visitor      page_viewed     CRM-08 visits, CRM-03 "accessed"
visitor      visitor_identified  VIS-03/CRM-08: the visitor is known by e-mail from now on;
                             its page views so far become visits on the matching record

A chat or page view another service no longer knows (NOT_FOUND) can never be applied:
the event is parked as a dead letter instead of being retried.
"""

from __future__ import annotations

import asyncpg
from kaiwa.events.v1.envelope_pb2 import Event

from kaiwa_common.consumer import ConsumerSpec
from kaiwa_common.errors import NotFound, PermanentEventError

from . import events
from .runtime import Runtime

_CONVERSATION = {"chat_started": events.on_chat_started, "chat_ended": events.on_chat_ended}
_VISITOR = {"page_viewed": events.on_page_viewed, "visitor_identified": events.on_visitor_identified}


def consumers(rt: Runtime, durable: str) -> list[ConsumerSpec]:
    async def conversation(event: Event, conn: asyncpg.Connection) -> None:
        await _applied(_CONVERSATION[event.type], rt, event, conn)

    async def visitor(event: Event, conn: asyncpg.Connection) -> None:
        await _applied(_VISITOR[event.type], rt, event, conn)

    return [
        ConsumerSpec(durable, "conversation", list(_CONVERSATION), conversation),
        ConsumerSpec(f"{durable}_visitor", "visitor", list(_VISITOR), visitor),
    ]


async def _applied(handler, rt: Runtime, event: Event, conn: asyncpg.Connection) -> None:
    try:
        await handler(rt, event, conn)
    except NotFound as exc:
        raise PermanentEventError(exc.message) from None
