"""Periodic background work, the same shape everywhere: run, then sleep until the next
round or until the service stops; an error in one round is logged and the next runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Awaitable, Callable

from .db import TRANSIENT_DB_ERRORS

log = logging.getLogger("kaiwa.loops")


async def every(interval: float, stop: asyncio.Event, work: Callable[[], Awaitable[object]], name: str) -> None:
    """Call `work` every `interval` seconds until `stop` is set."""
    while not stop.is_set():
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except TRANSIENT_DB_ERRORS as exc:
            log.warning("periodic work waits for the database", extra={"fields": {"loop": name, "error": repr(exc)}})
        except Exception:
            log.exception("periodic work failed", extra={"fields": {"loop": name}})
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
