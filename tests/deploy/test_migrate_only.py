"""PLAT-05: the init container's entry point applies a service's migrations and exits, and
two of them at once (replicas starting together) apply each file exactly once."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import asyncpg


async def test_plat05_migrate_only_applies_a_services_schema_once_even_when_raced(infra):
    database = f"mig_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(infra["database_url"])
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = infra["database_url"].rsplit("/", 1)[0] + f"/{database}"
    try:
        env = {**os.environ, "KAIWA_DATABASE_URL": url}
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "kaiwa_common.migrate_only", "routing", env=env, stderr=asyncio.subprocess.PIPE
            )
            for _ in range(2)
        ]
        results = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [err.decode()[-2000:] for _, err in results]
        conn = await asyncpg.connect(url)
        try:
            names = [r["name"] for r in await conn.fetch("SELECT name FROM routing.schema_migrations ORDER BY name")]
            assert "common/000_infra.sql" in names and "routing/001_routing.sql" in names
            assert len(names) == len(set(names))
            assert await conn.fetchval("SELECT to_regclass('routing.chats') IS NOT NULL")
        finally:
            await conn.close()
        bad = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kaiwa_common.migrate_only", "nosuch", env=env, stderr=asyncio.subprocess.PIPE
        )
        _, err = await bad.communicate()
        assert bad.returncode == 2 and b"usage" in err
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
