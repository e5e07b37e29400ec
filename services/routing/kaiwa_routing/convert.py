"""Protobuf <-> routing's records and domain values, for api.py. Enums follow the
contracts' <ENUM>_<NAME> convention both ways (kaiwa_common.protobuf): AVAILABILITY_ONLINE
<-> "online", STRATEGY_RING_ALL <-> "ring_all", no table of our own."""

from __future__ import annotations

from kaiwa.routing.v1 import routing_pb2 as pb

from kaiwa_common.errors import parse_uuid
from kaiwa_common.protobuf import enum_name, enum_value, timestamp

from kaiwa_common.crm_conditions import Condition

from .domain.rules import Rule
from .queue import QueuePosition


def _id(value) -> str:
    return str(value) if value else ""


def department_pb(row) -> pb.Department:
    return pb.Department(
        id=str(row["id"]),
        name=row["name"],
        strategy=enum_value(pb.Strategy, row["strategy"]),
        accept_timeout_seconds=row["accept_timeout_seconds"],
        max_wait_seconds=row["max_wait_seconds"],
    )


def agent_pb(row) -> pb.Agent:
    return pb.Agent(
        id=str(row["id"]),
        email=row["email"],
        name=row["name"],
        department_ids=[str(d) for d in row["department_ids"]],
        availability=enum_value(pb.Availability, row["availability"]),
        max_chats=row["max_chats"],
        active_chats=row["active_chats"],
    )


def assignment_pb(row) -> pb.Assignment:
    return pb.Assignment(
        chat_id=str(row["id"]),
        department_id=_id(row["department_id"]),
        state=enum_value(pb.AssignmentState, row["state"]),
        agent_id=_id(row["agent_id"]),
        queued_at=timestamp(row["queued_at"]),
        assigned_at=timestamp(row["assigned_at"]),
    )


def offer_pb(row) -> pb.Offer:
    return pb.Offer(
        chat_id=str(row["chat_id"]),
        department_id=_id(row["department_id"]),
        offered_at=timestamp(row["offered_at"]),
        visitor_name=row["visitor_name"],
        question=row["question"],
    )


def rule_pb(rule: Rule) -> pb.Rule:
    return pb.Rule(
        id=rule.id,
        kind=enum_value(pb.RuleKind, rule.kind),
        name=rule.name,
        order=rule.order,
        department_id=rule.department_id or "",
        agent_ids=list(rule.agent_ids),
        conditions=[pb.Condition(field=c.field, op=enum_value(pb.Operator, c.op), value=c.value) for c in rule.conditions],
    )


def rule_of(request: pb.Rule) -> Rule:
    """Unset kind and operators stay "", which the domain refuses with its own messages."""
    conditions = tuple(
        Condition(c.field.strip(), enum_name(pb.Operator, c.op, "op", default=""), c.value.strip()) for c in request.conditions
    )
    return Rule(
        id=parse_uuid(request.id, "rule id") if request.id else "",
        kind=enum_name(pb.RuleKind, request.kind, "kind", default=""),
        name=request.name.strip(),
        order=request.order,
        department_id=parse_uuid(request.department_id, "department_id") if request.department_id else None,
        conditions=conditions,
        agent_ids=tuple(sorted({parse_uuid(a, "agent id") for a in request.agent_ids})),
    )


def transfer_pb(row) -> pb.Transfer:
    return pb.Transfer(
        id=str(row["id"]),
        chat_id=str(row["chat_id"]),
        from_agent_id=str(row["from_agent_id"]),
        to_agent_id=_id(row["to_agent_id"]),
        to_department_id=_id(row["to_department_id"]),
        note=row["note"],
        state=enum_value(pb.TransferState, row["state"]),
        decline_reason=row["decline_reason"],
        answered_by=_id(row["answered_by"]),
        created_at=timestamp(row["created_at"]),
    )


def member_pb(row, role) -> pb.Member:
    return pb.Member(
        agent_id=str(row["id"]),
        name=row["name"],
        email=row["email"],
        role=role,
        availability=enum_value(pb.Availability, row["availability"]),
        online=row["availability"] == "online",
    )


def team_message_pb(row) -> pb.TeamMessage:
    return pb.TeamMessage(
        id=str(row["id"]),
        seq=row["seq"],
        from_agent_id=str(row["from_agent_id"]),
        to_agent_id=_id(row["to_agent_id"]),
        text=row["text"],
        sent_at=timestamp(row["sent_at"]),
        from_name=row["from_name"] or "",
    )


def queue_position_pb(found: QueuePosition) -> pb.QueuePosition:
    return pb.QueuePosition(
        chat_id=str(found.chat["id"]),
        position=found.position,
        estimated_wait_seconds=found.estimated_wait_seconds,
        state=enum_value(pb.AssignmentState, found.chat["state"]),
    )


def queued_chat_pb(row) -> pb.QueuedChat:
    return pb.QueuedChat(
        chat_id=str(row["id"]),
        department_id=_id(row["department_id"]),
        position=row["position"],
        priority=row["priority"],
        queued_at=timestamp(row["queued_at"]),
    )


def missed_chat_pb(row) -> pb.MissedChat:
    return pb.MissedChat(
        chat_id=str(row["id"]),
        department_id=_id(row["department_id"]),
        reason=row["missed_reason"] or "",
        waited_seconds=row["waited_seconds"] or 0,
        missed_at=timestamp(row["ended_at"]),
        visitor_id=row["visitor_id"],
        visitor_email=row["visitor_email"],
    )


def agent_login_pb(row) -> pb.AgentLogin:
    return pb.AgentLogin(
        agent_id=str(row["agent_id"]),
        user_name=row["user_name"],
        has_password=bool(row["password_hash"]),
        email=row["email"],
        name=row["name"],
    )
