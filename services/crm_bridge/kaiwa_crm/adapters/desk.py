"""DESK-01: one interface for the help desk, as for the CRM (CRM-10). The built-in desk
keeps tickets in this service's schema; an external desk (Zoho Desk) would implement
the same methods over its API."""

from __future__ import annotations

from typing import Protocol

import asyncpg

from ..domain.desk import NewTicket, Query, Ticket
from ..store import desk


class DeskAdapter(Protocol):
    async def create(self, ticket: NewTicket) -> tuple[Ticket, bool]:
        """A ticket from a chat (or one message): the one it already became, if any."""

    async def get(self, ref: Query) -> Ticket | None: ...

    async def of_chat(self, chat_id: str) -> Ticket | None: ...

    async def search(self, query: Query, limit: int) -> list[Ticket]: ...

    async def associate(self, ticket: Ticket, chat_id: str) -> Ticket: ...

    async def set_status(self, ticket: Ticket, status: int) -> Ticket: ...


class BuiltinDesk:
    def __init__(self, conn: asyncpg.Connection, tenant: str):
        self.conn, self.tenant = conn, tenant

    async def create(self, ticket: NewTicket) -> tuple[Ticket, bool]:
        return await desk.insert(self.conn, self.tenant, ticket)

    async def get(self, ref: Query) -> Ticket | None:
        return await desk.get(self.conn, self.tenant, ref)

    async def of_chat(self, chat_id: str) -> Ticket | None:
        return await desk.of_chat(self.conn, self.tenant, chat_id)

    async def search(self, query: Query, limit: int) -> list[Ticket]:
        return await desk.search(self.conn, self.tenant, query, limit)

    async def associate(self, ticket: Ticket, chat_id: str) -> Ticket:
        await desk.associate(self.conn, self.tenant, ticket.id, chat_id)
        return await desk.get(self.conn, self.tenant, Query("id", ticket.id))

    async def set_status(self, ticket: Ticket, status: int) -> Ticket:
        await desk.set_status(self.conn, self.tenant, ticket.id, status)
        return await desk.get(self.conn, self.tenant, Query("id", ticket.id))
