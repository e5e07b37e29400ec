"""What the CRM bridge's handlers share: the service context, its settings, the secret
box, one HTTP client for external CRMs, and the runner of queued writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import httpx

from kaiwa_common.app import ServiceContext

from .adapters import CrmAdapter
from .adapters.builtin import BuiltinCrm
from .adapters.zoho.adapter import ZohoCrm
from .adapters.zoho.client import Credentials, TokenStore, ZohoClient
from .config import CrmConfig
from .domain.connection import Connection
from .secrets import SecretBox
from .store import activity, tenancy


@dataclass
class Runtime:
    ctx: ServiceContext
    config: CrmConfig
    box: SecretBox
    schema: str
    runner: object = None  # writes.WriteRunner, set by main
    _http: httpx.AsyncClient | None = field(default=None, repr=False)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.ctx.pool

    def http(self) -> httpx.AsyncClient:
        """Created on first use, inside the running loop."""
        if self._http is None:
            self._http = httpx.AsyncClient(limits=httpx.Limits(max_connections=50))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    def zoho_client(self, tenant: str, link: Connection, refresh_token: str = "", client_secret: str = "") -> ZohoClient:
        credentials = Credentials(
            refresh_token=refresh_token or self.box.open(link.key_cipher),
            client_id=link.client_id,
            client_secret=client_secret or self.box.open(link.client_secret_cipher),
            data_center=link.data_center,
        )
        return ZohoClient(self.http(), self.config, credentials, _Tokens(self, tenant))

    async def crm(self, conn: asyncpg.Connection, tenant: str, link: Connection) -> CrmAdapter:
        """The tenant's adapter (CRM-10): the built-in CRM on this connection, or Zoho."""
        if not link.external:
            return BuiltinCrm(conn, tenant)
        custom = {name for _, name, _ in await activity.custom_fields(conn, tenant)}
        return ZohoCrm(self.zoho_client(tenant, link), custom)


class _Tokens(TokenStore):
    def __init__(self, rt: Runtime, tenant: str):
        self.rt, self.tenant = rt, tenant

    async def load(self) -> tuple[str, datetime | None, str]:
        async with self.rt.pool.acquire() as conn:
            cipher, expires, api_url = await tenancy.access_token(conn, self.tenant)
        return self.rt.box.open(cipher), expires, api_url

    async def save(self, token: str, expires: datetime, api_url: str) -> None:
        async with self.rt.pool.acquire() as conn:
            await tenancy.save_access_token(conn, self.tenant, self.rt.box.seal(token), expires, api_url)
