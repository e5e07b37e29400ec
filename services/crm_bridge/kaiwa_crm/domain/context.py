"""CRM-02: what the chat shows about a visitor. The admin's fields in the admin's order
per record type (lead; contact person; contact company), fields without a value left
out; open deals counted and summed (004: 未完了の商談の数 / 総額). Whether the agent may
add the visitor (CRM-03: no match and an e-mail given) or notify sales (a match)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .fields import COMPANY_LAYOUT, DEFAULT_LAYOUTS, LEAD_LAYOUT, NO_CRM_INFO, PERSON_LAYOUT, label_of
from .model import LEAD, Record
from .settings import CrmSettings


@dataclass(frozen=True)
class ContextField:
    key: str
    label: str
    value: str


@dataclass(frozen=True)
class Context:
    connected: bool
    found: bool
    record: Record | None = None
    fields: list[ContextField] = field(default_factory=list)
    company_fields: list[ContextField] = field(default_factory=list)
    open_deal_count: int = 0
    open_deal_amount: float = 0.0
    can_add_record: bool = False
    can_notify_sales: bool = False
    message: str = ""
    stale: bool = False


def disconnected(locale: str) -> Context:
    return Context(connected=False, found=False, message=NO_CRM_INFO[locale])


def build_context(
    record: Record | None,
    email_given: bool,
    settings: CrmSettings,
    locale: str,
    custom_labels: dict[str, str],
    stale: bool = False,
) -> Context:
    if record is None:
        return Context(connected=True, found=False, can_add_record=email_given, message=NO_CRM_INFO[locale], stale=stale)
    if record.type == LEAD:
        fields = _shown(LEAD_LAYOUT, settings, locale, custom_labels, lambda k: _value(record, k))
        company = []
    else:
        fields = _shown(PERSON_LAYOUT, settings, locale, custom_labels, lambda k: _value(record, k))
        company = _shown(COMPANY_LAYOUT, settings, locale, custom_labels, lambda k: _company_value(record, k))
    open_deals = record.open_deals
    return Context(
        connected=True,
        found=True,
        record=record,
        fields=fields,
        company_fields=company,
        open_deal_count=len(open_deals),
        open_deal_amount=float(sum(d.amount for d in open_deals)),
        can_notify_sales=True,
        stale=stale,
    )


def _shown(layout: str, settings: CrmSettings, locale: str, custom_labels: dict[str, str], value) -> list[ContextField]:
    shown = []
    for key in settings.layout(layout, DEFAULT_LAYOUTS[layout]):
        text = (value(key) or "").strip()
        if text:
            label = custom_labels.get(key) or label_of(layout, key, locale)
            shown.append(ContextField(key, label, text))
    return shown


def _value(record: Record, key: str) -> str:
    if key == "owner":
        return record.owner
    if key == "source":
        return record.source
    if key == "account":
        return record.account or record.fields.get("account", "")
    if key == "name":
        return record.name
    if key == "email":
        return record.email
    return record.fields.get(key, "")


def _company_value(record: Record, key: str) -> str:
    if key == "name":
        return record.account
    return record.account_fields.get(key, "")
