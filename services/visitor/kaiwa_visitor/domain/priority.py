"""Visitor prioritisation (ROUT-04): the tenant's priority rules, kept by routing, on the
visitor's CRM record, with the conditions routing uses (kaiwa_common.crm_conditions):
a rule holds when all its conditions hold, rules are tried lowest `order` first, and the
tracking screen (no department) uses the rules that name no department. A visitor's
priority is the order of the first rule it matches; None (after every ranked visitor)
when it matches none or has no CRM record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from kaiwa_common.crm_conditions import Condition, matches


@dataclass(frozen=True)
class PriorityRule:
    id: str
    name: str
    order: int
    conditions: tuple[Condition, ...]


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
