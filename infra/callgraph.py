"""Who may call whom, read back from the CiliumNetworkPolicy objects of a plan.

The graph is read from what would be deployed (the CNP objects in ``resources.json``), not from
the traffic files, so a base branch's plan can be read the same way for ``--compare``, and a
policy that the renderer got wrong shows as drawn, not as intended.

Per cluster: each CNP with a pod selector is a service (namespace/name); its ingress rules
are edges from callers to it, its own egress rules edges to FQDNs, CIDRs, entities and
workloads that are not services declared here. The caller side of a call between two declared
services (egress derived from the callee's ingress, L3/L4 only) and DNS lookups through
kube-dns are not drawn again. Edge labels name the ports and a short form of the L7 rules:
``8080 GET /api/v1/cart/*``, ``9090 gRPC Payments/{Authorize,Capture}``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.export_format import CNP_TYPE, StackExport

__all__ = ["Edge", "Node", "call_graphs", "l7_summary", "ports_summary"]

NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace"
_KUBE_DNS = {NAMESPACE_LABEL: "kube-system", "k8s:k8s-app": "kube-dns"}
_MAX_RULES = 3  # L7 rules written out on one edge; the rest as "+N more"
_MAX_REGEX = 28  # a path regex longer than this is cut (the manifests have it whole)

#: ("svc", ns, name) | ("sel", ns, "k=v,...") | ("ns", ns) | ("entity", e) | ("fqdn", name)
#: | ("cidr", cidr) | ("nsgroup", ns) for a collapsed namespace.
Node = tuple[str, ...]


@dataclass(frozen=True, order=True)
class Edge:
    src: Node
    dst: Node
    label: str


def _labels_text(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k.removeprefix('k8s:')}={v}" for k, v in sorted(labels.items()))


def _port(entry: Mapping[str, Any]) -> str:
    port, proto = str(entry.get("port", "")), str(entry.get("protocol", "TCP")).upper()
    if entry.get("endPort"):
        port = f"{port}-{entry['endPort']}"
    return port if proto in ("TCP", "ANY") else f"{port}/{proto}"


def ports_summary(to_ports: Iterable[Mapping[str, Any]]) -> str:
    """``8080``, ``53/UDP``, ``30000-32767``; several joined with commas; none: any port."""
    ports = [_port(p) for block in to_ports for p in block.get("ports") or []]
    return ",".join(dict.fromkeys(ports)) or "any port"


_UNESCAPE = re.compile(r"\\(.)")


def _literal(regex: str) -> str | None:
    """The text an RE2 regex matches exactly, if it is only escaped literals."""
    if re.search(r"(?<!\\)[.+*?()|\[\]{}^$]", regex):
        return None
    return _UNESCAPE.sub(r"\1", regex)


def _short_path(regex: str | None) -> str:
    """The traffic file's form of a path regex: ``/a/b`` (exact), ``/a/*`` (prefix)."""
    if not regex:
        return "/*"
    for suffix, tail in ((r"(\?.*)?", ""), (".*", "*")):
        if regex.endswith(suffix) and (text := _literal(regex[: -len(suffix)])) is not None:
            return text + tail
    text = _literal(regex)
    if text is not None:
        return text
    return f"~{regex}" if len(regex) <= _MAX_REGEX else f"~{regex[: _MAX_REGEX - 1]}…"


_GRPC = re.compile(r"^/((?:[A-Za-z_]\w*\\\.)*[A-Za-z_]\w*)/([A-Za-z_]\w*|\[\^/\]\+)$")


