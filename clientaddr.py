"""The client's address, derived one way for HTTP and websockets on every start path.

uvicorn's own proxy-header handling differs by how it was started (``--forwarded-allow-ips``
defaults to 127.0.0.1 on the command line; ``python -m app`` turns it off), so every start path
runs uvicorn with proxy headers off and the app decides here, from ``TRUSTED_PROXIES``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"


@lru_cache(maxsize=16)
def trusted_networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    """``TRUSTED_PROXIES`` entries (addresses or CIDR ranges) as networks."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in trusted)


def _is_trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str | None, headers: Mapping[str, str], trusted: tuple[str, ...]) -> str:
    """The address rate limits key on: the peer, or, when the peer is a trusted proxy, the
    right-most address in ``X-Forwarded-For`` that is not itself a trusted proxy.

    A client can prepend anything to ``X-Forwarded-For``; only what trusted proxies appended is
    believed, which is why the walk goes from the right.
    """
    if not peer:
        return UNKNOWN
    networks = trusted_networks(trusted)
    if not networks or not _is_trusted(peer, networks):
        return peer
    forwarded = headers.get("x-forwarded-for", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for raw in reversed(hops[-32:]):
        hop = _without_port(raw)
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed hop: believe nothing further left than the proxy
        if not _is_trusted(hop, networks):
            return hop
    return _without_port(hops[0]) if hops else peer


def _without_port(hop: str) -> str:
    """``1.2.3.4:5678`` → ``1.2.3.4``, ``[::1]:80`` → ``::1`` (some proxies append the port)."""
    if hop.startswith("["):
        return hop[1:].partition("]")[0]
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop


def address_key(address: str) -> str:
    """What an address counts as in per-address limits (rate limits, stream caps): itself, or
    for IPv6 its /64 — one host's whole prefix, which it can rotate through at will."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # an IPv4 client on a dual-stack socket
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return address
