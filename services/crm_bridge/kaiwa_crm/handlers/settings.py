"""The tenant's CRM settings and the built-in CRM's custom fields."""

from __future__ import annotations

from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import InvalidArgument

from ..domain.fields import STANDARD_FIELDS, valid_field_name
from ..domain.settings import CrmSettings, validate_settings
from ..runtime import Runtime
from ..store import activity, tenancy
from .common import text_of


async def get(rt: Runtime, tenant: str) -> CrmSettings:
    async with rt.pool.acquire() as conn:
        return await tenancy.settings(conn, tenant)


async def update(rt: Runtime, tenant: str, changed) -> CrmSettings:
    """`changed(current)` gives the new settings (unset enums keep the current ones)."""
    async with unit_of_work(rt.pool) as conn:
        current = await tenancy.settings(conn, tenant)
        new = validate_settings(changed(current))
        await tenancy.save_settings(conn, tenant, new)
    return new


async def define_field(rt: Runtime, tenant: str, record_type: str, name: str, label: str) -> tuple[str, str, str]:
    name = valid_field_name(name)
    if name in STANDARD_FIELDS[record_type]:
        raise InvalidArgument(f"{name!r} is a standard field of a {record_type}", field="name")
    label = text_of(label, "label", 100, required=False)
    async with unit_of_work(rt.pool) as conn:
        await activity.define_custom_field(conn, tenant, record_type, name, label)
    return record_type, name, label


async def fields(rt: Runtime, tenant: str) -> list[tuple[str, str, str]]:
    async with rt.pool.acquire() as conn:
        return await activity.custom_fields(conn, tenant)
