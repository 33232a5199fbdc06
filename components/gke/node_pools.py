"""The GKE cluster's node pools, separate from the cluster (its default pool is removed).

In mode ``cilium`` every pool carries ``node.cilium.io/agent-not-ready=true:NoExecute`` until
our Cilium agent runs on the node; Google's Cilium (dataplane-v2) needs no such gate. Sizes are
totals across zones, as on EKS; the autoscaler owns the node count.
"""

from __future__ import annotations

import math

import pulumi
import pulumi_gcp as gcp

from components.common import CILIUM_AGENT_NOT_READY_TAINT
from components.gke.config import GkeClusterConfig

__all__ = ["node_pools"]

# Kubernetes spells taint effects NoExecute; the GKE API spells them NO_EXECUTE.
_GKE_TAINT_EFFECT = {
    "NoExecute": "NO_EXECUTE",
    "NoSchedule": "NO_SCHEDULE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
}


def node_pools(
    name: str,
    config: GkeClusterConfig,
    account: gcp.serviceaccount.Account,
    grants: list[pulumi.Resource],
    labels: dict[str, str],
    cluster: gcp.container.Cluster,
    parent: pulumi.Resource,
    protect: bool,
) -> list[pulumi.Resource]:
    """One node pool per configured pool, tainted until our Cilium runs (mode cilium)."""
    taints = None
    if config.mode == "cilium":
        # Our Cilium removes the taint once its agent runs on the node; without it pods
        # would start on GKE's default CNI and keep addresses Cilium does not manage.
        # Google's Cilium (dataplane-v2) needs no such gate.
        taint = CILIUM_AGENT_NOT_READY_TAINT
        taints = [
            gcp.container.NodePoolNodeConfigTaintArgs(
                key=taint["key"],
                value=taint["value"],
                effect=_GKE_TAINT_EFFECT[taint["effect"]],
            )
        ]
    pools: list[pulumi.Resource] = []
    for pool in config.node_pools:
        pools.append(
            gcp.container.NodePool(
                f"{name}-{pool.name}",
                name=pool.name,
                project=config.project,
                location=config.region,
                cluster=cluster.name,
                # Per zone, rounded up so the pool starts with at least the desired total.
                initial_node_count=math.ceil(pool.initial_size / config.zone_count),
                # Totals across zones, matching what minSize/maxSize mean on EKS.
                autoscaling=gcp.container.NodePoolAutoscalingArgs(
                    total_min_node_count=pool.min_size,
                    total_max_node_count=pool.max_size,
                    # Spot pools scale where capacity is (less preemption); others stay
                    # balanced across zones.
                    location_policy="ANY" if pool.spot else "BALANCED",
                ),
                # Release channels require auto-upgrade; auto-repair replaces broken nodes.
                management=gcp.container.NodePoolManagementArgs(
                    auto_repair=True, auto_upgrade=True
                ),
                upgrade_settings=gcp.container.NodePoolUpgradeSettingsArgs(
                    strategy="SURGE", max_surge=1, max_unavailable=0
                ),
                node_config=gcp.container.NodePoolNodeConfigArgs(
                    machine_type=pool.machine_type,
                    disk_size_gb=pool.disk_size_gb,
                    disk_type="pd-balanced",
                    image_type=config.node_image,
                    spot=pool.spot,
                    labels=pool.labels,
                    resource_labels=labels,
                    taints=taints,
                    service_account=account.email,
                    # Access is governed by IAM roles, not legacy scopes.
                    oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                    shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                        enable_secure_boot=True, enable_integrity_monitoring=True
                    ),
                    # Pods see the GKE metadata server (Workload Identity), never the
                    # node's own credentials.
                    workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                        mode="GKE_METADATA"
                    ),
                ),
                opts=pulumi.ResourceOptions(
                    parent=parent,
                    depends_on=grants,
                    # The autoscaler owns the node count; a changed initial count would
                    # otherwise recreate the whole pool.
                    ignore_changes=["initialNodeCount", "nodeCount"],
                    protect=protect,
                ),
            )
        )
    return pools
