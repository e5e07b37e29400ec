"""CRM-10: doing a write now, or keeping it until the CRM is back.

Built-in CRM: the play runs in the caller's transaction (a consumer's, an RPC's), with
its events in the outbox: all or nothing. External CRM: the write is stored in the
caller's transaction (so an event, once acknowledged, is never lost), then run by
the WriteRunner: at once for an RPC (`run_now`), and in the background for events and
for whatever had to wait. An outage, a 429 or refused credentials leave it queued with a
growing delay (the CRM's own time for a 429); a refusal parks it as a dead letter, which
an admin reads and replays (steps already done are kept).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import asyncpg
from kaiwa.events.v1.crm_bridge_pb2 import CrmVisitorArrived, SalesNotified
from kaiwa.events.v1.crm_pb2 import RecordCreated

from kaiwa_common.db import TRANSIENT_DB_ERRORS
from kaiwa_common.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from kaiwa_common.listener import PgListener, sleep_unless

from .adapters.builtin import BuiltinCrm
from .domain.connection import Connection
from .domain.errors import CrmAuthFailed, CrmRefused, CrmUnavailable
from .plays import Progress, Write, run
from .runtime import Runtime
from .store import tenancy
from .store import writes as queue

log = logging.getLogger("kaiwa.crm.writes")

DONE, QUEUED, DEAD = "done", "queued", "dead"
# The caller's mistake, found only when the play ran (e.g. a record gone from the CRM).
_CALLERS_FAULT = (NotFound, InvalidArgument, PermissionDenied, FailedPrecondition)
_MAX_UNEXPECTED = 5


@dataclass
class Outcome:
    state: str
    write_id: str = ""
    result: dict = field(default_factory=dict)
    error: str = ""


def channel(schema: str) -> str:
    return f"kaiwa_crm_writes_{schema}"


async def submit(
    rt: Runtime, conn: asyncpg.Connection, tenant: str, link: Connection, write: Write, by_caller: bool = False
) -> Outcome:
    """Do the write in this transaction (built-in CRM) or queue it (external CRM); one
    `by_caller` is left to the caller's run_now first (the runner takes it only if that
    caller goes away)."""
    if not link.external:
        result = await run(write, BuiltinCrm(conn, tenant), Progress())
        await emit(rt, conn, tenant, write, result)
        return Outcome(DONE, result=result)
    due_in = queue.LEASE_SECONDS if by_caller else 0
    write_id = await queue.enqueue(conn, tenant, write.key, write.kind, write.params, write.content, due_in)
    if not by_caller:
        await conn.execute("SELECT pg_notify($1, '')", channel(rt.schema))
    return Outcome(QUEUED, write_id=write_id)


async def emit(rt: Runtime, conn: asyncpg.Connection, tenant: str, write: Write, result: dict) -> None:
    """The events of a completed write, in the transaction that records it."""
    record = result.get("record")
    if result.get("created") and record:
        await rt.ctx.outbox.add(
            conn,
            tenant,
            RecordCreated(
                record_id=record["id"],
                record_type=record["type"],
                email=record["email"],
                chat_id=result.get("chat_id", ""),
                source=result.get("source", ""),
            ),
        )
    note = result.get("note")
    if write.kind == "notify_sales" and note:
        await rt.ctx.outbox.add(
            conn,
            tenant,
            SalesNotified(
                record_id=note["record_id"],
                owner=note["notify"],
                note_id=note["id"],
                text=note["text"],
                chat_id=write.params["note"].get("chat_id", ""),
                author=note["author"],
            ),
        )
    if write.kind == "page_viewed" and record and write.params.get("notify"):
        visit = result.get("visit") or {}
        await rt.ctx.outbox.add(
            conn,
            tenant,
            CrmVisitorArrived(
                record_id=record["id"],
                record_type=record["type"],
                owner=record["owner"],
                email=record["email"],
                visitor_id=write.params.get("visitor_id", ""),
                visit_id=visit.get("visit_id", ""),
                url=visit.get("url", ""),
            ),
        )


class WriteRunner:
    def __init__(self, rt: Runtime, schema: str):
        self.rt = rt
        self.channel = channel(schema)
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        listener = PgListener(
            self.rt.ctx.settings.database_url, {self.channel: lambda _: self._wake.set()}, on_connect=self._wake.set
        )
        listening = asyncio.create_task(listener.run(stop))
        try:
            while not stop.is_set():
                try:
                    busy = await self.run_due()
                except asyncio.CancelledError:
                    raise
                except TRANSIENT_DB_ERRORS as exc:
                    log.warning("write runner: database unavailable", extra={"fields": {"error": repr(exc)}})
                    busy = False
                if not busy:
                    self._wake.clear()
                    await sleep_unless(stop, self.rt.config.writes_poll, also=self._wake)
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
            await self.rt.close()

    async def run_due(self, limit: int = 20) -> bool:
        async with self.rt.pool.acquire() as conn:
            due = await queue.claim_due(conn, limit)
        for write in due:
            await self._execute(write, interactive=False)
        return len(due) == limit

    async def run_now(self, tenant: str, write_id: str) -> Outcome:
        """An RPC's own write, tried at once; a caller's mistake is raised (and the write
        dropped), a refusal is raised after parking it, an outage answers QUEUED."""
        async with self.rt.pool.acquire() as conn:
            write = await queue.claim(conn, tenant, write_id)
            if write is None:
                return await self.outcome(conn, tenant, write_id)
        return await self._execute(write, interactive=True)

    async def outcome(self, conn: asyncpg.Connection, tenant: str, write_id: str) -> Outcome:
        stored = await queue.get(conn, tenant, write_id)
        if stored is None:
            raise NotFound(f"write {write_id} not found")
        return Outcome(stored.state, write_id, stored.result or {}, stored.error)

    async def _execute(self, w: queue.StoredWrite, interactive: bool) -> Outcome:
        async with self.rt.pool.acquire() as conn:
            link = await tenancy.connection(conn, w.tenant)
            paused = await tenancy.paused_until(conn, w.tenant)
            crm = await self.rt.crm(conn, w.tenant, link) if link.external else None
        if not link.enabled or paused is not None:
            why = "the CRM integration is disabled" if not link.enabled else "the CRM asked to slow down (429)"
            return await self._later(w, why, paused or _now() + timedelta(seconds=self.rt.config.writes_max_backoff))
        write = Write(w.kind, w.key, w.params, w.content)
        if crm is None:  # the tenant went back to the built-in CRM: run it there
            return await self._builtin(w, write)
        try:
            result = await run(write, crm, Progress(w.progress, save=lambda p: self._save(w, p)))
        except CrmUnavailable as exc:
            if exc.retry_at is not None:
                await self._set_status(w.tenant, "rate limited", exc.retry_at)
            return await self._later(w, exc.message, exc.retry_at or self._backoff(w.attempts))
        except CrmAuthFailed as exc:
            await self._set_status(w.tenant, f"authentication failed: {exc.message}")
            return await self._later(w, exc.message, _now() + timedelta(seconds=self.rt.config.writes_max_backoff))
        except _CALLERS_FAULT as exc:
            if interactive and not isinstance(exc, CrmRefused):
                await self._drop(w)
                raise
            return await self._park(w, exc, interactive)
        except Exception as exc:  # a defect, or an answer we do not understand
            if w.attempts >= _MAX_UNEXPECTED:
                return await self._park(w, exc, interactive)
            log.warning("CRM write failed, will retry", extra={"fields": {"write": w.id, "error": repr(exc)}})
            return await self._later(w, repr(exc), self._backoff(w.attempts))
        return await self._finish(w, write, result)

    async def _builtin(self, w: queue.StoredWrite, write: Write) -> Outcome:
        async with self.rt.pool.acquire() as conn:
            async with conn.transaction():
                result = await run(write, BuiltinCrm(conn, w.tenant), Progress())
                await queue.finish(conn, w.tenant, w.id, result)
                await emit(self.rt, conn, w.tenant, write, result)
        return Outcome(DONE, w.id, result)

    async def _finish(self, w: queue.StoredWrite, write: Write, result: dict) -> Outcome:
        async with self.rt.pool.acquire() as conn:
            async with conn.transaction():
                await queue.finish(conn, w.tenant, w.id, result)
                await emit(self.rt, conn, w.tenant, write, result)
                for email in {w.params.get("email"), (result.get("record") or {}).get("email")} - {None, ""}:
                    await tenancy.forget_record(conn, w.tenant, email)
                await tenancy.set_status(conn, w.tenant, "ok")
        return Outcome(DONE, w.id, result)

    async def _later(self, w: queue.StoredWrite, error: str, at: datetime) -> Outcome:
        async with self.rt.pool.acquire() as conn:
            await queue.retry_later(conn, w.tenant, w.id, error, at)
        return Outcome(QUEUED, w.id, error=error)

    async def _park(self, w: queue.StoredWrite, exc: Exception, interactive: bool) -> Outcome:
        error = exc.message if isinstance(exc, DomainError) else repr(exc)
        async with self.rt.pool.acquire() as conn:
            await queue.park(conn, w.tenant, w.id, error)
        log.warning(
            "CRM refused a write: parked as a dead letter", extra={"fields": {"write": w.id, "kind": w.kind, "error": error}}
        )
        if interactive:
            raise FailedPrecondition(f"{error} (parked as dead letter {w.id}; an admin can replay it)")
        return Outcome(DEAD, w.id, error=error)

    async def _drop(self, w: queue.StoredWrite) -> None:
        async with self.rt.pool.acquire() as conn:
            await conn.execute("DELETE FROM writes WHERE tenant = $1 AND id = $2::uuid", w.tenant, w.id)

    async def _save(self, w: queue.StoredWrite, progress: dict) -> None:
        async with self.rt.pool.acquire() as conn:
            await queue.save_progress(conn, w.tenant, w.id, progress)

    async def _set_status(self, tenant: str, status: str, paused: datetime | None = None) -> None:
        async with self.rt.pool.acquire() as conn:
            await tenancy.set_status(conn, tenant, status, paused)

    def _backoff(self, attempts: int) -> datetime:
        return _now() + timedelta(seconds=min(0.5 * 2 ** max(attempts - 1, 0), self.rt.config.writes_max_backoff))


def _now() -> datetime:
    return datetime.now(timezone.utc)