def l7_summary(rules: Mapping[str, Any]) -> list[str]:
    """Short lines for a toPorts ``rules`` block: HTTP method + path, gRPC service/methods,
    Kafka role + topic."""
    grpc: dict[str, list[str]] = defaultdict(list)
    http: dict[str, list[str]] = defaultdict(list)
    for rule in rules.get("http") or []:
        path = rule.get("path")
        match = _GRPC.match(path or "") if rule.get("method") == "POST" else None
        if match:
            service = _UNESCAPE.sub(r"\1", match[1]).rsplit(".", 1)[-1]
            grpc[service].append("*" if match[2] == "[^/]+" else match[2])
            continue
        extra = " +headers" if rule.get("headers") or rule.get("headerMatches") else ""
        host = f" host {rule['host']}" if rule.get("host") else ""
        http[f"{_short_path(path)}{host}{extra}"].append(rule.get("method") or "*")
    lines = [f"{','.join(dict.fromkeys(m))} {path}" for path, m in http.items()]
    for service, methods in grpc.items():
        names = list(dict.fromkeys(methods))
        lines.append(
            f"gRPC {service}/{names[0]}"
            if len(names) == 1
            else f"gRPC {service}/{{{','.join(names)}}}"
        )
    for rule in rules.get("kafka") or []:
        lines.append(f"Kafka {rule.get('role', '*')} {rule.get('topic', '*')}")
    return lines


def _edge_label(to_ports: list[Mapping[str, Any]]) -> str:
    ports = ports_summary(to_ports)
    rules = [line for block in to_ports for line in l7_summary(block.get("rules") or {})]
    if not rules:
        return ports
    shown = rules[:_MAX_RULES] + (
        [f"+{len(rules) - _MAX_RULES} more"] if rules[_MAX_RULES:] else []
    )
    return "\n".join([f"{ports} {shown[0]}", *shown[1:]])


class _ClusterPolicies:
    """The CNP objects of one cluster, and the services they declare."""

    def __init__(self, objects: Sequence[Mapping[str, Any]]) -> None:
        self.objects = objects
        self.services: dict[tuple[str, str], str] = {}  # (ns, "k=v,...") -> service name
        for obj in objects:
            meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
            labels = (spec.get("endpointSelector") or {}).get("matchLabels") or {}
            if labels:
                self.services[(meta.get("namespace", "default"), _labels_text(labels))] = meta[
                    "name"
                ]

    def peer(self, selector: Mapping[str, Any], own_ns: str) -> Node | None:
        labels = dict(selector.get("matchLabels") or {})
        if labels == _KUBE_DNS:
            return None
        namespace = labels.pop(NAMESPACE_LABEL, own_ns)
        if not labels:
            return ("ns", namespace)
        name = self.services.get((namespace, _labels_text(labels)))
        return ("svc", namespace, name) if name else ("sel", namespace, _labels_text(labels))

    def edges(self) -> set[Edge]:
        found: set[Edge] = set()
        for obj in self.objects:
            meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
            if not (spec.get("endpointSelector") or {}).get("matchLabels"):
                continue  # the namespace's default deny: no service of its own
            ns = meta.get("namespace", "default")
            me: Node = ("svc", ns, meta["name"])
            for rule in spec.get("ingress") or []:
                label = _edge_label(rule.get("toPorts") or [])
                for peer in self._peers(rule, ns, "from"):
                    found.add(Edge(peer, me, label))
            for rule in spec.get("egress") or []:
                label = _edge_label(rule.get("toPorts") or [])
                for peer in self._peers(rule, ns, "to"):
                    if peer[0] != "svc":  # a declared callee draws the call at its ingress
                        found.add(Edge(me, peer, label))
        return found

    def _peers(self, rule: Mapping[str, Any], ns: str, prefix: str) -> list[Node]:
        peers = [self.peer(sel, ns) for sel in rule.get(f"{prefix}Endpoints") or []]
        peers += [("entity", str(e)) for e in rule.get(f"{prefix}Entities") or []]
        peers += [("cidr", str(c.get("cidr"))) for c in rule.get(f"{prefix}CIDRSet") or []]
        peers += [("cidr", str(c)) for c in rule.get(f"{prefix}CIDR") or []]
        for fqdn in rule.get("toFQDNs") or [] if prefix == "to" else []:
            peers.append(("fqdn", str(fqdn.get("matchName") or fqdn.get("matchPattern"))))
        return [p for p in peers if p is not None]


def call_graphs(resources: StackExport | Iterable[Mapping[str, Any]]) -> dict[str, set[Edge]]:
    """cluster name → the edges of its call graph (clusters without policies: no entry)."""
    per_cluster = StackExport.of(resources).by_cluster(CNP_TYPE, outside="(no cluster)")
    return {name: _ClusterPolicies(objs).edges() for name, objs in per_cluster.items()}
