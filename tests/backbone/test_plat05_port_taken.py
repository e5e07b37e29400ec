"""PLAT-05: a second copy of a service never silently shares the first one's port."""

from __future__ import annotations

import pytest

from kaiwa_common.app import ServiceRunner
from kaiwa_common.config import Settings
from tests.backbone.worker import build_spec


async def test_plat05_service_refuses_a_port_another_copy_listens_on(names):
    settings = Settings(subject_prefix=names["prefix"])
    first = await ServiceRunner(build_spec(names["producer"]), settings, port=0).start()
    try:
        second = ServiceRunner(build_spec(names["producer"]), settings, port=first.port)
        with pytest.raises(RuntimeError, match=str(first.port)):
            await second.start()
        await second.stop(grace=0)
    finally:
        await first.stop(grace=1)
