"""A VPC-native GKE cluster in one of two honest modes.

- ``cilium`` (default): GKE's standard datapath (``LEGACY_DATAPATH``) plus our own Cilium release
  (components/cilium/). GKE keeps running kube-proxy on every node and it cannot be removed;
  Cilium's kube-proxy replacement handles Service traffic and kube-proxy's rules go unused.
  Node pools carry the ``node.cilium.io/agent-not-ready`` taint until Cilium runs on the node.
- ``dataplane-v2``: Google-managed Cilium (``ADVANCED_DATAPATH``), truly without kube-proxy, but
  with no release of ours, no CiliumNetworkPolicy, no L7 rules and no Envoy of ours. Hubble is
  Google's (``advanced_datapath_observability_config``), CiliumClusterwideNetworkPolicy (L3/L4)
  is on only when ``clusterwideNetworkPolicy`` asks for it.

Creates, per cluster: a custom-mode VPC and a subnetwork with ``pods``/``services`` secondary
ranges (or uses the given ones), Cloud Router + Cloud NAT for the private nodes' egress, a
Cloud KMS key ring and key for envelope encryption of Secrets (granted to the GKE service
agent), a least-privilege node service account, the cluster (private nodes, Workload Identity,
shielded nodes, control-plane logs and metrics), node pools separate from the cluster, and a
Kubernetes provider whose kubeconfig is a secret.

The parts live beside this module: the config model (config.py), the network (network.py),
the Secrets key and the nodes' service account (iam.py) and the node pools (node_pools.py).
All their resources are children of this one component.

Not managed here: Cilium itself (components/cilium/), the project and its APIs
(container, compute, cloudkms must be enabled), firewall rules (GKE creates the ones it needs),
and NAT/routing of a network the user brings (``network.network``/``network.subnetwork``).
"""

from __future__ import annotations

import json

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.common import resolve_protect, type_token
from components.contract import GKE_DATAPATH, GKE_MODE_LABEL
from components.gke.config import GkeClusterConfig
from components.gke.iam import node_service_account, secrets_key
from components.gke.network import cluster_network
from components.gke.node_pools import node_pools

__all__ = ["GKE_DATAPATH", "GKE_MODE_LABEL", "GkeCluster"]

# GKE_DATAPATH: GKE's name for each mode's datapath. LEGACY_DATAPATH is GKE's default (iptables
# kube-proxy), stated explicitly so the policy pack can check it against the mode label, which
# it reads from GKE_MODE_LABEL. Both come from policies/data/contract.json, shared with the pack.

# Control-plane logs (the policy pack requires SYSTEM_COMPONENTS and APISERVER) and metrics;
# WORKLOADS logs stay on so application logs reach Cloud Logging as on any GKE cluster.
_LOG_COMPONENTS = ["SYSTEM_COMPONENTS", "APISERVER", "CONTROLLER_MANAGER", "SCHEDULER", "WORKLOADS"]
_METRIC_COMPONENTS = ["SYSTEM_COMPONENTS", "APISERVER", "CONTROLLER_MANAGER", "SCHEDULER"]


