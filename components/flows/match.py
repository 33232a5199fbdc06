"""How one part of a CiliumNetworkPolicy rule matches one part of a flow (rows 4-11 of the
table in components/flows/evaluate.py): label selectors, CIDRs, ports, DNS names and HTTP
requests.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from components.flows.model import NAMESPACE_KEY, Endpoint, Request
from components.traffic.regex import compile_re2

# --------------------------------------------------------------------------------------------
# Selectors.


def _split_key(key: str) -> tuple[str, str]:
    source, sep, name = key.partition(":")
    if sep and source in ("k8s", "reserved", "any", "cidr", "fqdn", "unspec"):
        return source, name
    return "any", key


@dataclass(frozen=True)
class _Selector:
    """A label selector (matchLabels + matchExpressions) of an endpoint or a peer."""

    labels: tuple[tuple[str, str, str], ...]
    expressions: tuple[tuple[str, str, str, tuple[str, ...]], ...]

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, namespace: str | None) -> _Selector:
        raw = raw or {}
        labels = [(*_split_key(k), str(v)) for k, v in (raw.get("matchLabels") or {}).items()]
        expressions = [
            (*_split_key(e["key"]), e["operator"], tuple(str(v) for v in e.get("values") or ()))
            for e in raw.get("matchExpressions") or ()
        ]
        keys = {name for _s, name, _v in labels} | {name for _s, name, _o, _v in expressions}
        reserved = any(s == "reserved" for s, _n, _v in labels)
        # Row 4: a namespaced policy's selectors stay in its namespace unless they name one.
        if namespace is not None and NAMESPACE_KEY not in keys and not reserved:
            labels.append(("k8s", NAMESPACE_KEY, namespace))
        return cls(tuple(labels), tuple(expressions))

    def matches(self, endpoint: Endpoint) -> bool:
        have = endpoint.selector_values
        for source, key, value in self.labels:
            if have.get((source, key)) != value:
                return False
        for source, key, operator, values in self.expressions:
            if not _expression(operator, have.get((source, key)), values):
                return False
        return True


def _expression(operator: str, have: str | None, values: tuple[str, ...]) -> bool:
    if operator == "In":
        return have in values
    if operator == "NotIn":
        return have not in values
    if operator == "Exists":
        return have is not None
    if operator == "DoesNotExist":
        return have is None
    return False


# --------------------------------------------------------------------------------------------
# Peers, ports and L7.


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> Any:
    """Compiled by RE2, the engine Envoy matches with (Python's ``re`` differs: ``\\pN``)."""
    return compile_re2(pattern)


@lru_cache(maxsize=1 << 16)
def _full(pattern: str | None, value: str | None) -> bool:
    """Row 10: an RE2 regex that must match the whole value (Envoy safe_regex). Remembered per
    (pattern, value): a pure function of two strings, and a stack's flows ask the same few
    again and again (1270 services: 59,564 calls, 1,625 distinct pairs)."""
    if not pattern:
        return True
    compiled = _regex(pattern)
    return value is not None and compiled is not None and compiled.fullmatch(value) is not None


@lru_cache(maxsize=4096)
def _dns_pattern(pattern: str) -> re.Pattern[str]:
    """Row 11: Cilium's matchPattern: ``*`` alone is every name, else ``*`` is DNS characters
    without the dot; matched case-insensitively against the name with a trailing dot."""
    pattern = pattern.lower().rstrip(".") + "."
    if pattern == "*.":
        return re.compile(r"^([-a-z0-9_]+\.)+$|^\.$")
    parts = [re.escape(p) for p in pattern.split("*")]
    return re.compile("^" + "[-a-z0-9_]*".join(parts) + "$")


def _dns_matches(rule: Mapping[str, Any], name: str) -> bool:
    fqdn = name.lower().rstrip(".") + "."
    if rule.get("matchName"):
        return str(rule["matchName"]).lower().rstrip(".") + "." == fqdn
    if rule.get("matchPattern"):
        return _dns_pattern(str(rule["matchPattern"])).match(fqdn) is not None
    return False


def _cidr_matches(entries: Iterable[Any], endpoint: Endpoint) -> bool:
    """Row 7: CIDRs select world addresses only; a world name without a known address is
    matched only by a CIDR covering every address (/0)."""
    if endpoint.entity != "world":
        return False
    address = ipaddress.ip_address(endpoint.ip) if endpoint.ip else None
    for entry in entries:
        spec = {"cidr": entry} if isinstance(entry, str) else entry
        try:
            network = ipaddress.ip_network(spec.get("cidr", ""), strict=False)
        except ValueError:
            continue
        if address is None:
            if network.prefixlen == 0:
                return True
            continue
        if address.version != network.version or address not in network:
            continue
        excepted = [ipaddress.ip_network(e, strict=False) for e in spec.get("except") or ()]
        if not any(address in e for e in excepted if e.version == address.version):
            return True
    return False


def _port_matches(spec: Mapping[str, Any], port: int, protocol: str) -> bool:
    """Row 8."""
    want = str(spec.get("protocol") or "ANY").upper()
    if want != "ANY" and want != protocol.upper():
        return False
    text = str(spec.get("port") or "0")
    if not text.isdigit():
        return False  # a named port: resolved from pod specs at runtime, unknown here
    low = int(text)
    if low == 0:
        return True
    high = int(spec.get("endPort") or low)
    return low <= port <= max(low, high)


def _header_ok(entry: str, headers: Mapping[str, str]) -> bool:
    name, _sep, value = entry.partition(" ")
    name = name.rstrip(":").lower()
    have = {k.lower(): v for k, v in headers.items()}
    if name not in have:
        return False
    return not value or have[name] == value


def _http_matches(rule: Mapping[str, Any], request: Request) -> bool:
    """Row 10: every field the rule gives must match."""
    if not _full(rule.get("method"), request.method):
        return False
    if not _full(rule.get("path"), request.path):
        return False
    if not _full(rule.get("host"), request.host):
        return False
    if not all(_header_ok(str(h), request.headers) for h in rule.get("headers") or ()):
        return False
    have = {k.lower(): v for k, v in request.headers.items()}
    for match in rule.get("headerMatches") or ():
        if (match.get("mismatch") or "FAIL") != "FAIL":
            continue  # LOG/ADD/DELETE/REPLACE rewrite or log; they never reject
        value = have.get(str(match.get("name", "")).lower())
        if value is None or (match.get("value") and value != match["value"]):
            return False
    return True
