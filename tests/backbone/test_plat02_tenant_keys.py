"""PLAT-02: a tenant on every row. Every domain table of every service carries `tenant`,
and every primary key, unique constraint or index and foreign key starts with it, so a
wrong id can never cross tenants and the tables can be distributed by tenant (Citus).

Read from the catalog of a database migrated by every service, so a new table or key
that forgets the tenant fails here the day it is written.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from kaiwa_common.db import create_pool
from kaiwa_common.migrations import migrate

SERVICES = ["kaiwa_routing", "kaiwa_conversation", "kaiwa_visitor", "kaiwa_crm", "kaiwa_ai"]
INFRASTRUCTURE = {"outbox", "processed_events", "dead_letters", "timers", "schema_migrations", "request_ids"}

TABLES = """
SELECT n.nspname AS schema, c.relname AS name, c.oid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[])
"""
# Every key of a table: primary keys, unique constraints, foreign keys, and unique indexes
# (which back the constraints, and also stand alone). Columns in key order; expressions as 0.
KEYS = """
SELECT con.conname AS name, con.contype::text AS contype,
       (SELECT a.attname FROM pg_attribute a
        WHERE a.attrelid = con.confrelid AND a.attnum = con.confkey[1]) AS referenced_first,
       CASE con.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique constraint' ELSE 'foreign key' END AS kind,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns
FROM pg_constraint con WHERE con.conrelid = $1 AND con.contype IN ('p', 'u', 'f')
UNION ALL
SELECT ic.relname, 'i', NULL, 'unique index',
       ARRAY(SELECT coalesce(a.attname, '(expression)') FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(n, i)
             LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.n ORDER BY k.i)
FROM pg_index ix JOIN pg_class ic ON ic.oid = ix.indexrelid
WHERE ix.indrelid = $1 AND ix.indisunique
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = ix.indexrelid AND con.conrelid = $1)
"""


def _specs():
    import importlib

    for package in SERVICES:
        yield importlib.import_module(f"{package}.main").SPEC


@pytest.fixture
async def migrated(infra):
    """A database of its own, migrated by every service."""
    name = f"catalog_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(infra["database_url"])
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = infra["database_url"].rsplit("/", 1)[0] + f"/{name}"
    schemas = []
    try:
        for spec in _specs():
            pool = await create_pool(url, spec.schema, min_size=1, max_size=2)
            try:
                await migrate(pool, spec.schema, spec.migrations)
            finally:
                await pool.close()
            schemas.append(spec.schema)
        conn = await asyncpg.connect(url)
        yield conn, schemas
        await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_plat02_every_domain_table_and_key_starts_with_the_tenant(migrated):
    conn, schemas = migrated
    tables = [t for t in await conn.fetch(TABLES, schemas) if t["name"] not in INFRASTRUCTURE]
    assert len(tables) > 10  # the services' domain tables really were found
    faults = []
    for table in tables:
        where = f"{table['schema']}.{table['name']}"
        tenant = await conn.fetchrow(
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = $1 AND attname = 'tenant' AND NOT attisdropped", table["oid"]
        )
        if tenant is None or not tenant["attnotnull"]:
            faults.append(f"{where}: no NOT NULL tenant column")
        for key in await conn.fetch(KEYS, table["oid"]):
            if not key["columns"] or key["columns"][0] != "tenant":
                faults.append(f"{where}: {key['kind']} {key['name']} is ({', '.join(key['columns'])})")
    assert not faults, "\n".join(faults)
