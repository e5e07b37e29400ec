"""Kaiwa's record values <-> Zoho CRM's JSON records (field API names of v8)."""

from __future__ import annotations

from datetime import date, datetime

from ...domain.model import CONTACT, LEAD, Deal, Record

MODULES = {LEAD: "Leads", CONTACT: "Contacts"}
# Kaiwa field key -> Zoho field API name, per record type.
STANDARD = {
    LEAD: {
        "company": "Company",
        "phone": "Phone",
        "status": "Lead_Status",
        "annual_revenue": "Annual_Revenue",
        "employees": "No_of_Employees",
    },
    CONTACT: {"phone": "Phone"},
}
ACCOUNT_FIELDS = {"name": "Account_Name", "phone": "Phone", "website": "Website", "industry": "Industry"}
CLOSED_STAGES = ("closed won", "closed lost", "closed-won", "closed-lost")
LABEL_TAGS = {"tracked_in_crm": "CRMで追跡中", "unattended": "未対応"}


def record_id(record_type: str, zoho_id: str) -> str:
    return f"{record_type}:{zoho_id}"


def split_id(record_id: str) -> tuple[str, str] | None:
    """(module, Zoho id) of a Kaiwa record id such as "lead:5725767000000524157"."""
    kind, _, zoho_id = record_id.partition(":")
    if kind not in MODULES or not zoho_id.isdigit():
        return None
    return MODULES[kind], zoho_id


def to_record(record_type: str, data: dict, custom: set[str], owner_email: str) -> Record:
    fields = {}
    for key, api_name in STANDARD[record_type].items():
        fields[key] = _text(data.get(api_name))
    for name in custom:
        if name in data:
            fields[name] = _text(data.get(name))
    tags = {t.get("name", "") for t in data.get("Tag") or [] if isinstance(t, dict)}
    account = data.get("Account_Name")
    return Record(
        id=record_id(record_type, str(data["id"])),
        type=record_type,
        email=_text(data.get("Email")),
        name=_text(data.get("Full_Name") or data.get("Last_Name")),
        fields={k: v for k, v in fields.items() if v},
        owner=owner_email,
        source=_text(data.get("Lead_Source")),
        created_at=_when(data.get("Created_Time")),
        label=next((label for label, tag in LABEL_TAGS.items() if tag in tags), ""),
        account=_text(account.get("name")) if isinstance(account, dict) else _text(account),
    )


def to_deal(data: dict) -> Deal:
    stage = _text(data.get("Stage"))
    closing = data.get("Closing_Date")
    return Deal(
        id=str(data["id"]),
        name=_text(data.get("Deal_Name")),
        stage=stage,
        amount=float(data.get("Amount") or 0),
        closing_date=date.fromisoformat(closing) if closing else None,
        open=stage.lower() not in CLOSED_STAGES,
    )


def fields_out(record_type: str, fields: dict[str, str]) -> dict:
    """Kaiwa fields as Zoho field values ("" clears: null)."""
    out = {}
    for key, value in fields.items():
        api_name = STANDARD[record_type].get(key, key)
        if not value:
            out[api_name] = None
        elif key in ("annual_revenue", "employees"):
            out[api_name] = float(value) if key == "annual_revenue" else int(float(value))
        else:
            out[api_name] = value
    return out


def account_fields(data: dict) -> dict[str, str]:
    return {key: _text(data.get(api)) for key, api in ACCOUNT_FIELDS.items() if _text(data.get(api))}


def marker(key: str) -> str:
    """Written into what Kaiwa creates, so a retry after an unknown outcome finds it."""
    return f"[kaiwa:{key}]"


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _when(value) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
