"""The result of loading a policy folder: every service, checked as a whole, with the
in-cluster calls derived from the callees' ingress rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from components.traffic.model import ServiceKey, ServicePolicy
from components.traffic.ports import PortSpec

__all__ = ["PolicySet"]


@dataclass(frozen=True)
class PolicySet:
    """Every service of one policy folder, checked as a whole.

    ``calls`` are the derived in-cluster calls, (caller, callee) -> ports (() = all ports): the
    egress half of each ingress rule whose callers are declared services.
    """

    folder: str
    services: tuple[ServicePolicy, ...]
    warnings: list[str]
    calls: Mapping[tuple[ServiceKey, ServiceKey], tuple[PortSpec, ...]]
    sources: Mapping[ServiceKey, str]

    @cached_property
    def by_key(self) -> dict[ServiceKey, ServicePolicy]:
        return {s.key: s for s in self.services}

    @property
    def namespaces(self) -> set[str]:
        """Namespaces with policies: each gets a default deny."""
        return {s.namespace for s in self.services}

    @property
    def has_l7(self) -> bool:
        """Whether any rule needs Envoy (HTTP, gRPC or Kafka). DNS rules, which every policy
        set has through the default deny, are enforced by the agent's DNS proxy instead."""
        return any(s.has_l7 for s in self.services)

    @property
    def needs_mutual_auth(self) -> bool:
        """Whether any rule has ``authentication: required`` (the cluster needs mutualAuth)."""
        return any(s.needs_mutual_auth for s in self.services)

    def service(self, namespace: str, name: str) -> ServicePolicy | None:
        return self.by_key.get((namespace, name))

    def selector_for(self, namespace: str, name: str) -> dict[str, str]:
        """The pod labels of a service: its declared selector, or ``app: <name>``."""
        known = self.service(namespace, name)
        return known.pod_selector if known else {"app": name}
