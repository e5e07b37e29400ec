"""The CRM's records (leads and contacts), deals and attachments: values and rules, no I/O.

The same values for every CRM adapter: record ids are opaque strings (a UUID in the
built-in CRM, "lead:<id>" / "contact:<id>" for Zoho)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

from kaiwa_common.emails import valid_email
from kaiwa_common.errors import FailedPrecondition, InvalidArgument

LEAD, CONTACT = "lead", "contact"
RECORD_TYPES = (LEAD, CONTACT)

MAX_NAME = 200
MAX_SOURCE = 50
MAX_FIELDS = 100
MAX_FIELD_KEY = 100
MAX_FIELD_VALUE = 2000
MAX_DEALS = 50
MAX_DEAL_AMOUNT = 1e13


@dataclass(frozen=True)
class Deal:
    id: str
    name: str
    stage: str
    amount: float
    closing_date: date | None
    open: bool

    @property
    def won(self) -> bool:
        return not self.open and "won" in self.stage.lower()


@dataclass(frozen=True)
class AttachmentInfo:
    id: str
    name: str
    mime_type: str
    size: int
    chat_id: str
    created_at: datetime


@dataclass(frozen=True)
class NewAttachment:
    name: str
    mime_type: str
    content: bytes
    chat_id: str = ""


@dataclass
class Record:
    id: str
    type: str
    email: str
    name: str
    fields: dict[str, str]
    owner: str
    source: str
    created_at: datetime
    deals: list[Deal] = field(default_factory=list)
    attachments: list[AttachmentInfo] = field(default_factory=list)
    label: str = ""  # CRM-03: "tracked_in_crm" / "unattended" for unattended visitors added
    account: str = ""  # contacts: the account (company) name
    account_fields: dict[str, str] = field(default_factory=dict)

    @property
    def open_deals(self) -> list[Deal]:
        return [d for d in self.deals if d.open]

    @property
    def visible_fields(self) -> dict[str, str]:
        """Fields with no value are not shown (CRM-02)."""
        return {k: v for k, v in self.fields.items() if v and v.strip()}

    @property
    def visitor_type(self) -> str:
        if any(d.won for d in self.deals):
            return "customer"
        if any(d.open for d in self.deals):
            return "deal"
        return self.type


@dataclass(frozen=True)
class DealChange:
    """A deal to add (id empty) or to update (id of one of the record's deals)."""

    id: str
    name: str
    stage: str
    amount: float
    closing_date: date | None
    open: bool


@dataclass(frozen=True)
class RecordChanges:
    """What an upsert says about a record; empty values mean "keep what is there"."""

    email: str
    type: str | None = None
    name: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # an empty value removes the field
    owner: str = ""
    source: str = ""
    deals: tuple[DealChange, ...] = ()


def validate_changes(
    *, email: str, type: str | None, name: str, fields: dict[str, str], owner: str, source: str, deals: list[DealChange]
) -> RecordChanges:
    email = valid_email(email)
    if type is not None and type not in RECORD_TYPES:
        raise InvalidArgument(f"type must be lead or contact, not {type!r}")
    name = (name or "").strip()
    if len(name) > MAX_NAME:
        raise InvalidArgument(f"name is longer than {MAX_NAME} characters")
    if len(fields) > MAX_FIELDS:
        raise InvalidArgument(f"at most {MAX_FIELDS} fields per record, got {len(fields)}")
    clean_fields = {}
    for key, value in fields.items():
        k = key.strip()
        if not k or len(k) > MAX_FIELD_KEY or any(c < " " for c in k):
            raise InvalidArgument(f"field name {key!r} must be 1-{MAX_FIELD_KEY} printable characters")
        if len(value) > MAX_FIELD_VALUE:
            raise InvalidArgument(f"field {k!r} is longer than {MAX_FIELD_VALUE} characters")
        clean_fields[k] = value.strip()
    owner = valid_email(owner, "owner") if owner.strip() else ""
    source = source.strip()
    if len(source) > MAX_SOURCE:
        raise InvalidArgument(f"source is longer than {MAX_SOURCE} characters")
    if len(deals) > MAX_DEALS:
        raise InvalidArgument(f"at most {MAX_DEALS} deals per request, got {len(deals)}")
    return RecordChanges(email=email, type=type, name=name, fields=clean_fields, owner=owner, source=source, deals=tuple(deals))


def validate_deal(*, id: str, name: str, stage: str, amount: float, closing_date: str, open: bool) -> DealChange:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidArgument(f"deal name is required (at most {MAX_NAME} characters)")
    stage = (stage or "").strip()
    if len(stage) > MAX_NAME:
        raise InvalidArgument(f"deal stage is longer than {MAX_NAME} characters")
    if not math.isfinite(amount) or amount < 0 or amount > MAX_DEAL_AMOUNT:
        raise InvalidArgument(f"deal amount must be a number from 0 to {MAX_DEAL_AMOUNT:.0f}, got {amount}")
    closing = None
    if closing_date:
        try:
            closing = date.fromisoformat(closing_date)
        except ValueError:
            raise InvalidArgument(f"deal closing_date {closing_date!r} is not a date (YYYY-MM-DD)") from None
        if len(closing_date) != 10:
            raise InvalidArgument(f"deal closing_date {closing_date!r} is not a date (YYYY-MM-DD)")
    return DealChange(id=id, name=name, stage=stage, amount=amount, closing_date=closing, open=open)


def merged_type(current: str | None, requested: str | None) -> str:
    """Type of a record after an upsert: new records are leads unless said otherwise;
    a lead may become a contact (conversion), a contact never goes back to a lead."""
    if current is None:
        return requested or LEAD
    if requested is None or requested == current:
        return current
    if current == CONTACT and requested == LEAD:
        raise FailedPrecondition("a contact cannot be turned back into a lead")
    return requested


def merged_fields(current: dict[str, str], changes: dict[str, str]) -> dict[str, str]:
    result = dict(current)
    for key, value in changes.items():
        if value:
            result[key] = value
        else:
            result.pop(key, None)
    return result
