"""The conversation service, started once for this folder's tests (in-process, real
PostgreSQL and NATS, its own schema, countdowns compressed by COUNTDOWN_SCALE)."""

from __future__ import annotations

import uuid

import pytest
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub

from kaiwa_conversation.main import make_spec
from services.conversation.tests.helpers import COUNTDOWN_SCALE, Harness, new_prefix, service
from tests.fixtures import channel_to


@pytest.fixture(scope="session")
async def conv():
    schema = f"conv_{uuid.uuid4().hex[:8]}"
    async with service(make_spec(schema=schema, countdown_scale=COUNTDOWN_SCALE), schema, new_prefix()) as runner:
        async with channel_to(runner) as channel:
            yield Harness(runner, ConversationServiceStub(channel))
