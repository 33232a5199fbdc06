"""Stack wiring: each cluster gets exactly one Cilium, and what needs Cilium waits for it.

These look across resources (AnalyzeStack), so they see the dependency graph the engine will
follow. Ordering matters on a cluster without kube-proxy: CoreDNS scheduled before the agent
has no pod network, and CiliumNetworkPolicy CRDs only exist once the operator has run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pulumi_policy import EnforcementLevel

from ._policy import Resource, StackReport, of_types, stack_policy
from ._values import MISSING, describe, is_unknown, iter_dicts, lookup
from .contract import AGENT_NOT_READY_TAINT
from .kinds import (
    CCNP,
    CNP,
    EKS_ADDON,
    EKS_CLUSTER,
    EKS_NODE_GROUP,
    GKE_CLUSTER,
    GKE_NODE_POOL,
    HELM_RELEASE,
)
from .topology import Cluster, Topology

__all__ = [
    "CILIUM_NODE_TAINT",
    "CLUSTER_HAS_ONE_CILIUM_RELEASE",
    "EKS_COREDNS_AFTER_CILIUM",
    "NETWORK_POLICIES_AFTER_CILIUM",
]

TAINT_KEY: Final = AGENT_NOT_READY_TAINT["key"]
# Kubernetes spells the effect NoExecute, the EKS and GKE APIs NO_EXECUTE: compared without case
# or underscores.
_EFFECT: Final = AGENT_NOT_READY_TAINT["effect"].lower()
_TAINT: Final = f"{TAINT_KEY}={AGENT_NOT_READY_TAINT['value']}:{AGENT_NOT_READY_TAINT['effect']}"
# What the topology reads: cluster modes, which releases are Cilium, add-on names, policies.
_TOPOLOGY: Final = (EKS_CLUSTER, GKE_CLUSTER, HELM_RELEASE)


def _validate_one_release(
    resources: list[Resource], report: StackReport, _config: Mapping[str, Any]
) -> None:
    topology = Topology(resources)
    for cluster in topology.clusters.values():
        count = len(cluster.releases)
        names = ", ".join(f"'{r.name}'" for r in cluster.releases) or "none"
        if cluster.mode == "dataplane-v2" and count:
            report(
                f"{cluster.label} is in mode dataplane-v2 (Google-managed Cilium) but has Cilium "
                f"release(s) {names}; two Ciliums would fight over the datapath. Remove the "
                "release or switch the cluster to mode 'cilium'",
                cluster.resource.urn,
            )
        elif cluster.mode == "cilium" and count != 1 and not (count == 0 and cluster.unverified):
            report(
                f"{cluster.label} needs exactly one Cilium release on its Kubernetes provider; "
                f"found {count} ({names}). Without one the nodes stay tainted and have no "
                "pod network; with two, releases overwrite each other. Give it one CiliumRelease",
                cluster.resource.urn,
            )
    for release in topology.cilium_releases():
        if topology.owner(release) is None:
            report(
                f"Cilium release '{release.name}' is not bound to any cluster: its provider is "
                f"{describe(release.provider or MISSING)}. Deploy it with the cluster's "
                "Kubernetes provider (a provider created from that cluster's kubeconfig)",
                release.urn,
            )


CLUSTER_HAS_ONE_CILIUM_RELEASE = stack_policy(
    name="cluster-has-one-cilium-release",
    description=(
        "Every cluster has exactly one Cilium Helm release on its Kubernetes provider, except "
        "GKE clusters in mode dataplane-v2, which have none (Google manages their Cilium)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_one_release,
    needs_props=of_types(*_TOPOLOGY),
)


def _validate_coredns(
    resources: list[Resource], report: StackReport, _config: Mapping[str, Any]
) -> None:
    topology = Topology(resources)
    for addon in resources:
        if addon.type != EKS_ADDON or addon.props.get("addonName") != "coredns":
            continue
        cluster = topology.owner(addon)
        if cluster is not None and not cluster.releases and cluster.unverified:
            continue  # preview of a new cluster: its releases' values are not known yet
        if cluster is None or not cluster.releases:
            where = cluster.label if cluster else "no identifiable cluster"
            report(
                f"EKS add-on '{addon.name}' (coredns) belongs to {where}, which has no Cilium "
                "release to wait for. Create the add-on with depends_on=[the cluster's Cilium "
                "release]",
                addon.urn,
            )
            continue
        for release in cluster.releases:
            if not topology.waits_for(addon, release):
                report(
                    f"EKS add-on '{addon.name}' (coredns) does not depend on Cilium release "
                    f"'{release.name}'; CoreDNS pods would be scheduled before any node has a "
                    "pod network and the add-on would time out as DEGRADED. Add "
                    "depends_on=[release]",
                    addon.urn,
                )


EKS_COREDNS_AFTER_CILIUM = stack_policy(
    name="eks-coredns-after-cilium",
    description=(
        "The EKS coredns add-on depends on its cluster's Cilium release, so it is only "
        "created once pods can get a network."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_coredns,
    needs_props=of_types(*_TOPOLOGY, EKS_ADDON),
)


def _dataplane_v2_problem(policy: Resource, cluster: Cluster) -> str | None:
    if policy.type == CNP:
        return (
            f"CiliumNetworkPolicy '{policy.name}' targets {cluster.label} in mode dataplane-v2, "
            "where namespaced CiliumNetworkPolicy is not supported. Use a Kubernetes "
            "NetworkPolicy or an L3/L4 CiliumClusterwideNetworkPolicy"
        )
    enabled = cluster.resource.props.get("enableCiliumClusterwideNetworkPolicy", MISSING)
    if enabled is True:
        return None
    return (
        f"CiliumClusterwideNetworkPolicy '{policy.name}' targets {cluster.label} (dataplane-v2) "
        f"whose enableCiliumClusterwideNetworkPolicy is {describe(enabled)}; the CRD would not "
        "exist. Set enableCiliumClusterwideNetworkPolicy: true on the cluster"
    )


def _policy_problem(policy: Resource, topology: Topology) -> str | None:
    cluster = topology.owner(policy)
    kind = "CiliumNetworkPolicy" if policy.type == CNP else "CiliumClusterwideNetworkPolicy"
    if cluster is None:
        return (
            f"{kind} '{policy.name}' cannot be tied to a cluster (provider "
            f"{describe(policy.provider or MISSING)}). Create it with its cluster's Kubernetes "
            "provider"
        )
    if cluster.mode == "dataplane-v2":
        return _dataplane_v2_problem(policy, cluster)
    if not cluster.releases and cluster.unverified:
        return None  # preview of a new cluster: its releases' values are not known yet
    if not cluster.releases:
        return (
            f"{kind} '{policy.name}' targets {cluster.label}, which has no Cilium release; "
            "the CRD would not exist. Add the cluster's Cilium release"
        )
    missing = [r for r in cluster.releases if not topology.waits_for(policy, r)]
    if not missing:
        return None
    return (
        f"{kind} '{policy.name}' does not depend on Cilium release '{missing[0].name}'; the "
        "cilium.io/v2 CRDs are created by the Cilium operator, so on a new cluster the policy "
        "would fail with 'no matches for kind'. Add depends_on=[release]"
    )


def _validate_policies(
    resources: list[Resource], report: StackReport, _config: Mapping[str, Any]
) -> None:
    topology = Topology(resources)
    for policy in topology.network_policies():
        problem = _policy_problem(policy, topology)
        if problem:
            report(problem, policy.urn)


NETWORK_POLICIES_AFTER_CILIUM = stack_policy(
    name="network-policies-after-cilium",
    description=(
        "Every CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy depends on its cluster's "
        "Cilium release (whose operator installs the CRDs); on dataplane-v2 clusters only "
        "clusterwide policies, with enableCiliumClusterwideNetworkPolicy on."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_policies,
    needs_props=of_types(*_TOPOLOGY, CNP, CCNP),
)


def _has_taint(taints: Any) -> bool | None:
    if is_unknown(taints):
        return None
    return any(
        t.get("key") == TAINT_KEY and str(t.get("effect", "")).replace("_", "").lower() == _EFFECT
        for t in iter_dicts(taints)
    )


def _node_pools(topology: Topology) -> list[tuple[Resource, Any]]:
    pools = []
    for res in topology.resources:
        if res.type == EKS_NODE_GROUP:
            pools.append((res, res.props.get("taints", MISSING)))
        elif res.type == GKE_NODE_POOL:
            pools.append((res, lookup(res.props, "nodeConfig.taints")))
    return pools


def _validate_taints(
    resources: list[Resource], report: StackReport, _config: Mapping[str, Any]
) -> None:
    topology = Topology(resources)
    fix = f"Add the taint {_TAINT} (Cilium removes it once the agent is ready)"
    for pool, taints in _node_pools(topology):
        cluster = topology.owner(pool)
        if cluster is not None and cluster.mode == "dataplane-v2":
            continue
        tainted = _has_taint(taints)
        if tainted is False:
            report(
                f"node pool '{pool.name}' ({pool.type}) has taints {describe(taints)}; pods "
                f"could start before Cilium manages the node and get no policy. {fix}",
                pool.urn,
            )
        elif tainted is None:
            report(
                f"node pool '{pool.name}' taints are unknown during preview; they must be "
                f"literal. {fix}",
                pool.urn,
            )
    for cluster in topology.clusters.values():
        problem = _default_pool_problem(cluster)
        if problem:
            report(f"{problem}. {fix}, or set removeDefaultNodePool: true", cluster.resource.urn)


def _default_pool_problem(cluster: Cluster) -> str | None:
    """GKE creates a default node pool from the cluster's own nodeConfig unless removed."""
    props = cluster.resource.props
    if cluster.cloud != "gke" or cluster.mode != "cilium":
        return None
    if props.get("removeDefaultNodePool") is True:
        return None
    taints = lookup(props, "nodeConfig.taints")
    tainted = _has_taint(taints)
    if tainted:
        return None
    if tainted is None:
        return (
            f"{cluster.label}: the default node pool's nodeConfig.taints are unknown during "
            "preview; they must be literal"
        )
    removed = describe(props.get("removeDefaultNodePool", MISSING))
    return (
        f"{cluster.label} keeps GKE's default node pool (removeDefaultNodePool {removed}) "
        f"and its nodeConfig.taints are {describe(taints)}: those nodes would take pods before "
        "Cilium manages them"
    )


CILIUM_NODE_TAINT = stack_policy(
    name="cilium-node-taint",
    description=(
        f"Node pools of clusters running our Cilium carry the {_TAINT} "
        "taint, and GKE's untainted default pool is removed, so no pod starts "
        "before Cilium manages its node."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_taints,
    needs_props=of_types(*_TOPOLOGY, EKS_NODE_GROUP, GKE_NODE_POOL),
)
