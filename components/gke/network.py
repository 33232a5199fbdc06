"""The GKE cluster's network: a custom-mode VPC, the nodes' subnetwork with the pods and
Services secondary ranges (VPC-native), and Cloud Router + Cloud NAT for private nodes' egress.

Children of the GkeCluster component (their URNs carry its type), created only when the user
gives no ``network.network``/``network.subnetwork``. Not managed here: firewall rules (GKE
creates the ones it needs) and the NAT and routing of a network the user brings.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from components.gke.config import GkeClusterConfig

__all__ = ["cluster_network"]


def cluster_network(
    name: str, config: GkeClusterConfig, parent: pulumi.Resource
) -> tuple[pulumi.Input[str], pulumi.Input[str]]:
    """A custom-mode VPC, the nodes' subnetwork with the pod and Service ranges, and Cloud
    NAT; or the network and subnetwork the user gave (whose NAT is theirs)."""
    net = config.network
    if net.network is not None and net.subnetwork is not None:
        return net.network, net.subnetwork
    child = pulumi.ResourceOptions(parent=parent)
    network = gcp.compute.Network(
        f"{name}-vpc",
        name=config.name,
        project=config.project,
        auto_create_subnetworks=False,
        routing_mode="REGIONAL",
        opts=child,
    )
    subnetwork = gcp.compute.Subnetwork(
        f"{name}-nodes",
        name=f"{config.name}-nodes",
        project=config.project,
        region=config.region,
        network=network.id,
        ip_cidr_range=net.node_cidr,
        secondary_ip_ranges=[
            gcp.compute.SubnetworkSecondaryIpRangeArgs(
                range_name=net.pods_range_name, ip_cidr_range=net.pod_cidr
            ),
            gcp.compute.SubnetworkSecondaryIpRangeArgs(
                range_name=net.services_range_name, ip_cidr_range=net.service_cidr
            ),
        ],
        # Private nodes pull from Artifact Registry and talk to Google APIs without NAT.
        private_ip_google_access=True,
        opts=child,
    )
    router = gcp.compute.Router(
        f"{name}-router",
        name=f"{config.name}-router",
        project=config.project,
        region=config.region,
        network=network.id,
        opts=child,
    )
    gcp.compute.RouterNat(
        f"{name}-nat",
        name=f"{config.name}-nat",
        project=config.project,
        region=config.region,
        router=router.name,
        nat_ip_allocate_option="AUTO_ONLY",
        # Pods' addresses too: both modes route pod IPs natively inside the VPC.
        source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
        log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
        opts=child,
    )
    return network.id, subnetwork.id
