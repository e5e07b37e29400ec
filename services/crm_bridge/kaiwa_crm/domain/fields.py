"""Which fields a record has, what they are called in the chat, and the visitor data
catalogue of seed 004 (CRM-02, CRM-08).

Keys are the CRM-neutral names Kaiwa uses; each adapter maps them to its CRM's own
(Zoho: company -> Company, status -> Lead_Status, annual_revenue -> Annual_Revenue, ...).
"""

from __future__ import annotations

import re

from kaiwa_common.errors import InvalidArgument

from .model import CONTACT, LEAD

# Fields an agent may write on each record type (besides the tenant's custom fields).
STANDARD_FIELDS = {
    LEAD: ("company", "phone", "status", "annual_revenue", "employees"),
    CONTACT: ("phone",),
}

# CRM-02: what the chat shows, by default in the seed's order (004 lists them so).
LEAD_LAYOUT, PERSON_LAYOUT, COMPANY_LAYOUT = "lead", "contact_person", "contact_company"
DEFAULT_LAYOUTS = {
    LEAD_LAYOUT: ("company", "phone", "status", "owner", "source", "annual_revenue", "employees"),
    PERSON_LAYOUT: ("account", "phone", "owner", "source"),
    COMPANY_LAYOUT: ("name", "phone", "website", "industry"),
}

# Labels as the seeds name them (004's lead and contact fields), and in English.
_LABELS = {
    (LEAD_LAYOUT, "company"): ("組織", "Company"),
    (LEAD_LAYOUT, "phone"): ("電話", "Phone"),
    (LEAD_LAYOUT, "status"): ("見込み客のステータス", "Lead status"),
    (LEAD_LAYOUT, "owner"): ("見込み客の担当者", "Lead owner"),
    (LEAD_LAYOUT, "source"): ("見込み客の登録経路", "Lead source"),
    (LEAD_LAYOUT, "annual_revenue"): ("年間売上", "Annual revenue"),
    (LEAD_LAYOUT, "employees"): ("従業員数", "Employees"),
    (PERSON_LAYOUT, "account"): ("取引先名", "Account name"),
    (PERSON_LAYOUT, "phone"): ("電話番号", "Phone"),
    (PERSON_LAYOUT, "owner"): ("連絡先の担当者", "Contact owner"),
    (PERSON_LAYOUT, "source"): ("見込み客の登録経路", "Lead source"),
    (COMPANY_LAYOUT, "name"): ("取引先名", "Account name"),
    (COMPANY_LAYOUT, "phone"): ("電話番号", "Phone"),
    (COMPANY_LAYOUT, "website"): ("Webサイト", "Website"),
    (COMPANY_LAYOUT, "industry"): ("業種", "Industry"),
}

# CRM-08: the visitor data of seed 004 that Kaiwa can fill in, by catalogue key (the
# seed's name in brackets). The tenant maps the ones it wants to CRM fields.
CATALOGUE = {
    "visitor_id": "訪問者のID",
    "name": "名前",
    "email": "メールアドレス",
    "question": "質問",
    "department": "部門",
    "ip_address": "IPアドレス",
    "user_agent": "ユーザーエージェント",
    "referrer": "リファラー(参照元)",
    "current_page": "現在のページ",
    "page_title": "ページのタイトル",
    "search_engine": "検索エンジン",
    "search_keywords": "検索語",
    "missed_reason": "未対応の理由",
    "waiting_time": "待機時間",
    "chat_duration": "チャットの時間",
    "end_time": "終了日時",
}

NO_CRM_INFO = {"ja": "この訪問者のCRM情報はありません", "en": "No CRM information for this visitor"}

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,49}$")
_PHONE = re.compile(r"^\+?[0-9 ()\-.]{3,30}$")
MAX_FIELD_VALUE = 2000
_SEPARATORS = re.compile(r"[\s_\-]+")


def label_of(layout: str, key: str, locale: str) -> str:
    ja, en = _LABELS.get((layout, key), (key, key.replace("_", " ").capitalize()))
    return en if locale == "en" else ja


def valid_field_name(name: str, what: str = "name") -> str:
    name = (name or "").strip()
    if not _FIELD_NAME.match(name):
        raise InvalidArgument(f"{what} {name!r} must be a letter then letters, digits or _ (at most 50)", field=_f(what))
    return name


def valid_phone(value: str, what: str = "phone") -> str:
    """A phone number as typed (digits, spaces, + ( ) - .), at least 3 digits; "" clears."""
    value = (value or "").strip()
    if value and (not _PHONE.match(value) or sum(c.isdigit() for c in value) < 3):
        raise InvalidArgument(f"{what} {value!r} is not a phone number", field=_f(what))
    return value


def valid_layout(layout: str, keys: list[str]) -> tuple[str, ...]:
    clean = []
    for key in keys:
        key = key.strip()
        if not _FIELD_NAME.match(key):
            raise InvalidArgument(f"{layout}_layout: {key!r} is not a field name", field=f"{layout}_layout")
        if key not in clean:
            clean.append(key)
    return tuple(clean)


def check_field_update(record_type: str, fields: dict[str, str], custom: set[str]) -> dict[str, str]:
    """CRM-08: the fields an agent may write on a record of this type, values checked."""
    if not fields:
        raise InvalidArgument("fields: name at least one field to update", field="fields")
    known = set(STANDARD_FIELDS[record_type]) | custom
    clean = {}
    for key, value in fields.items():
        key = key.strip()
        if key not in known:
            choices = ", ".join(sorted(known))
            raise InvalidArgument(f"fields: {key!r} is not a field of a {record_type} (known: {choices})", field="fields")
        value = (value or "").strip()
        if len(value) > MAX_FIELD_VALUE:
            raise InvalidArgument(f"fields: {key!r} is longer than {MAX_FIELD_VALUE} characters", field="fields")
        if key == "phone":
            value = valid_phone(value, "fields['phone']")
        if key in ("annual_revenue", "employees") and value:
            value = _number(key, value)
        clean[key] = value
    return clean


def copied_form_fields(form: dict[str, str], custom: list[tuple[str, str, str]], record_type: str) -> dict[str, str]:
    """CRM-08: the widget's pre-chat form fields whose names match one of the tenant's
    custom fields of this record type, by the custom field's name or its label (letter
    case, spaces, - and _ alike: "Company size" matches company_size), keyed by the
    custom field's name. A name match wins over a label match."""
    targets: dict[str, str] = {}
    for kind in ("name", "label"):
        for t, name, label in custom:
            key = _match_key(name if kind == "name" else label)
            if t == record_type and key:
                targets.setdefault(key, name)
    copied = {}
    for key, value in sorted(form.items()):
        target, value = targets.get(_match_key(key)), (value or "").strip()
        if target and value:
            copied[target] = value[:MAX_FIELD_VALUE]
    return copied


def _match_key(name: str) -> str:
    return _SEPARATORS.sub("_", (name or "").strip().casefold()).strip("_")


def _number(key: str, value: str) -> str:
    try:
        number = float(value.replace(",", ""))
    except ValueError:
        raise InvalidArgument(f"fields: {key!r} must be a number, not {value!r}", field="fields") from None
    if number < 0 or number != number or number > 1e15:
        raise InvalidArgument(f"fields: {key!r} must be a number from 0, not {value!r}", field="fields")
    return value.replace(",", "")


def _f(what: str) -> str | None:
    return what if what.isidentifier() else None
