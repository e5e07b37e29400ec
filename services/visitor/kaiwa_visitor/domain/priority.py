"""Visitor prioritisation (ROUT-04): the tenant's priority rules, kept by routing, on the
visitor's CRM record. The same meaning as routing's domain/rules.py (which this mirrors
until the rules move to kaiwa_common): facts are a flat dict

    lead.<field> / contact.<field>   the record's fields (by record type)
    deals.open_count, deals.open_amount
    visitor_type                     customer, deal, lead, contact, unknown
    owner                            the record owner's e-mail

a rule holds when all its conditions hold, rules are tried lowest `order` first, and the
tracking screen (no department) uses the rules that name no department. A visitor's
priority is the order of the first rule it matches; None (after every ranked visitor)
when it matches none or has no CRM record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

NUMERIC = {"greater_than", "less_than", "at_least", "at_most"}
OPERATORS = ("equals", "not_equals", "contains", "greater_than", "less_than", "at_least", "at_most", "is_set")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str = ""

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


@dataclass(frozen=True)
class PriorityRule:
    id: str
    name: str
    order: int
    conditions: tuple[Condition, ...]


def matches(conditions: tuple[Condition, ...], facts: dict | None) -> bool:
    return facts is not None and all(c.holds(facts) for c in conditions)


def priority_of(rules: list[PriorityRule], facts: dict | None) -> int | None:
    for rule in sorted(rules, key=lambda r: (r.order, r.name)):
        if matches(rule.conditions, facts):
            return rule.order
    return None


def rules_version(rules: list[PriorityRule]) -> str:
    """A digest of the rules: stored with each visitor's priority, so a change of rules
    is noticed and the priorities are computed again."""
    plain = sorted((r.order, r.name, [(c.field, c.op, c.value) for c in r.conditions]) for r in rules)
    return hashlib.sha256(json.dumps(plain).encode()).hexdigest()[:16]


def facts_from_record(
    record_type: str, fields: dict[str, str], owner: str, deals: list[tuple[float, bool]], visitor_type: str
) -> dict:
    """Flatten a CRM record into the facts conditions look at (as routing does)."""
    prefix = "contact" if record_type == "contact" else "lead"
    facts: dict = {f"{prefix}.{k}": v for k, v in fields.items()}
    open_deals = [amount for amount, is_open in deals if is_open]
    facts["deals.open_count"] = len(open_deals)
    facts["deals.open_amount"] = float(sum(open_deals))
    facts["visitor_type"] = visitor_type or "unknown"
    facts["owner"] = (owner or "").strip().lower()
    return facts
