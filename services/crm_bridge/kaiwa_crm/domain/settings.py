"""A tenant's CRM settings (CRM-02..05, 07, 08), with the defaults a new tenant gets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from kaiwa_common.emails import normalize_email
from kaiwa_common.errors import InvalidArgument

from .fields import CATALOGUE, COMPANY_LAYOUT, LEAD_LAYOUT, PERSON_LAYOUT, valid_field_name, valid_layout
from .model import LEAD

AUTO_ADD = ("none", "unattended", "attended", "accessed", "attended_and_unattended", "all")
UNATTENDED_LABELS = ("tracked_in_crm", "unattended")
OWNER_RULES = ("user", "pool", "attending_agent")
FOLLOW_UPS = ("none", "today", "tomorrow", "in_7_days", "in_14_days")
MAX_POOL = 100


@dataclass(frozen=True)
class CrmSettings:
    auto_add: str = "attended_and_unattended"
    add_as: str = LEAD
    unattended_label: str = "tracked_in_crm"
    owner_rule: str = "attending_agent"
    owner_email: str = ""
    owner_pool: tuple[str, ...] = ()
    follow_up: str = "none"
    attach_transcripts: bool = True
    write_visits: bool = True
    visitor_notifications: bool = True
    layouts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    field_mapping: dict[str, str] = field(default_factory=dict)

    def layout(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.layouts.get(name) or default)

    def to_json(self) -> dict:
        data = asdict(self)
        data["owner_pool"] = list(self.owner_pool)
        data["layouts"] = {k: list(v) for k, v in self.layouts.items()}
        return data

    @classmethod
    def from_json(cls, data: dict | None) -> "CrmSettings":
        if not data:
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["owner_pool"] = tuple(known.get("owner_pool", ()))
        known["layouts"] = {k: tuple(v) for k, v in known.get("layouts", {}).items()}
        return cls(**known)


def validate_settings(s: CrmSettings) -> CrmSettings:
    _choice("auto_add", s.auto_add, AUTO_ADD)
    _choice("unattended_label", s.unattended_label, UNATTENDED_LABELS)
    _choice("owner_rule", s.owner_rule, OWNER_RULES)
    _choice("follow_up", s.follow_up, FOLLOW_UPS)
    owner = normalize_email(s.owner_email, "owner_email") if s.owner_email.strip() else ""
    pool = tuple(dict.fromkeys(normalize_email(e, "owner_pool") for e in s.owner_pool))
    if len(pool) > MAX_POOL:
        raise InvalidArgument(f"owner_pool: at most {MAX_POOL} CRM users", field="owner_pool")
    if s.owner_rule == "user" and not owner:
        raise InvalidArgument("owner_email is required when the owner rule is a chosen CRM user", field="owner_email")
    if s.owner_rule == "pool" and not pool:
        raise InvalidArgument("owner_pool needs at least one CRM user when the owner rule is a pool", field="owner_pool")
    layouts = {name: valid_layout(name, list(keys)) for name, keys in s.layouts.items() if keys}
    if set(layouts) - {LEAD_LAYOUT, PERSON_LAYOUT, COMPANY_LAYOUT}:
        raise InvalidArgument("layouts: lead, contact_person or contact_company")
    mapping = {}
    for key, target in s.field_mapping.items():
        if key not in CATALOGUE:
            raise InvalidArgument(
                f"field_mapping: {key!r} is not visitor data Kaiwa knows ({', '.join(CATALOGUE)})", field="field_mapping"
            )
        mapping[key] = valid_field_name(target, "field_mapping")
    return replace(s, owner_email=owner, owner_pool=pool, layouts=layouts, field_mapping=mapping)


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidArgument(f"{name} must be one of {', '.join(choices)}", field=name)
