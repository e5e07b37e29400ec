"""Assignment and visitor-priority rules on the visitor's CRM record, pure.

Facts are a flat dict taken from the CRM record once, when the chat is queued:
  lead.<field> / contact.<field>   the record's fields (by record type)
  deals.open_count, deals.open_amount
  visitor_type                     customer, deal, lead, contact, unknown
  owner                            the record owner's e-mail
A rule holds when all its conditions hold; rules are evaluated in `order`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kaiwa_common.errors import InvalidArgument

OPERATORS = ("equals", "not_equals", "contains", "greater_than", "less_than", "at_least", "at_most", "is_set")
NUMERIC = {"greater_than", "less_than", "at_least", "at_most"}
KINDS = ("assignment", "priority")
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


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    name: str
    order: int
    department_id: str | None
    conditions: tuple[Condition, ...]
    agent_ids: tuple[str, ...] = field(default_factory=tuple)

    def applies_to(self, department_id: str | None) -> bool:
        return self.department_id is None or self.department_id == department_id

    def matches(self, facts: dict | None) -> bool:
        if facts is None:
            return False
        return all(c.holds(facts) for c in self.conditions)


def validate_rule(kind: str, name: str, order: int, conditions: list[Condition], agent_ids: list[str]) -> None:
    if kind not in KINDS:
        raise InvalidArgument("rule kind must be RULE_KIND_ASSIGNMENT or RULE_KIND_PRIORITY")
    if not (name or "").strip():
        raise InvalidArgument("rule name is required")
    if not 1 <= order <= 10000:
        raise InvalidArgument(f"rule order must be between 1 and 10000, got {order}")
    if not conditions:
        raise InvalidArgument("a rule needs at least one condition")
    for condition in conditions:
        condition.validate()
    if kind == "assignment" and not agent_ids:
        raise InvalidArgument("an assignment rule needs at least one agent")
    if kind == "priority" and agent_ids:
        raise InvalidArgument("a priority rule chooses no agents; leave agent_ids empty")


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


def first_match(rules: list[Rule], kind: str, department_id: str | None, facts: dict | None) -> Rule | None:
    for rule in sorted((r for r in rules if r.kind == kind), key=lambda r: (r.order, r.name)):
        if rule.applies_to(department_id) and rule.matches(facts):
            return rule
    return None
