"""What the flow evaluator (components/flows/evaluate.py) reasons about: the two ends of a
flow as Cilium identifies them, the flow with its optional L7 request, and the verdict of each
direction with the rule that decided it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

__all__ = [
    "DNS_SERVER",
    "NAMESPACE_KEY",
    "Decision",
    "Direction",
    "Endpoint",
    "Flow",
    "Request",
    "Verdict",
]

JSON = dict[str, Any]
Direction = Literal["ingress", "egress"]

NAMESPACE_KEY = "io.kubernetes.pod.namespace"
_IN_CLUSTER = {"host", "remote-node", "health", "ingress", "init", "unmanaged"}


@dataclass(frozen=True)
class Endpoint:
    """One end of a flow as Cilium sees it: a pod (namespace and labels) or a reserved
    identity (``entity``: host, remote-node, health, ingress, kube-apiserver, world), with an
    address or DNS name for destinations outside the cluster."""

    name: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    entity: str | None = None
    ip: str | None = None
    fqdn: str | None = None

    @property
    def is_pod(self) -> bool:
        return self.entity is None

    @cached_property
    def entities(self) -> frozenset[str]:
        """The entity names that select this endpoint (row 6); asked per rule and flow."""
        if self.is_pod or self.entity in _IN_CLUSTER:
            own = {self.entity} if self.entity else set()
            return frozenset({*own, "cluster", "all"})
        if self.entity == "world":
            version = ipaddress.ip_address(self.ip).version if self.ip else None
            extra = {f"world-ipv{version}"} if version else set()
            return frozenset({"world", "all", *extra})
        return frozenset({str(self.entity), "all"})

    @cached_property
    def selector_values(self) -> Mapping[tuple[str, str], str | None]:
        """The value of each selector key (``k8s:app``, ``reserved:host``, ``any:app``) this
        endpoint has; a key not here has none. A flow check of 1270 services asks some 200,000
        times, so the answers are worked out once per endpoint."""
        if self.entity is not None:  # not a pod: only its reserved identity
            return {("reserved", self.entity): ""}
        values: dict[tuple[str, str], str | None] = {}
        for source in ("k8s", "any"):
            values.update({(source, key): value for key, value in self.labels.items()})
            values[(source, NAMESPACE_KEY)] = self.namespace
        return values

    @cached_property
    def identity(self) -> tuple[Any, ...]:
        """Namespace and labels: what the policies that select this endpoint depend on."""
        return (self.namespace, *sorted(self.labels.items()))


@dataclass(frozen=True)
class Request:
    """The L7 part of a flow: an HTTP request, or a DNS lookup (``dns``)."""

    method: str | None = None
    path: str | None = None
    host: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    dns: str | None = None

    def __str__(self) -> str:
        if self.dns:
            return f"DNS lookup {self.dns}"
        shown = f"{self.method} {self.path}"
        return shown + (f" (Host {self.host})" if self.host else "")


@dataclass(frozen=True)
class Flow:
    source: Endpoint
    destination: Endpoint
    port: int
    protocol: str = "TCP"
    request: Request | None = None

    def __str__(self) -> str:
        text = f"{self.source.name} -> {self.destination.name}:{self.port}/{self.protocol}"
        return f"{text} {self.request}" if self.request else text


@dataclass(frozen=True)
class Decision:
    """One direction's verdict and the rule that decided it (a policy path, or why none)."""

    direction: Direction
    allowed: bool
    rule: str
    reason: str

    def __str__(self) -> str:
        word = "allowed" if self.allowed else "DENIED"
        return f"{self.direction} {word} by {self.rule}: {self.reason}"


@dataclass(frozen=True)
class Verdict:
    flow: Flow
    egress: Decision
    ingress: Decision

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and self.ingress.allowed

    @property
    def deciding(self) -> Decision:
        """The denying side (egress first), else the ingress side, where L7 rules live."""
        if not self.egress.allowed:
            return self.egress
        return self.ingress

    def explain(self) -> str:
        verdict = "ALLOWED" if self.allowed else "DENIED"
        return f"{self.flow}: {verdict}\n  {self.egress}\n  {self.ingress}"


# The DNS server every default deny sends lookups to (CoreDNS on EKS, kube-dns on GKE).
DNS_SERVER = Endpoint(
    "kube-system/kube-dns", namespace="kube-system", labels={"k8s-app": "kube-dns"}
)
