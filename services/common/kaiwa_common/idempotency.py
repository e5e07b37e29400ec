"""Client request ids for RPCs that create something (AIP-155 style).

Inside the creating transaction:

    claim = await claim_request(conn, tenant, "StartChat", request.request_id, fingerprint)
    if claim.result_id:                      # a retry: return what the first call made
        return await load(conn, tenant, claim.result_id)
    created = await create(conn, ...)
    await claim.record(conn, created.id)

The claim is a row keyed (tenant, scope, request_id). A concurrent retry blocks on the
primary key until the first transaction commits, then sees its result; if the first one
rolled back, the retry creates. The same request id with a different request is refused,
so one id never silently stands for two different things.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import asyncpg

from .errors import InvalidArgument

MAX_REQUEST_ID = 128


@dataclass(frozen=True)
class Claim:
    tenant: str
    scope: str
    request_id: str
    result_id: str | None  # set: this request already ran and created result_id

    async def record(self, conn: asyncpg.Connection, result_id: str) -> None:
        """Remember what this request created (no-op without a request id)."""
        if not self.request_id:
            return
        await conn.execute(
            "UPDATE request_ids SET result_id = $4 WHERE tenant = $1 AND scope = $2 AND request_id = $3",
            self.tenant,
            self.scope,
            self.request_id,
            result_id,
        )


def fingerprint_of(*parts) -> str:
    """A stable digest of the request's meaningful fields."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


async def claim_request(conn: asyncpg.Connection, tenant: str, scope: str, request_id: str, fingerprint: str) -> Claim:
    """Claim `request_id` for this transaction, or find what an earlier call created."""
    if not request_id:
        return Claim(tenant, scope, "", None)
    if len(request_id) > MAX_REQUEST_ID:
        raise InvalidArgument(f"request_id: at most {MAX_REQUEST_ID} characters")
    inserted = await conn.fetchval(
        "INSERT INTO request_ids (tenant, scope, request_id, fingerprint) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING true",
        tenant,
        scope,
        request_id,
        fingerprint,
    )
    if inserted:
        return Claim(tenant, scope, request_id, None)
    row = await conn.fetchrow(
        "SELECT fingerprint, result_id FROM request_ids WHERE tenant = $1 AND scope = $2 AND request_id = $3",
        tenant,
        scope,
        request_id,
    )
    if row["fingerprint"] != fingerprint:
        raise InvalidArgument(f"request_id {request_id!r} was already used for a different {scope} request")
    return Claim(tenant, scope, request_id, row["result_id"])
