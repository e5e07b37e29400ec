"""Other services' events the visitor service applies (kaiwa_common.consumer: effect and
processed-event row in one transaction, ack after commit):

    conversation  chat_started    the visit's chat action (VIS-01), the chat count and
                                  lead score; the chat's name and e-mail identify the
                                  visitor (VIS-03; merged if another has the e-mail;
                                  CRM facts fetched by the refresher, never inside here)
    crm_bridge    record_created  visitors with that e-mail get the CRM link at once and
                                  their other facts on the refresher's next round

A chat of a visitor this service never tracked (a messaging channel's customer, whose id
is not one of ours) changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from kaiwa.events.v1.envelope_pb2 import Event

from kaiwa_common.consumer import ConsumerSpec
from kaiwa_common.emails import normalize_email
from kaiwa_common.errors import InvalidArgument
from kaiwa_common.protobuf import to_datetime

from . import store
from .context import Deps
from .profiles import apply_identity, rescore


def conversation_consumer(deps: Deps, durable: str) -> ConsumerSpec:
    async def handle(event: Event, conn) -> None:
        started = event.chat_started
        try:
            visitor_id = uuid.UUID(started.visitor_id)
        except ValueError:
            return  # not a visitor of ours (a messaging channel's customer id)
        target = await store.record_chat(
            conn, event.tenant, started.chat_id, visitor_id, to_datetime(event.occurred_at) or datetime.now(timezone.utc)
        )
        if target is None:
            return
        await rescore(conn, event.tenant, target)
        try:
            email = normalize_email(started.visitor_email) if started.visitor_email.strip() else ""
        except InvalidArgument:
            email = ""
        if email:
            who = (" ".join(started.visitor_name.split())[:100], email, "", "chat")
            await apply_identity(deps, conn, event.tenant, target, who, create=False)

    return ConsumerSpec(durable, "conversation", ["chat_started"], handle)


def crm_consumer(deps: Deps, durable: str) -> ConsumerSpec:
    async def handle(event: Event, conn) -> None:
        created = event.record_created
        try:
            email = normalize_email(created.email)
        except InvalidArgument:
            return
        record_type = "contact" if created.record_type == "contact" else "lead"
        for visitor_id in await store.forget_crm_of_email(conn, event.tenant, email, created.record_id, record_type):
            await rescore(conn, event.tenant, visitor_id)

    return ConsumerSpec(durable, "crm_bridge", ["record_created"], handle)
