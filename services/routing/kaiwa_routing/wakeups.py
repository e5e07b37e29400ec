"""LISTEN/NOTIFY channels of routing: a transaction sends `pg_notify(channel, key)` (the
store does, so it is delivered at commit and only then), every replica's one listening
connection (kaiwa_common.fanout.Fanout) hands it to the local subscribers of that key.
A notification only says "look again": subscribers re-read the database.

    channel          key                  sent when                       woken
    routing_offers   <tenant>/<agent id>  an offer made or withdrawn      StreamOffers of that agent
    routing_team     <tenant>             a team message sent             StreamTeamMessages of the tenant
    routing_chats    <tenant>/<chat id>   routing learns a chat           calls waiting for it (arrivals.py)
"""

from __future__ import annotations

from kaiwa_common.fanout import Fanout, whole_payload_is_key

# Streams re-read this often without a notification: a missed one costs at most this.
RECHECK_STREAMS = 5.0

OFFERS = "routing_offers"
TEAM = "routing_team"
CHATS = "routing_chats"


def offers_key(tenant: str, agent_id: str) -> str:
    return f"{tenant}/{agent_id}"


def team_key(tenant: str) -> str:
    return tenant


def chat_key(tenant: str, chat_id: str) -> str:
    return f"{tenant}/{chat_id}"


def routing_fanout(database_url: str) -> Fanout:
    """The replica's listener of routing's channels (the payload is the key)."""
    return Fanout(database_url, {channel: whole_payload_is_key for channel in (OFFERS, TEAM, CHATS)})
