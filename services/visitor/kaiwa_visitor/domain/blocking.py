"""Blocks (VIS-05): what may be blocked, and how a block is named.

    ip          an address (a /32 or /128 range) or a CIDR range, at least /16 (IPv4)
                or /32 (IPv6) so one block never shuts out a whole provider
    visitor_id  the visitor's last known address, blocked as an ip block
    thread      a messaging channel and the customer's id on it (the chat's visitor_id)

One active block per range or thread: blocking it again returns the active one. The
conversation service enforces blocks (README "Visitor tracking"): new chats from a
blocked address or thread, and the visitor's further messages in their chats, are
refused with PERMISSION_DENIED.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kaiwa_common.errors import InvalidArgument

CHANNELS = ("whatsapp", "instagram", "messenger", "telegram", "line", "wechat")
MIN_PREFIX = {4: 16, 6: 32}
MAX_REASON = 500
MAX_THREAD = 128


@dataclass(frozen=True)
class BlockTarget:
    kind: str  # ip, thread, visitor (resolved to ip by its last address)
    network: str = ""
    channel: str = ""
    thread_id: str = ""
    visitor_id: str = ""


def network_of(value: str) -> str:
    """ "203.0.113.7" -> "203.0.113.7/32"; a range as its network; InvalidArgument otherwise."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise InvalidArgument(f"ip {value[:64]!r} is not an address or a CIDR range", field="ip") from None
    if network.prefixlen < MIN_PREFIX[network.version]:
        raise InvalidArgument(
            f"ip range {network} is too wide: at least /{MIN_PREFIX[network.version]} for IPv{network.version}", field="ip"
        )
    return str(network)


def block_target(ip: str, visitor_id: str, channel: str, thread_id: str) -> BlockTarget:
    given = [name for name, value in (("ip", ip), ("visitor_id", visitor_id), ("thread", channel or thread_id)) if value]
    if len(given) != 1:
        raise InvalidArgument("name exactly one target: ip, visitor_id, or channel with thread_id")
    if ip:
        return BlockTarget("ip", network=network_of(ip))
    if visitor_id:
        return BlockTarget("visitor", visitor_id=visitor_id)
    channel = channel.strip().lower().removeprefix("channel_")
    if channel not in CHANNELS:
        raise InvalidArgument(f"channel {channel!r} is not a messaging channel: one of {', '.join(CHANNELS)}", field="channel")
    thread_id = thread_id.strip()
    if not thread_id or len(thread_id) > MAX_THREAD:
        raise InvalidArgument(f"thread_id is required (at most {MAX_THREAD} characters)", field="thread_id")
    return BlockTarget("thread", channel=channel, thread_id=thread_id)


def check_reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidArgument("reason is required", field="reason")
    if len(reason) > MAX_REASON:
        raise InvalidArgument(f"reason is longer than {MAX_REASON} characters", field="reason")
    return reason
