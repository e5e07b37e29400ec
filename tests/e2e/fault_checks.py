"""What the fault suite (test_plat01_fault_suite.py) checks afterwards, read from the
services' databases and the JetStream streams, never from the services' answers alone."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

import asyncpg
import nats
from kaiwa.events.v1.envelope_pb2 import Event

from kaiwa_common.db import TRANSIENT_DB_ERRORS
from kaiwa_common.events import SERVICES, stream_name
from tests.e2e.fault_load import ANSWERED, COUNTDOWN, MISSED, Ledger


async def schemas_with(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch("SELECT table_schema FROM information_schema.tables WHERE table_name = $1", table)
    return sorted(r["table_schema"] for r in rows)


async def total(conn: asyncpg.Connection, table: str) -> int:
    """Rows of `table` summed over every service's schema."""
    return sum([await conn.fetchval(f'SELECT count(*) FROM "{schema}".{table}') for schema in await schemas_with(conn, table)])


class Streams:
    """Every event each service published, and every durable consumer's state."""

    def __init__(self, events: list[tuple[str, Event]], consumers: list):
        self.events = events  # (subject, event) in stream order
        self.consumers = consumers  # nats.js.api.ConsumerInfo

    @classmethod
    async def read(cls, nats_url: str, prefix: str) -> "Streams":
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            events, consumers = [], []
            for source in SERVICES:
                name = stream_name(prefix, source)
                state = (await js.stream_info(name)).state
                for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
                    msg = await js.get_msg(name, seq)
                    events.append((msg.subject, Event.FromString(msg.data)))
                consumers += await js.consumers_info(name)
            return cls(events, consumers)
        finally:
            await nc.close()

    def of_type(self, event_type: str) -> list[Event]:
        return [event for _, event in self.events if event.type == event_type]

    def per_chat(self, event_type: str) -> Counter:
        return Counter(getattr(event, event_type).chat_id for event in self.of_type(event_type))

    def settled(self) -> bool:
        """Every durable consumer has acknowledged everything delivered to it."""
        return all(c.num_pending == 0 and c.num_ack_pending == 0 for c in self.consumers)

    def matching(self, consumer) -> set[str]:
        filters = consumer.config.filter_subjects or [consumer.config.filter_subject]
        return {event.id for subject, event in self.events if subject in filters}


async def check_events_applied_once(conn: asyncpg.Connection, streams: Streams) -> int:
    """Each consumer recorded exactly the events its subjects carry (its effect commits with
    that record), none parked; every event is in its stream once. Returns events applied."""
    ids = Counter(event.id for _, event in streams.events)
    assert not [i for i, n in ids.items() if n > 1], "an event was published twice"
    applied: dict[str, set[str]] = defaultdict(set)
    for schema in await schemas_with(conn, "processed_events"):
        for row in await conn.fetch(f'SELECT consumer, event_id FROM "{schema}".processed_events'):
            applied[row["consumer"]].add(row["event_id"])
    for consumer in streams.consumers:
        expected = streams.matching(consumer)
        missing, foreign = expected - applied[consumer.name], applied[consumer.name] - expected
        assert not missing and not foreign, f"{consumer.name}: {len(missing)} events not applied, {len(foreign)} unknown"
    assert await total(conn, "dead_letters") == 0, "events were parked as poison"
    return sum(len(v) for v in applied.values())


async def check_chat_events(streams: Streams, ledger: Ledger) -> None:
    """One chat_started and one chat_ended per chat; one assignment per answered chat,
    one chat_missed per missed chat (routing's missed-chat timer fired once)."""
    kinds = ledger.chats
    started, ended = streams.per_chat("chat_started"), streams.per_chat("chat_ended")
    assigned, missed = streams.per_chat("chat_assigned"), streams.per_chat("chat_missed")
    for chat_id, kind in kinds.items():
        assert started[chat_id] == 1 and ended[chat_id] == 1, (chat_id, started[chat_id], ended[chat_id])
        assert assigned[chat_id] == (kind != MISSED), f"chat {chat_id} ({kind}) assigned {assigned[chat_id]} times"
        assert missed[chat_id] == (kind == MISSED), f"chat {chat_id} ({kind}) missed {missed[chat_id]} times"


async def check_messages(conn: asyncpg.Connection, streams: Streams, ledger: Ledger) -> int:
    """Every acknowledged message stored once, at the sequence its answer gave, and
    published once as message_sent. Returns the stored client messages."""
    rows = await conn.fetch(
        "SELECT id, chat_id, seq, client_message_id FROM conversation.messages WHERE client_message_id IS NOT NULL"
    )
    by_key = defaultdict(list)
    for row in rows:
        by_key[row["client_message_id"]].append((str(row["chat_id"]), row["seq"]))
    lost = [key for key in ledger.acked if key not in by_key]
    assert not lost, f"{len(lost)} acknowledged messages lost, e.g. {lost[:5]}"
    twice = {key: at for key, at in by_key.items() if len(at) > 1}
    assert not twice, f"messages stored twice: {list(twice.items())[:5]}"
    moved = [key for key, at in ledger.acked.items() if by_key[key] != [at]]
    assert not moved, f"stored elsewhere than acknowledged: {moved[:5]}"
    published = Counter(event.message_sent.message_id for event in streams.of_type("message_sent"))
    unpublished = [str(row["id"]) for row in rows if published[str(row["id"])] != 1]
    assert not unpublished, f"{len(unpublished)} stored messages not published exactly once"
    return len(rows)


