"""CiliumNetworkPolicy objects parsed once for the flow evaluator (components/flows/
evaluate.py): each policy's endpoint selector, default-deny state and rules per section, each
rule's peers and the port rules that cover a port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components.flows.match import (
    _cidr_matches,
    _dns_matches,
    _port_matches,
    _Selector,
)
from components.flows.model import JSON, Direction, Endpoint

SOURCE_ANNOTATION = "meshless.io/source"
_PEER_KEYS = {
    "ingress": ("fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet"),
    "egress": ("toEndpoints", "toEntities", "toCIDR", "toCIDRSet", "toFQDNs"),
}
_UNMODELLED = {
    "toServices",
    "toGroups",
    "toNodes",
    "fromNodes",
    "toRequires",
    "fromRequires",
    "icmps",
}


# --------------------------------------------------------------------------------------------
# Parsed policies.


@dataclass(frozen=True)
class _Entry:
    """One way a rule lets a flow through: the rule (and port rule) and its L7 rules."""

    where: str
    l7: Mapping[str, Any] | None


@dataclass
class _Rule:
    where: str
    raw: JSON
    peers: dict[str, Any]
    namespace: str
    selectors: list[_Selector]
    # The peer selectors other than endpoints, read once here rather than per flow (a plan
    # of 1270 services asks ~80,000 times whether a rule matches a peer).
    entities: frozenset[str] = frozenset()
    cidrs: tuple[Any, ...] = ()
    fqdns: tuple[Any, ...] = ()
    _entries: dict[tuple[int, str], list[_Entry]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def parse(cls, where: str, raw: JSON, namespace: str, direction: Direction) -> _Rule:
        peers = {k: raw[k] for k in _PEER_KEYS[direction] if raw.get(k)}
        endpoints = peers.get("fromEndpoints") or peers.get("toEndpoints") or []
        selectors = [_Selector.parse(s, namespace) for s in endpoints]
        entities = frozenset(peers.get("fromEntities") or peers.get("toEntities") or ())
        cidrs = [*(peers.get("fromCIDR") or peers.get("toCIDR") or ())]
        cidrs += peers.get("fromCIDRSet") or peers.get("toCIDRSet") or []
        fqdns = tuple(peers.get("toFQDNs") or ())
        return cls(where, raw, peers, namespace, selectors, entities, tuple(cidrs), fqdns)

    def matches_peer(self, peer: Endpoint) -> bool:
        """Row 5."""
        if not self.peers:
            # L4-only: every peer when it lists ports; {} (or only unmodelled fields): none.
            return bool(self.raw.get("toPorts")) and not (_UNMODELLED & set(self.raw))
        for selector in self.selectors:  # a loop, not any(): asked ~160,000 times per check
            if selector.matches(peer):
                return True
        if peer.entities & self.entities:
            return True
        if self.cidrs and _cidr_matches(self.cidrs, peer):
            return True
        return bool(peer.entity == "world" and peer.fqdn) and any(
            _dns_matches(f, peer.fqdn or "") for f in self.fqdns
        )

    @property
    def by_fqdn_only(self) -> bool:
        return set(self.peers) == {"toFQDNs"}

    def entries(self, port: int, protocol: str) -> list[_Entry]:
        """The port rules of this rule that cover the port (row 8); an L3-only rule covers
        every port without L7 rules (row 9). Worked out once per port and protocol (flows
        repeat a few ports); callers must not change the list."""
        key = (port, protocol)
        found = self._entries.get(key)
        if found is None:
            found = self._entries[key] = self._covering(port, protocol)
        return found

    def _covering(self, port: int, protocol: str) -> list[_Entry]:
        port_rules = self.raw.get("toPorts")
        if not port_rules:
            return [_Entry(self.where, None)]
        out = []
        for j, port_rule in enumerate(port_rules):
            ports = port_rule.get("ports") or [{}]
            if any(_port_matches(p, port, protocol) for p in ports):
                rules = port_rule.get("rules") or None
                out.append(_Entry(f"{self.where}.toPorts[{j}]", rules))
        return out


@dataclass
class _Policy:
    name: str
    namespace: str
    selector: _Selector
    rules: dict[str, list[_Rule]]
    default_deny: dict[Direction, bool]

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> _Policy:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        name = str(meta.get("name"))
        spec = obj.get("spec") or {}
        source = (meta.get("annotations") or {}).get(SOURCE_ANNOTATION)
        label = f"CiliumNetworkPolicy {namespace}/{name}" + (f" ({source})" if source else "")
        rules: dict[str, list[_Rule]] = {}
        for section in ("ingress", "ingressDeny", "egress", "egressDeny"):
            direction: Direction = "ingress" if section.startswith("ingress") else "egress"
            rules[section] = [
                _Rule.parse(f"{label} spec.{section}[{i}]", raw or {}, namespace, direction)
                for i, raw in enumerate(spec.get(section) or [])
            ]
        explicit = spec.get("enableDefaultDeny") or {}
        default_deny: dict[Direction, bool] = {}
        for direction in ("ingress", "egress"):
            has_rules = bool(rules[direction] or rules[f"{direction}Deny"])
            value = explicit.get(direction)
            default_deny[direction] = has_rules if value is None else bool(value)
        selector = _Selector.parse(spec.get("endpointSelector"), namespace)
        return cls(label, namespace, selector, rules, default_deny)
