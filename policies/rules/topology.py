"""Which cluster each resource of a stack belongs to, for the stack policies.

A stack may hold several clusters. A resource is tied to a cluster by, in order:
1. its Kubernetes provider: the release's and the policies' ``provider`` is the cluster's
   ``pulumi:providers:kubernetes``, and that provider depends on (or shares a component parent
   with) the cluster;
2. a direct dependency on the cluster (an EKS add-on or node group takes ``clusterName`` from
   the cluster's outputs);
3. its component ancestry: the cluster resource's parent is the cluster component
   (``meshless:aws:EksCluster`` / ``meshless:gcp:GkeCluster``), so anything under that
   component belongs to it;
4. when the stack has exactly one cluster, everything belongs to it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ._policy import Resource
from ._values import MISSING, lookup
from .cilium import is_cilium_release, is_preflight_only
from .contract import GKE_DATAPATHS
from .kinds import (
    CCNP,
    CNP,
    EKS_CLUSTER,
    GKE_CLUSTER,
    GKE_MODE_LABEL,
    HELM_RELEASE,
    KUBERNETES_PROVIDER,
)

__all__ = ["Cluster", "Topology", "l7_rule_kinds"]

_STACK_ROOT = "pulumi:pulumi:Stack"


@dataclass
class Cluster:
    resource: Resource
    releases: list[Resource] = field(default_factory=list)
    #: Helm releases on this cluster's provider whose properties the engine did not send: during
    #: `pulumi preview` of a new cluster the Kubernetes provider's kubeconfig is unknown, and the
    #: engine then hands AnalyzeStack an empty property bag for every resource on that provider
    #: (pulumi sdk/v3 go/common/resource/plugin/provider_plugin.go, Create: "if !pcfg.known ...
    #: return CreateResponse{}"). Found by `make conformance`; a release always has a chart, so
    #: empty means "not known yet", not "not Cilium".
    unverified: list[Resource] = field(default_factory=list)

    @property
    def cloud(self) -> str:
        return "eks" if self.resource.type == EKS_CLUSTER else "gke"

    @property
    def mode(self) -> str:
        """ "cilium" (our own release) or "dataplane-v2" (Google-managed Cilium)."""
        if self.resource.type == EKS_CLUSTER:
            return "cilium"
        label = lookup(self.resource.props, f"resourceLabels.{GKE_MODE_LABEL}")
        if label in GKE_DATAPATHS:
            return str(label)
        datapath = self.resource.props.get("datapathProvider", MISSING)
        return "dataplane-v2" if datapath == GKE_DATAPATHS["dataplane-v2"] else "cilium"

    @property
    def label(self) -> str:
        return f"{self.resource.type} '{self.resource.name}'"


class Topology:
    """The clusters of a stack and the edges needed to place every other resource."""

    def __init__(self, resources: Iterable[Resource]) -> None:
        self.resources = list(resources)
        self.by_urn = {r.urn: r for r in self.resources}
        self.clusters = {
            r.urn: Cluster(r) for r in self.resources if r.type in (EKS_CLUSTER, GKE_CLUSTER)
        }
        self._anchors = self._cluster_anchors()
        self._providers = {
            r.urn: owner
            for r in self.resources
            if r.type.startswith(KUBERNETES_PROVIDER)
            and (owner := self._owner_without_provider(r)) is not None
        }
        for release in self.cilium_releases():
            owner = self.owner(release)
            if owner is not None:
                owner.releases.append(release)
        for release in self.resources:
            if release.type == HELM_RELEASE and not release.props:
                owner = self.owner(release)
                if owner is not None:
                    owner.unverified.append(release)

    def _cluster_anchors(self) -> dict[str, Cluster]:
        """Component URN -> the one cluster resource directly under it."""
        anchors: dict[str, Cluster] = {}
        ambiguous: set[str] = set()
        for cluster in self.clusters.values():
            parent = cluster.resource.parent
            if parent is None or self._type(parent) == _STACK_ROOT:
                continue
            if parent in anchors:
                ambiguous.add(parent)
            anchors[parent] = cluster
        return {k: v for k, v in anchors.items() if k not in ambiguous}

    def _type(self, urn: str) -> str:
        resource = self.by_urn.get(urn)
        return resource.type if resource else ""

    def ancestors(self, resource: Resource) -> list[str]:
        chain, seen = [], set()
        parent = resource.parent
        while parent and parent not in seen:
            seen.add(parent)
            chain.append(parent)
            node = self.by_urn.get(parent)
            parent = node.parent if node else None
        return chain

    def _owner_without_provider(self, resource: Resource) -> Cluster | None:
        for dep in resource.dependencies:
            if dep in self.clusters:
                return self.clusters[dep]
        for ancestor in self.ancestors(resource):
            if ancestor in self._anchors:
                return self._anchors[ancestor]
        if len(self.clusters) == 1:
            return next(iter(self.clusters.values()))
        return None

    def owner(self, resource: Resource) -> Cluster | None:
        """The cluster a resource is deployed to or belongs to, if it can be told."""
        if resource.urn in self.clusters:
            return self.clusters[resource.urn]
        if resource.provider and resource.provider in self._providers:
            return self._providers[resource.provider]
        return self._owner_without_provider(resource)

    def cilium_releases(self) -> list[Resource]:
        """The clusters' Cilium installs (a pre-flight check release installs nothing)."""
        return [
            r
            for r in self.resources
            if r.type == HELM_RELEASE
            and is_cilium_release(r.props)
            and not is_preflight_only(r.props)
        ]

    def network_policies(self) -> list[Resource]:
        return [r for r in self.resources if r.type in (CNP, CCNP)]

    def waits_for(self, resource: Resource, target: Resource) -> bool:
        """Whether ``resource`` (transitively) depends on ``target``. Depending on a component
        that contains ``target`` counts: Pulumi waits for all of a component's children."""
        goals = {target.urn} | {a for a in self.ancestors(target) if self._type(a) != _STACK_ROOT}
        queue, seen = deque(resource.dependencies), set()
        while queue:
            urn = queue.popleft()
            if urn in goals:
                return True
            if urn in seen:
                continue
            seen.add(urn)
            node = self.by_urn.get(urn)
            if node is not None:
                queue.extend(node.dependencies)
        return False


def _rule_blocks(spec: Any) -> Iterable[dict[str, Any]]:
    if not isinstance(spec, dict):
        return
    for direction in ("ingress", "egress"):
        rules = spec.get(direction)
        for rule in rules if isinstance(rules, list) else []:
            ports = rule.get("toPorts") if isinstance(rule, dict) else None
            for port in ports if isinstance(ports, list) else []:
                if isinstance(port, dict) and isinstance(port.get("rules"), dict):
                    yield port["rules"]


def l7_rule_kinds(props: dict[str, Any]) -> set[str]:
    """L7 rule kinds in a CNP/CCNP (``spec`` and ``specs``): http, kafka, dns, l7proto.
    "unknown" when the spec is not known during preview."""
    specs: list[Any] = [props.get("spec")]
    extra = props.get("specs")
    specs += extra if isinstance(extra, list) else []
    kinds: set[str] = set()
    for spec in specs:
        if isinstance(spec, str):  # an unknown sentinel
            kinds.add("unknown")
        for rules in _rule_blocks(spec):
            kinds |= {k for k in ("http", "kafka", "dns", "l7proto") if rules.get(k)}
    return kinds
