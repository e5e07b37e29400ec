"""Whose address is this call's? Never one a visitor sets (VIS-01, VIS-05).

service token (a gateway, a channel's service)  -> the address it passes: a request field
                                                   (TrackPageView.ip) or the first
                                                   X-Forwarded-For entry (caller_address)
any caller through a trusted proxy              -> the last X-Forwarded-For hop that is
  (peer inside KAIWA_TRUSTED_PROXIES)              not itself a trusted proxy
anything else                                   -> the gRPC peer; X-Forwarded-For ignored
"""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """ "10.0.0.0/8, 127.0.0.1" -> networks; raises ValueError naming a bad entry."""
    networks = []
    for part in (value or "").split(","):
        part = part.strip()
        if part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"KAIWA_TRUSTED_PROXIES: {part!r} is not an address or CIDR range") from None
    return tuple(networks)


def _address(value: str) -> str:
    """The normalised address, or "" for anything that is not one."""
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]").replace("%25", "%")))
    except ValueError:
        return ""


def peer_address(peer: str | None) -> str:
    """The address in grpc's peer string ("ipv4:1.2.3.4:5678", "ipv6:[::1]:5678"); "" for others."""
    if not peer or not peer.startswith(("ipv4:", "ipv6:")):
        return ""
    return _address(peer.split(":", 1)[1].rsplit(":", 1)[0])


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == n.version and ip in n for n in proxies)


def client_address(peer: str | None, forwarded_for: str, proxies: tuple[Network, ...]) -> str:
    """The address of a caller that is not a service, per the table above."""
    address = peer_address(peer)
    hops = [h for h in (forwarded_for or "").split(",") if h.strip()]
    if not address or not hops or not _trusted(address, proxies):
        return address
    for hop in reversed(hops):
        hop = _address(hop)
        if not hop:
            return address  # a malformed chain proves nothing: the proxy's own address
        if not _trusted(hop, proxies):
            return hop
        address = hop
    return address


def caller_address(is_service: bool, peer: str | None, forwarded_for: str, proxies: tuple[Network, ...]) -> str:
    """As client_address; a service names the visitor's address as the first X-Forwarded-For entry."""
    if is_service:
        hops = [h for h in (forwarded_for or "").split(",") if h.strip()]
        return _address(hops[0]) if hops else ""
    return client_address(peer, forwarded_for, proxies)
