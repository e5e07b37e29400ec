"""Conditions on a visitor's CRM record, shared by routing's assignment and priority rules
(ROUT-03, ROUT-04) and the visitor service's ordering and proactive triggers (VIS-04, VIS-06).

Facts are a flat dict taken from the CRM record (facts_from_record):
  lead.<field> / contact.<field>   the record's fields (by record type)
  deals.open_count, deals.open_amount
  visitor_type                     customer, deal, lead, contact, unknown
  owner                            the record owner's e-mail
A set of conditions holds when every one holds; no record (facts None) holds none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidArgument

OPERATORS = ("equals", "not_equals", "contains", "greater_than", "less_than", "at_least", "at_most", "is_set")
NUMERIC = {"greater_than", "less_than", "at_least", "at_most"}
_FIELD = re.compile(r"^(lead|contact)\.[A-Za-z0-9_ .\-]{1,100}$")
_PLAIN_FIELDS = {"deals.open_count", "deals.open_amount", "visitor_type", "owner"}


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str = ""

    def validate(self) -> "Condition":
        if self.field not in _PLAIN_FIELDS and not _FIELD.match(self.field or ""):
            raise InvalidArgument(
                f"condition field {self.field!r} is not one of lead.<field>, contact.<field>, "
                "deals.open_count, deals.open_amount, visitor_type, owner"
            )
        if self.op not in OPERATORS:
            raise InvalidArgument(f"condition on {self.field!r} needs an operator")
        if self.op in NUMERIC:
            try:
                float(self.value)
            except ValueError:
                raise InvalidArgument(f"condition on {self.field!r}: {self.value!r} is not a number") from None
        elif self.op != "is_set" and self.value == "":
            raise InvalidArgument(f"condition on {self.field!r} needs a value")
        return self

    def holds(self, facts: dict) -> bool:
        actual = facts.get(self.field)
        if self.op == "is_set":
            return actual not in (None, "")
        if actual is None:
            return self.op == "not_equals"
        if self.op in NUMERIC:
            try:
                number, limit = float(actual), float(self.value)
            except (TypeError, ValueError):
                return False
            return {
                "greater_than": number > limit,
                "less_than": number < limit,
                "at_least": number >= limit,
                "at_most": number <= limit,
            }[self.op]
        text, wanted = str(actual).strip().lower(), self.value.strip().lower()
        if self.op == "equals":
            return text == wanted
        if self.op == "not_equals":
            return text != wanted
        return wanted in text  # contains


def matches(conditions: tuple[Condition, ...], facts: dict | None) -> bool:
    return facts is not None and all(c.holds(facts) for c in conditions)


def facts_from_record(
    record_type: str, fields: dict[str, str], owner: str, deals: list[tuple[float, bool]], visitor_type: str
) -> dict:
    """Flatten a CRM record into the facts conditions look at."""
    prefix = "contact" if record_type == "contact" else "lead"
    facts: dict = {f"{prefix}.{k}": v for k, v in fields.items()}
    open_deals = [amount for amount, is_open in deals if is_open]
    facts["deals.open_count"] = len(open_deals)
    facts["deals.open_amount"] = float(sum(open_deals))
    facts["visitor_type"] = visitor_type or "unknown"
    facts["owner"] = (owner or "").strip().lower()
    return facts