async def system_messages(conn: asyncpg.Connection) -> dict[str, Counter]:
    rows = await conn.fetch("SELECT chat_id, body->'system'->>'type' AS type FROM conversation.messages WHERE kind = 'system'")
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        counts[str(row["chat_id"])][row["type"]] += 1
    return counts


async def check_timers_and_assignments(conn: asyncpg.Connection, ledger: Ledger) -> Counter:
    """Countdowns ended their chats once, missed chats were ended once as missed, each
    answered chat shows one assignment (conversation) and has one (routing), which is
    released again. Returns the timers fired by kind."""
    system = await system_messages(conn)
    reasons = {str(r["id"]): r["end_reason"] for r in await conn.fetch("SELECT id, end_reason FROM conversation.chats")}
    history = Counter(str(r["chat_id"]) for r in await conn.fetch("SELECT chat_id FROM routing.assignments"))
    expected_reason = {ANSWERED: "agent", COUNTDOWN: "countdown", MISSED: "missed"}
    fired: Counter = Counter()
    for chat_id, kind in ledger.chats.items():
        shown = system[chat_id]
        assert reasons[chat_id] == expected_reason[kind], (chat_id, kind, reasons[chat_id])
        assert shown["ended"] == 1, (chat_id, kind, shown)
        assert shown["accepted"] + shown["assigned"] == (kind != MISSED), (chat_id, kind, shown)
        assert history[chat_id] == (kind != MISSED), f"chat {chat_id} has {history[chat_id]} assignments"
        if kind == COUNTDOWN:
            assert shown["countdown_started"] == 1, (chat_id, shown)
            fired["countdown"] += 1
        if kind == MISSED:
            assert shown["missed"] == 1, (chat_id, shown)
            fired["missed chat"] += 1
    assert await conn.fetchval("SELECT count(*) FROM routing.assignments WHERE released_at IS NULL") == 0
    assert await conn.fetchval("SELECT count(*) FROM routing.agents WHERE active_chats <> 0") == 0
    return fired


def delivered_in_order(ledger: Ledger, stored: dict[str, list[int]]) -> bool:
    """Each watcher got every durable event of its chat once, in order."""
    return all(ledger.delivered.get(chat_id) == seqs for chat_id, seqs in stored.items())


async def delivered_messages(conn: asyncpg.Connection, ledger: Ledger) -> int:
    """Stored messages of the load's chats that their watcher received."""
    rows = await conn.fetch("SELECT chat_id, seq FROM conversation.messages")
    seen = {chat_id: set(seqs) for chat_id, seqs in ledger.delivered.items()}
    return sum(row["seq"] in seen.get(str(row["chat_id"]), ()) for row in rows)


async def stored_seqs(conn: asyncpg.Connection) -> dict[str, list[int]]:
    rows = await conn.fetch(
        "SELECT chat_id, seq FROM conversation.messages UNION ALL SELECT chat_id, seq FROM conversation.chat_events ORDER BY 1, 2"
    )
    seqs: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        seqs[str(row["chat_id"])].append(row["seq"])
    return seqs


class CapacitySampler:
    """Samples, in one snapshot each, every agent's open assignments against their
    maximum while the load runs (connection errors during a PostgreSQL restart skipped)."""

    QUERY = (
        "SELECT a.id, a.max_chats, a.active_chats, count(s.id) AS open FROM routing.agents a "
        "LEFT JOIN routing.assignments s ON s.agent_id = a.id AND s.released_at IS NULL "
        "GROUP BY a.id, a.max_chats, a.active_chats"
    )

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.samples = 0
        self.over: list[dict] = []
        self.peak = 0

    async def run(self, interval: float = 0.25) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self.database_url, timeout=2)
                try:
                    while True:
                        self._record(await conn.fetch(self.QUERY, timeout=2))
                        await asyncio.sleep(interval)
                finally:
                    await conn.close(timeout=1)
            except (*TRANSIENT_DB_ERRORS, OSError, asyncio.TimeoutError):
                await asyncio.sleep(interval)

    def _record(self, rows) -> None:
        self.samples += 1
        for row in rows:
            self.peak = max(self.peak, row["open"])
            if row["open"] > row["max_chats"] or row["active_chats"] > row["max_chats"] or row["open"] != row["active_chats"]:
                self.over.append(dict(row))
