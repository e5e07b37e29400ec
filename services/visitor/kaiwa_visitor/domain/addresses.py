"""Whose address is this call's (VIS-01, VIS-05)? Never one the visitor sets.

    visitor token, direct connection           -> the gRPC peer
    any caller through a trusted proxy         -> the last X-Forwarded-For hop that is
      (peer inside KAIWA_TRUSTED_PROXIES)         not itself a trusted proxy
    anything else                              -> the gRPC peer; X-Forwarded-For ignored

A service token passes a visitor's address in the request (TrackPageView.ip) instead.
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


def peer_address(peer: str | None) -> str:
    """The address in grpc's peer string ("ipv4:1.2.3.4:5678", "ipv6:[::1]:5678"); "" for others."""
    if not peer or not peer.startswith(("ipv4:", "ipv6:")):
        return ""
    host = peer.split(":", 1)[1].rsplit(":", 1)[0].strip("[]")
    try:
        return str(ipaddress.ip_address(host.replace("%25", "%")))
    except ValueError:
        return ""


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in proxies)


def client_address(peer: str | None, forwarded_for: str, proxies: tuple[Network, ...]) -> str:
    """The caller's address per the table above."""
    address = peer_address(peer)
    if not address or not forwarded_for or not _trusted(address, proxies):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            hop = str(ipaddress.ip_address(hop))
        except ValueError:
            return address  # a malformed chain proves nothing: the proxy's own address
        if not _trusted(hop, proxies):
            return hop
        address = hop
    return address
