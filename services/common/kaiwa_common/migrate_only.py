"""Apply a service's migrations and exit: `python -m kaiwa_common.migrate_only <service>`.

Kubernetes runs it as each Deployment's init container, so the schema is current before
any replica serves; the migrations hold a per-schema advisory lock, so init containers of
several replicas (and services that migrate again at start) never race. Exit 0 when the
schema is up to date; the database is waited for like at a service's start.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys

from .config import Settings
from .db import connect_with_retry
from .logs import setup_logging
from .migrations import migrate

log = logging.getLogger("kaiwa.migrate")

MODULES = {
    "routing": "kaiwa_routing.main",
    "conversation": "kaiwa_conversation.main",
    "visitor": "kaiwa_visitor.main",
    "crm_bridge": "kaiwa_crm.main",
    "ai_assist": "kaiwa_ai.main",
}


async def migrate_service(service: str, settings: Settings | None = None) -> list[str]:
    settings = settings or Settings()
    spec = importlib.import_module(MODULES[service]).SPEC
    pool = await connect_with_retry(settings.database_url, spec.schema, min_size=1, max_size=1)
    try:
        return await migrate(pool, spec.schema, spec.migrations)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].replace("-", "_") not in MODULES:
        print(f"usage: python -m kaiwa_common.migrate_only {{{','.join(MODULES)}}}", file=sys.stderr)
        return 2
    service = args[0].replace("-", "_")
    settings = Settings()
    setup_logging(f"{service}-migrate", settings.log_level)
    applied = asyncio.run(migrate_service(service, settings))
    log.info("schema up to date", extra={"fields": {"service": service, "applied": applied}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
