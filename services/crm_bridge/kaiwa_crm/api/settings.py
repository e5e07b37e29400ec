"""CrmSettings <-> protobuf (enums by the contract's names, e.g. AUTO_ADD_ALL <-> "all")."""

from __future__ import annotations

from dataclasses import replace

from kaiwa.crm_bridge.v1 import settings_pb2 as pb

from kaiwa_common.protobuf import enum_name, enum_value

from ..domain.fields import COMPANY_LAYOUT, LEAD_LAYOUT, PERSON_LAYOUT
from ..domain.model import CONTACT, LEAD
from ..domain.settings import CrmSettings

_ADD_AS = {pb.ADD_AS_LEAD: LEAD, pb.ADD_AS_CONTACT: CONTACT}
_FOLLOW_UP = {
    "none": pb.FOLLOW_UP_NONE,
    "today": pb.FOLLOW_UP_TODAY,
    "tomorrow": pb.FOLLOW_UP_TOMORROW,
    "in_7_days": pb.FOLLOW_UP_IN_7_DAYS,
    "in_14_days": pb.FOLLOW_UP_IN_14_DAYS,
}


def follow_up_name(value: int) -> str:
    return next((name for name, number in _FOLLOW_UP.items() if number == value), "")


def settings_pb(s: CrmSettings) -> pb.CrmSettings:
    return pb.CrmSettings(
        auto_add=enum_value(pb.AutoAdd, s.auto_add),
        add_as=pb.ADD_AS_CONTACT if s.add_as == CONTACT else pb.ADD_AS_LEAD,
        unattended_label=enum_value(pb.UnattendedLabel, s.unattended_label),
        owner_rule=enum_value(pb.OwnerRule, s.owner_rule),
        owner_email=s.owner_email,
        owner_pool=list(s.owner_pool),
        follow_up=_FOLLOW_UP[s.follow_up],
        attach_transcripts=s.attach_transcripts,
        write_visits=s.write_visits,
        visitor_notifications=s.visitor_notifications,
        lead_layout=list(s.layouts.get(LEAD_LAYOUT, ())),
        contact_person_layout=list(s.layouts.get(PERSON_LAYOUT, ())),
        contact_company_layout=list(s.layouts.get(COMPANY_LAYOUT, ())),
        field_mapping=s.field_mapping,
    )


def settings_from_pb(m: pb.CrmSettings, current: CrmSettings) -> CrmSettings:
    """The request replaces the settings; an unset enum keeps the current value."""
    return replace(
        current,
        auto_add=enum_name(pb.AutoAdd, m.auto_add, "auto_add", default=current.auto_add),
        add_as=_ADD_AS.get(m.add_as, current.add_as),
        unattended_label=enum_name(pb.UnattendedLabel, m.unattended_label, "unattended_label", default=current.unattended_label),
        owner_rule=enum_name(pb.OwnerRule, m.owner_rule, "owner_rule", default=current.owner_rule),
        owner_email=m.owner_email,
        owner_pool=tuple(m.owner_pool),
        follow_up=follow_up_name(m.follow_up) or current.follow_up,
        attach_transcripts=m.attach_transcripts,
        write_visits=m.write_visits,
        visitor_notifications=m.visitor_notifications,
        layouts={
            LEAD_LAYOUT: tuple(m.lead_layout),
            PERSON_LAYOUT: tuple(m.contact_person_layout),
            COMPANY_LAYOUT: tuple(m.contact_company_layout),
        },
        field_mapping=dict(m.field_mapping),
    )
