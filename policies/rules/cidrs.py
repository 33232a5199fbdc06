"""When is an allow-list "open"? Not only when it says 0.0.0.0/0.

``0.0.0.0/1`` plus ``128.0.0.0/1`` is the whole internet in two pieces, and ``::ffff:0:0/96``
is every IPv4 address written as IPv6. So the list is judged as a whole: its ranges are merged,
IPv4-mapped IPv6 ranges count as the IPv4 ranges they are, and private or reserved space (RFC
1918, CGNAT, loopback, link-local, documentation, multicast; for IPv6 everything outside global
unicast 2000::/3) is left out, because no one on the internet reaches an endpoint from there.

Threshold: a list whose public part covers 2**24 IPv4 addresses or more (a /8's worth, 1/256 of
the IPv4 internet) or 2**96 IPv6 addresses or more (a /32, a whole provider allocation) is as
open as 0.0.0.0/0. The largest ranges a company legitimately allow-lists (its offices, VPN and
CI egress, a cloud region's NAT) are orders of magnitude smaller; anything that size lets in
strangers. The stack config applies this very module (components/pack_rules.py loads it), so
the loader refuses what the gate blocks; keep it standard-library only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final

__all__ = ["OPEN_IPV4_ADDRESSES", "OPEN_IPV6_ADDRESSES", "open_coverage"]

OPEN_IPV4_ADDRESSES: Final = 2**24
OPEN_IPV6_ADDRESSES: Final = 2**96

_NOT_PUBLIC_V4: Final = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")
_MAPPED_V4: Final = ipaddress.IPv6Network("::ffff:0:0/96")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _as_v4(network: ipaddress.IPv6Network) -> ipaddress.IPv4Network | None:
    if not network.subnet_of(_MAPPED_V4):
        if network.supernet_of(_MAPPED_V4):
            return ipaddress.IPv4Network("0.0.0.0/0")
        return None
    mapped = network.network_address.ipv4_mapped
    assert mapped is not None
    return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")


def _overlap(a: Network, b: Network) -> int:
    if a.version != b.version or not a.overlaps(b):
        return 0
    return min(a.num_addresses, b.num_addresses)  # CIDRs overlap only by containment


def _public_v4(networks: Iterable[ipaddress.IPv4Network]) -> int:
    collapsed = list(ipaddress.collapse_addresses(networks))
    total = sum(n.num_addresses for n in collapsed)
    return total - sum(_overlap(n, r) for n in collapsed for r in _NOT_PUBLIC_V4)


def _public_v6(networks: Iterable[ipaddress.IPv6Network]) -> int:
    return sum(_overlap(n, _GLOBAL_UNICAST_V6) for n in ipaddress.collapse_addresses(networks))


def open_coverage(cidrs: Iterable[str]) -> str | None:
    """Why this allow-list as a whole is open to (a large part of) the internet, or None.
    Entries that are not CIDRs are ignored here (callers report them)."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(str(cidr).strip(), strict=False)
        except ValueError:
            continue
        if isinstance(network, ipaddress.IPv6Network):
            mapped = _as_v4(network)
            if mapped is not None:
                v4.append(mapped)
            if not network.subnet_of(_MAPPED_V4):
                v6.append(network)
        else:
            v4.append(network)
    public_v4, public_v6 = _public_v4(v4), _public_v6(v6)
    if public_v4 >= OPEN_IPV4_ADDRESSES:
        share = public_v4 / 2**32
        return (
            f"together these ranges cover {public_v4:,} public IPv4 addresses ({share:.1%} of "
            "the IPv4 internet); 2^24 (a /8) or more counts as open to the internet"
        )
    if public_v6 >= OPEN_IPV6_ADDRESSES:
        return (
            f"together these ranges cover 2^{public_v6.bit_length() - 1} or more public IPv6 "
            "addresses; a /32 or more counts as open to the internet"
        )
    return None
