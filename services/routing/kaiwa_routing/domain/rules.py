"""Assignment and visitor-priority rules on the visitor's CRM record, pure.

Facts come from the CRM record once, when the chat is queued (kaiwa_common.crm_conditions
says what they are and how a condition holds). A rule holds when all its conditions hold;
rules are evaluated in `order`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kaiwa_common.crm_conditions import Condition, matches
from kaiwa_common.errors import InvalidArgument

KINDS = ("assignment", "priority")


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
        return matches(self.conditions, facts)


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


def first_match(rules: list[Rule], kind: str, department_id: str | None, facts: dict | None) -> Rule | None:
    for rule in sorted((r for r in rules if r.kind == kind), key=lambda r: (r.order, r.name)):
        if rule.applies_to(department_id) and rule.matches(facts):
            return rule
    return None
