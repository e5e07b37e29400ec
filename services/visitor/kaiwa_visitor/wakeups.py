"""LISTEN/NOTIFY channels of the visitor service: a transaction sends
`pg_notify(channel, payload)` (delivered at commit, and only then); every replica's one
listening connection (kaiwa_common.fanout.Fanout) hands it to the local subscribers of
its key, which re-read the database.

    channel           payload                          sent when                   woken
    visitor_arrivals  <tenant>/<visit id>[/<trigger>]  a lead/contact's new visit;  StreamArrivals of the tenant
                                                       a notify_agent trigger
    visitor_prompts   <tenant>/<visitor id>/<visit>/<trigger>  an open_chat trigger  StreamPrompts of the visitor
"""

from __future__ import annotations

from kaiwa_common.fanout import Fanout

ARRIVALS = "visitor_arrivals"
PROMPTS = "visitor_prompts"
RECHECK = 5.0  # seconds: streams look again this often without a notification


def arrival_payload(tenant: str, visit_id: str, trigger_id: str = "") -> str:
    return f"{tenant}/{visit_id}/{trigger_id}" if trigger_id else f"{tenant}/{visit_id}"


def prompt_payload(tenant: str, visitor_id: str, visit_id: str, trigger_id: str) -> str:
    return f"{tenant}/{visitor_id}/{visit_id}/{trigger_id}"


def _arrival(payload: str) -> tuple[str, tuple[str, str]]:
    tenant, _, rest = payload.partition("/")
    visit_id, _, trigger_id = rest.partition("/")
    return tenant, (visit_id, trigger_id)


def _prompt(payload: str) -> tuple[str, tuple[str, str]]:
    tenant, visitor_id, visit_id, trigger_id = (payload.split("/") + ["", "", "", ""])[:4]
    return f"{tenant}/{visitor_id}", (visit_id, trigger_id)


def visitor_fanout(database_url: str) -> Fanout:
    return Fanout(database_url, {ARRIVALS: _arrival, PROMPTS: _prompt})
