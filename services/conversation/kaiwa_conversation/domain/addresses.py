"""Whose address is a StartChat's (VIS-05)? Never one the visitor sets.

    service token (a gateway or a channel's service)   -> the first X-Forwarded-For
                                                          entry, as that service saw it
    through a trusted proxy (peer in                   -> the last X-Forwarded-For hop
      KAIWA_TRUSTED_PROXIES)                              that is not a trusted proxy
    anything else                                      -> the gRPC peer (a visitor's
                                                          X-Forwarded-For is ignored)

(The same rules as the visitor service's domain/addresses.py; both belong in
kaiwa_common once its owner takes them.)
"""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    networks = []
    for part in (value or "").split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"KAIWA_TRUSTED_PROXIES: {part.strip()!r} is not an address or CIDR range") from None
    return tuple(networks)


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]").replace("%25", "%")))
    except ValueError:
        return ""


def peer_address(peer: str | None) -> str:
    if not peer or not peer.startswith(("ipv4:", "ipv6:")):
        return ""
    return _address(peer.split(":", 1)[1].rsplit(":", 1)[0])


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == n.version and ip in n for n in proxies)


def caller_address(is_service: bool, peer: str | None, forwarded_for: str, proxies: tuple[Network, ...]) -> str:
    hops = [h for h in (forwarded_for or "").split(",") if h.strip()]
    if is_service:
        return _address(hops[0]) if hops else ""
    address = peer_address(peer)
    if not address or not hops or not _trusted(address, proxies):
        return address
    for hop in reversed(hops):
        hop = _address(hop)
        if not hop:
            return address
        if not _trusted(hop, proxies):
            return hop
        address = hop
    return address