def _kubeconfig(context: str, host: str, ca_data: str) -> str:
    """A kubeconfig that authenticates through gke-gcloud-auth-plugin (short-lived tokens from
    the caller's gcloud credentials, no static secret), shaped like `gcloud container clusters
    get-credentials` writes it."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": context,
                    "cluster": {"server": f"https://{host}", "certificate-authority-data": ca_data},
                }
            ],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
            "users": [
                {
                    "name": context,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "gke-gcloud-auth-plugin",
                            "installHint": "Install gke-gcloud-auth-plugin: gcloud components "
                            "install gke-gcloud-auth-plugin",
                            "provideClusterInfo": True,
                        }
                    },
                }
            ],
        }
    )


class GkeCluster(pulumi.ComponentResource):
    """A private, VPC-native GKE cluster whose datapath is our Cilium or Google's."""

    cluster: gcp.container.Cluster
    provider: k8s.Provider
    api_server_host: pulumi.Output[str]
    api_server_port: int = 443
    kubeconfig: pulumi.Output[str]
    node_service_account: pulumi.Output[str]
    protect: bool
    node_pools: list[gcp.container.NodePool]

    def __init__(
        self,
        name: str,
        config: GkeClusterConfig,
        environment: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("gcp", "GkeCluster"), name, None, opts)
        self.protect = resolve_protect(config.protect, environment)
        labels = {
            "meshless-cluster": config.name,
            "meshless-environment": environment,
            GKE_MODE_LABEL: config.mode,
        }
        deletion_protection = (
            config.deletion_protection
            if config.deletion_protection is not None
            else environment == "prod"
        )

        network, subnetwork = cluster_network(name, config, self)
        key_id, key_grant = secrets_key(
            name, config, labels, deletion_protection, parent=self, protect=self.protect
        )
        node_account, node_grants = node_service_account(name, config, self)

        dataplane_v2 = config.mode == "dataplane-v2"
        self.cluster = gcp.container.Cluster(
            f"{name}-cluster",
            name=config.name,
            project=config.project,
            location=config.region,
            node_locations=config.zones,
            network=network,
            subnetwork=subnetwork,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=config.network.pods_range_name,
                services_secondary_range_name=config.network.services_range_name,
            ),
            # GKE insists on a default pool at creation; it is deleted right away because its
            # nodes would carry neither our taint nor our machine types.
            remove_default_node_pool=True,
            initial_node_count=1,
            min_master_version=config.kubernetes_version,
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=config.release_channel),
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True,
                enable_private_endpoint=not config.endpoint.public,
                master_ipv4_cidr_block=config.network.master_cidr,
            ),
            # Always set, even without CIDRs: an empty list admits only the VPC's own ranges.
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                        cidr_block=cidr, display_name=f"allowed-{i}"
                    )
                    for i, cidr in enumerate(config.endpoint.allowed_cidrs)
                ],
                # Otherwise any Compute Engine VM's public IP, in any project, may connect.
                gcp_public_cidrs_access_enabled=False,
            ),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=f"{config.project}.svc.id.goog"
            ),
            enable_shielded_nodes=True,
            database_encryption=gcp.container.ClusterDatabaseEncryptionArgs(
                state="ENCRYPTED", key_name=key_id
            ),
            logging_config=gcp.container.ClusterLoggingConfigArgs(
                enable_components=_LOG_COMPONENTS
            ),
            monitoring_config=gcp.container.ClusterMonitoringConfigArgs(
                enable_components=_METRIC_COMPONENTS,
                managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(
                    enabled=True
                ),
                # Google's Hubble (flow metrics + relay) exists only on Dataplane V2.
                advanced_datapath_observability_config=(
                    gcp.container.ClusterMonitoringConfigAdvancedDatapathObservabilityConfigArgs(
                        enable_metrics=True, enable_relay=True
                    )
                    if dataplane_v2
                    else None
                ),
            ),
            datapath_provider=GKE_DATAPATH[config.mode],
            enable_cilium_clusterwide_network_policy=config.clusterwide_network_policy,
            deletion_protection=deletion_protection,
            resource_labels=labels,
            # The key must be usable by the GKE service agent before the cluster encrypts with it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[key_grant], protect=self.protect),
        )

        pools = node_pools(
            name,
            config,
            node_account,
            node_grants,
            labels,
            cluster=self.cluster,
            parent=self,
            protect=self.protect,
        )

        # Nodes reach the control plane on its private endpoint (their egress to the public one
        # would leave through Cloud NAT, which the authorized networks do not list), so that is
        # the address our Cilium's kube-proxy replacement must use.
        self.api_server_host = self.cluster.private_cluster_config.apply(
            lambda private: (private.private_endpoint or "") if private else ""
        )
        # People and CI use the public endpoint when there is one, the private one otherwise.
        client_host = self.cluster.endpoint if config.endpoint.public else self.api_server_host
        context = f"gke_{config.project}_{config.region}_{config.name}"
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(client_host, self.cluster.master_auth.cluster_ca_certificate).apply(
                lambda args: _kubeconfig(context, args[0], args[1] or "")
            )
        )
        self.node_service_account = node_account.email
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The Cilium release waits for its pods (Helm --wait), so it goes after these: GKE's
        # node pools turn RUNNING without our CNI (GKE's own bridge CNI makes nodes Ready) and
        # the node.cilium.io/agent-not-ready taint keeps every pod but Cilium's off them until
        # the agent runs (Cilium docs, "Installation on GKE"; the agent removes the taint).
        self.node_pools = pools
        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "mode": config.mode,
                "datapathProvider": GKE_DATAPATH[config.mode],
                "endpoint": self.cluster.endpoint,
                "apiServerHost": self.api_server_host,
                "apiServerPort": self.api_server_port,
                "kubeconfig": self.kubeconfig,
                "nodeServiceAccount": self.node_service_account,
            }
        )
