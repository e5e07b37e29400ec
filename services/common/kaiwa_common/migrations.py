"""Numbered .sql files applied once each, in order, into one schema per service.

The shared infrastructure tables (outbox, processed events, dead letters, timers) are
applied first into every service's schema, then the service's own files.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import asyncpg

log = logging.getLogger("kaiwa.migrations")

COMMON_DIR = Path(__file__).parent / "migrations"


def _files(directory: Path, label: str) -> list[tuple[str, Path]]:
    return [(f"{label}/{p.name}", p) for p in sorted(directory.glob("*.sql"))]


async def migrate(pool: asyncpg.Pool, schema: str, service_dir: Path | None) -> list[str]:
    files = _files(COMMON_DIR, "common")
    if service_dir is not None:
        files += _files(service_dir, schema)
    applied_now = []
    async with pool.acquire() as conn:
        lock = zlib.crc32(f"kaiwa-migrate-{schema}".encode())
        await conn.execute("SELECT pg_advisory_lock($1)", lock)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                "name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')}
            for name, path in files:
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
                    await conn.execute(path.read_text())
                    await conn.execute(f'INSERT INTO "{schema}".schema_migrations(name) VALUES ($1)', name)
                applied_now.append(name)
                log.info("migration applied", extra={"fields": {"schema": schema, "name": name}})
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock)
    return applied_now
