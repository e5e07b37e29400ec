"""The conversation service, started once for this folder's tests (in-process, real
PostgreSQL and NATS, its own schema and subject prefix, countdowns compressed by
COUNTDOWN_SCALE), with a real routing service beside it (see
helpers.conversation_with_routing: routing learns every chat from conversation's
events; routing's own events reach conversation only when a test publishes them)."""

from __future__ import annotations

import uuid

import pytest

from kaiwa_conversation.main import make_spec
from services.conversation.tests.helpers import COUNTDOWN_SCALE, SETTLE_SECONDS, conversation_with_routing


@pytest.fixture(scope="session")
async def conv():
    schema = f"conv_{uuid.uuid4().hex[:8]}"
    spec = make_spec(schema=schema, countdown_scale=COUNTDOWN_SCALE, settle_seconds=SETTLE_SECONDS)
    async with conversation_with_routing(spec, schema) as harness:
        yield harness
