"""Test infrastructure shared by every test in the repository.

Real PostgreSQL and a real NATS server with JetStream: taken from KAIWA_DATABASE_URL /
KAIWA_NATS_URL when set, otherwise started for this test run on free ports in a
temporary folder (and removed afterwards). Tests stay independent by using their own
tenant (the `tenant` fixture); fault tests that stop a server start their own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from kaiwa_common.devservers import start_missing_servers, stop_servers

pytest_plugins = ["tests.fixtures"]

# CI replays the same examples every run (a red build always means a change broke
# something); local runs keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session", autouse=True)
def infra():
    """Database and NATS URLs for the run, exported as KAIWA_DATABASE_URL / KAIWA_NATS_URL."""
    workdir = Path(tempfile.mkdtemp(prefix="kaiwa-test-"))
    started = start_missing_servers(workdir, database="kaiwa_test", durable=False)
    os.environ.setdefault("KAIWA_JWT_SECRET", "kaiwa-test-secret-at-least-32-bytes-long")
    # Short poll intervals keep timer tests fast without changing behaviour.
    os.environ.setdefault("KAIWA_TIMER_POLL", "0.05")
    yield {"database_url": os.environ["KAIWA_DATABASE_URL"], "nats_url": os.environ["KAIWA_NATS_URL"]}
    stop_servers(started)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def tenant() -> str:
    """A fresh tenant (portal) per test, so tests never see each other's data."""
    return f"t-{uuid.uuid4().hex[:12]}"
