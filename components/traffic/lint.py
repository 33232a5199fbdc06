"""Cross-file checks of a traffic-policy folder: unique names, references to services that
exist, ports the callee has, rules that conflict; and the calls they derive.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from components.traffic.fields import DEFAULT_DENY_NAME, OPEN_ENTITIES
from components.traffic.model import (
    EgressPeer,
    EgressRule,
    IngressPeer,
    IngressRule,
    ServiceKey,
    ServicePolicy,
    _Rule,
    peer_kind,
)
from components.traffic.policy_set import PolicySet
from components.traffic.ports import PortSpec, _PortProblem, egress_ports, ingress_ports
from components.traffic.source import TrafficPolicyError, _Source


class _Checker:
    """Cross-file checks: names, references, ports, conflicts; then the derived calls."""

    def __init__(self, folder: str, loaded: list[tuple[ServicePolicy, _Source, int]]) -> None:
        self.folder = folder
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.services: dict[ServiceKey, ServicePolicy] = {}
        self.where: dict[ServiceKey, tuple[_Source, int]] = {}
        self.calls: dict[tuple[ServiceKey, ServiceKey], set[PortSpec] | None] = {}
        for service, source, index in loaded:
            if service.key in self.services:
                first = self.where[service.key][0].label
                self.errors.append(
                    source.at(
                        ("services", index, "name"),
                        f"{service.namespace}/{service.name} is already declared in {first}; one policy per service (merge them)",
                    )
                )
                continue
            if service.name == DEFAULT_DENY_NAME:
                self.errors.append(
                    source.at(
                        ("services", index, "name"),
                        f"{DEFAULT_DENY_NAME} is reserved for the namespace's default deny; rename the service",
                    )
                )
                continue
            self.services[service.key] = service
            self.where[service.key] = (source, index)
        self.namespaces = {key[0] for key in self.services}
        self.label_index: dict[tuple[str, str, str], set[ServiceKey]] = defaultdict(set)
        for key, service in self.services.items():
            for label in service.pod_selector.items():
                self.label_index[(key[0], *label)].add(key)

    def at(self, key: ServiceKey, loc: Sequence[Any], message: str) -> str:
        source, index = self.where[key]
        return source.at(("services", index, *loc), message)

    def place(self, key: ServiceKey, loc: Sequence[Any]) -> str:
        source, index = self.where[key]
        return source.place(("services", index, *loc))

    def run(self) -> PolicySet:
        for key, service in self.services.items():
            self._check_ports(key, service)
            for j, rule in enumerate(service.ingress):
                self._check_ingress(key, service, j, rule)
        for key, service in self.services.items():
            for j, egress in enumerate(service.egress):
                self._check_egress(key, service, j, egress)
        for key in self.services:
            _Conflicts(self, key).check()
        if self.errors:
            raise TrafficPolicyError(list(dict.fromkeys(self.errors)))
        calls = {
            pair: tuple(sorted(ports)) if ports else ()
            for pair, ports in sorted(self.calls.items())
        }
        services = tuple(self.services[k] for k in sorted(self.services))
        sources = {k: self.where[k][0].label for k in self.services}
        return PolicySet(self.folder, services, list(dict.fromkeys(self.warnings)), calls, sources)

    # -- ports -----------------------------------------------------------------------------

    def _check_ports(self, key: ServiceKey, service: ServicePolicy) -> None:
        seen_ports: set[tuple[int, str]] = set()
        seen_names: set[str] = set()
        for i, port in enumerate(service.ports):
            if (port.port, port.protocol) in seen_ports:
                self.errors.append(
                    self.at(
                        key,
                        ("ports", i, "port"),
                        f"{port.port}/{port.protocol} is declared twice; remove one",
                    )
                )
            if port.name and port.name in seen_names:
                self.errors.append(
                    self.at(
                        key,
                        ("ports", i, "name"),
                        f"port name {port.name!r} is used twice; names must be unique",
                    )
                )
            seen_ports.add((port.port, port.protocol))
            seen_names.add(port.name or "")

    def _resolve(
        self, key: ServiceKey, loc: tuple[Any, ...], resolve: Any
    ) -> tuple[PortSpec, ...] | None:
        try:
            return resolve()
        except _PortProblem as problem:
            self.errors.append(self.at(key, (*loc, "ports", problem.index), problem.message))
            return None

    def _check_l7_ports(
        self, key: ServiceKey, loc: tuple[Any, ...], rule: _Rule, ports: tuple[PortSpec, ...]
    ) -> None:
        if not rule.has_l7:
            return
        kind = "Kafka" if rule.kafka else "HTTP/gRPC"
        if not ports:
            self.errors.append(
                self.at(
                    key,
                    (*loc, "ports"),
                    f"{kind} rules need a port; add `ports` to the rule (or declare the service's ports)",
                )
            )
        for spec in ports:
            if spec.protocol != "TCP":
                self.errors.append(
                    self.at(
                        key,
                        (*loc, "ports"),
                        f"{kind} rules only work on TCP ports, not {spec}; move the L7 rules to a TCP port",
                    )
                )
            elif spec.end_port:
                self.errors.append(
                    self.at(
                        key,
                        (*loc, "ports"),
                        f"{kind} rules need single ports, not the range {spec}",
                    )
                )

    def _check_undeclared(
        self,
        key: ServiceKey,
        loc: tuple[Any, ...],
        target: ServicePolicy,
        ports: Iterable[PortSpec],
    ) -> None:
        declared = {(p.port, p.protocol) for p in target.ports}
        for spec in ports:
            if spec.end_port is None and (spec.port, spec.protocol) not in declared:
                shown = ", ".join(str(PortSpec(p.port, p.protocol)) for p in target.ports) or "none"
                self.warnings.append(
                    self.at(
                        key,
                        (*loc, "ports"),
                        f"{target.namespace}/{target.name} does not expose {spec} (declared: {shown}); nothing listens there, or add the port to its `ports`",
                    )
                )

    # -- ingress ---------------------------------------------------------------------------

    def _check_ingress(
        self, key: ServiceKey, service: ServicePolicy, j: int, rule: IngressRule
    ) -> None:
        loc = ("ingress", j)
        ports = self._resolve(key, loc, lambda: ingress_ports(service, rule))
        if ports is None:
            return
        self._check_l7_ports(key, loc, rule, ports)
        if rule.ports:
            self._check_undeclared(key, loc, service, ports)
        if rule.kafka:
            self._warn_kafka(key, loc)
        for k, peer in enumerate(rule.from_):
            for caller in self._callers(key, (*loc, "from", k), peer):
                self._add_call(caller, key, ports)

    def _callers(
        self, key: ServiceKey, loc: tuple[Any, ...], peer: IngressPeer
    ) -> list[ServiceKey]:
        """The declared services a caller entry stands for (and its unknown-caller problems)."""
        kind = peer_kind(peer)
        namespace = peer.namespace or key[0]
        if kind == "service":
            assert peer.service is not None
            if (namespace, peer.service) in self.services:
                return [(namespace, peer.service)]
            self._unknown(key, (*loc, "service"), namespace, peer.service, "caller")
            return []
        if kind == "namespace":
            return sorted(k for k in self.services if k[0] == namespace)
        if kind == "labels" and namespace in self.namespaces:
            found = self._matching(namespace, peer.labels or {})
            if not found:
                self.warnings.append(
                    self.at(
                        key,
                        (*loc, "labels"),
                        f"no service declared in {namespace} has pods with these labels (by its selector), so no egress is derived for them; under {namespace}'s default deny such pods need their own egress rule",
                    )
                )
            return found
        return []

    def _matching(self, namespace: str, labels: Mapping[str, str]) -> list[ServiceKey]:
        sets = sorted(
            (self.label_index.get((namespace, k, v), set()) for k, v in labels.items()), key=len
        )
        if not sets:
            return sorted(k for k in self.services if k[0] == namespace)
        return sorted(set.intersection(*sets))

    def _unknown(
        self, key: ServiceKey, loc: tuple[Any, ...], namespace: str, name: str, role: str
    ) -> None:
        names = [k[1] for k in self.services if k[0] == namespace]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        if namespace in self.namespaces:
            self.errors.append(
                self.at(
                    key,
                    loc,
                    f"unknown {role} {namespace}/{name}{hint}: namespace {namespace} has policies here, so it is under default deny and an undeclared workload there can never make or take this call; fix the name or add its policy file",
                )
            )
        elif role == "caller":
            self.warnings.append(
                self.at(
                    key,
                    loc,
                    f"caller {namespace}/{name} is not declared in {self.folder}; the rule allows pods labelled app={name} in {namespace}. Check the name",
                )
            )

    def _add_call(
        self, caller: ServiceKey, callee: ServiceKey, ports: tuple[PortSpec, ...]
    ) -> None:
        pair = (caller, callee)
        if not ports or self.calls.get(pair, set()) is None:
            self.calls[pair] = None
        else:
            self.calls.setdefault(pair, set()).update(ports)  # type: ignore[union-attr]

    # -- egress ----------------------------------------------------------------------------

    def _warn_kafka(self, key: ServiceKey, loc: tuple[str | int, ...]) -> None:
        self.warnings.append(
            self.at(
                key,
                (*loc, "kafka"),
                "Kafka rules are beta in Cilium 1.16 and removed in Cilium 1.20; plan to replace them",
            )
        )

    def _check_egress(
        self, key: ServiceKey, service: ServicePolicy, j: int, rule: EgressRule
    ) -> None:
        loc = ("egress", j)
        if rule.kafka:
            self._warn_kafka(key, loc)
        if any(peer_kind(p) != "service" for p in rule.to):
            ports = self._resolve(key, loc, lambda: egress_ports(rule, None))
            if ports is None:
                return
            self._check_l7_ports(key, loc, rule, ports)
            self._check_external(key, loc, rule, ports)
        for k, peer in enumerate(rule.to):
            if peer_kind(peer) == "service":
                self._check_callee(key, (*loc, "to", k), rule, peer)

    def _check_callee(
        self, key: ServiceKey, loc: tuple[Any, ...], rule: EgressRule, peer: EgressPeer
    ) -> None:
        assert peer.service is not None
        namespace = peer.namespace or key[0]
        target = self.services.get((namespace, peer.service))
        if target is None:
            self._unknown(key, (*loc, "service"), namespace, peer.service, "callee")
            ports = self._resolve(key, loc[:2], lambda: egress_ports(rule, None))
            if ports is not None:
                self._check_l7_ports(key, loc[:2], rule, ports)
            return
        ports = self._resolve(key, loc[:2], lambda: egress_ports(rule, target))
        if ports is None:
            return
        self._check_l7_ports(key, loc[:2], rule, ports)
        self._check_undeclared(key, loc[:2], target, ports)
        if (key, target.key) not in self.calls:
            self.warnings.append(
                self.at(
                    key,
                    (*loc, "service"),
                    f"no ingress rule of {namespace}/{target.name} lets {key[0]}/{key[1]} in, so its default deny drops this traffic; add {key[1]} to {target.name}'s callers ({self.where[target.key][0].label})",
                )
            )

    def _check_external(
        self, key: ServiceKey, loc: tuple[Any, ...], rule: EgressRule, ports: tuple[PortSpec, ...]
    ) -> None:
        for k, peer in enumerate(rule.to):
            if peer.fqdn_pattern is not None and peer.fqdn_pattern.strip(".") == "*":
                self.warnings.append(
                    self.at(
                        key,
                        (*loc, "to", k, "fqdnPattern"),
                        "'*' allows every domain name; list the names this service needs",
                    )
                )
            if peer.entity in OPEN_ENTITIES and not ports:
                self.warnings.append(
                    self.at(
                        key,
                        (*loc, "to", k, "entity"),
                        f"allows all ports to {peer.entity}; add `ports`",
                    )
                )
        if (
            rule.http
            and any(p.port == 443 for p in ports)
            and any(peer_kind(p) in ("fqdn", "fqdnPattern", "cidr", "entity") for p in rule.to)
        ):
            self.warnings.append(
                self.at(
                    key,
                    (*loc, "http"),
                    "HTTP rules on port 443 see only TLS; Cilium cannot check paths of encrypted traffic without TLS interception, so these requests will be dropped. Remove the HTTP rules or use plain HTTP",
                )
            )


class _Conflicts:
    """Contradicting intent among the ingress rules that select the same pods: one rule opens
    a port to everybody (or without L7 rules) while another restricts it. Cilium unions all
    rules, so the restriction silently does nothing."""

    def __init__(self, checker: _Checker, key: ServiceKey) -> None:
        self.checker = checker
        self.key = key
        service = checker.services[key]
        # Services whose selectors contain all of ours select a subset of our pods: overlap.
        others = [k for k in checker._matching(key[0], service.pod_selector) if k != key]
        self.group = [key, *others]

    def check(self) -> None:
        rules = []
        for owner in self.group:
            service = self.checker.services[owner]
            for j, rule in enumerate(service.ingress):
                try:
                    ports = ingress_ports(service, rule)
                except _PortProblem:
                    continue
                rules.append((owner, j, rule, ports))
        for other in self.group[1:]:
            self._same_pods(other)
        for a in rules:
            for b in rules:
                if a is not b and (a[0] == self.key or b[0] == self.key):
                    self._pair(a, b)

    def _same_pods(self, other: ServiceKey) -> None:
        mine = self.checker.services[self.key].pod_selector
        theirs = self.checker.services[other].pod_selector
        if mine == theirs and other < self.key:
            return  # reported once, from the other side
        relation = "the same pods as" if mine == theirs else "a subset of the pods of"
        where = self.checker.place(self.key, ("name",))
        self.checker.warnings.append(
            self.checker.at(
                other,
                ("selector",),
                f"selects {relation} {self.key[0]}/{self.key[1]} ({where}); Cilium applies both policies' rules to them, so each may allow what the other meant to forbid",
            )
        )

    def _pair(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
        owner_a, j_a, rule_a, ports_a = a
        owner_b, j_b, rule_b, ports_b = b
        shared = _overlap(ports_a, ports_b)
        if shared is None:
            return
        open_a = any(p.entity in OPEN_ENTITIES for p in rule_a.from_)
        open_b = any(p.entity in OPEN_ENTITIES for p in rule_b.from_)
        where_a = self.checker.place(owner_a, ("ingress", j_a))
        if open_a and not open_b and owner_a != owner_b and not rule_a.has_l7:
            entity = next(p.entity for p in rule_a.from_ if p.entity in OPEN_ENTITIES)
            self.checker.warnings.append(
                self.checker.at(
                    owner_b,
                    ("ingress", j_b, "from"),
                    f"restricts callers on {shared}, but {where_a} lets {entity} in on the same port without L7 rules; Cilium unions rules, so the restriction has no effect",
                )
            )
            return
        if rule_b.has_l7 and not rule_a.has_l7 and (open_a or _same_peers(rule_a, rule_b)):
            self.checker.warnings.append(
                self.checker.at(
                    owner_b,
                    ("ingress", j_b),
                    f"its L7 rules do not restrict these callers on {shared}: {where_a} allows them on that port without L7 rules, and Cilium unions rules",
                )
            )


def _overlap(a: tuple[PortSpec, ...], b: tuple[PortSpec, ...]) -> str | None:
    """A description of the ports two rules share ("all ports" for L3-only), or None."""
    if not a or not b:
        return ", ".join(str(p) for p in (a or b)) or "all ports"
    shared = [
        p
        for p in a
        for q in b
        if p.protocol == q.protocol
        and p.port <= (q.end_port or q.port)
        and q.port <= (p.end_port or p.port)
    ]
    return ", ".join(sorted({str(p) for p in shared})) or None


def _same_peers(a: _Rule, b: IngressRule) -> bool:
    """Whether rule ``a`` lets in every caller ``b`` names (same entries, any order)."""
    assert isinstance(a, IngressRule)
    mine = {p.model_dump_json() for p in a.from_}
    return all(p.model_dump_json() in mine for p in b.from_)
