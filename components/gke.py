"""A VPC-native GKE cluster in one of two honest modes.

- ``cilium`` (default): GKE's standard datapath (``LEGACY_DATAPATH``) plus our own Cilium release
  (components/cilium.py). GKE keeps running kube-proxy on every node and it cannot be removed;
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

Not managed here: Cilium itself (components/cilium.py), the project and its APIs
(container, compute, cloudkms must be enabled), firewall rules (GKE creates the ones it needs),
and NAT/routing of a network the user brings (``network.network``/``network.subnetwork``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import re
from typing import Annotated, Literal

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
from pydantic import Field, field_validator, model_validator

from components.cilium import CiliumSettings, check_profile
from components.cloud_names import check_gce_machine_type
from components.common import (
    CILIUM_AGENT_NOT_READY_TAINT,
    ConfigModel,
    EndpointAccess,
    NodePool,
    check_cidr,
    check_kubernetes_version,
    check_unique_names,
    field_error,
    resolve_protect,
    type_token,
)
from components.contract import GKE_DATAPATH, GKE_MODE_LABEL
from components.regions import GCP_REGIONS, check_region

__all__ = [
    "GKE_DATAPATH",
    "GKE_MODE_LABEL",
    "GKE_NODE_IMAGE_KERNEL",
    "GkeCluster",
    "GkeClusterConfig",
    "GkeMode",
    "GkeNetwork",
]

GkeMode = Literal["cilium", "dataplane-v2"]

# GKE_DATAPATH: GKE's name for each mode's datapath. LEGACY_DATAPATH is GKE's default (iptables
# kube-proxy), stated explicitly so the policy pack can check it against the mode label, which
# it reads from GKE_MODE_LABEL. Both come from policies/data/contract.json, shared with the pack.

# Kernel of GKE's node images on 1.32. COS: GKE 1.32 nodes run COS 117 LTS (GKE release notes,
# e.g. 1.32.13-gke.2268000 -> cos-117-18613-675-37), whose kernel is COS-6.6 (COS m117 release
# notes, e.g. cos-117-18613-339-52 ships COS-6.6.97). Ubuntu: GKE 1.32 builds Ubuntu 24.04 images
# (ubuntu-gke-2404-1-32-*) with the linux-gke 6.8 kernel. Override with nodeKernel when GKE
# moves a pool to a newer image (1.33 moves COS to 121, still 6.6).
GKE_NODE_IMAGE_KERNEL = {"COS_CONTAINERD": "6.6", "UBUNTU_CONTAINERD": "6.8"}

# A regional cluster spreads each node pool over three zones unless node locations are given
# (GKE docs, "Regional clusters"); initial node counts are per zone.
_DEFAULT_ZONE_COUNT = 3

# Control-plane logs (the policy pack requires SYSTEM_COMPONENTS and APISERVER) and metrics;
# WORKLOADS logs stay on so application logs reach Cloud Logging as on any GKE cluster.
_LOG_COMPONENTS = ["SYSTEM_COMPONENTS", "APISERVER", "CONTROLLER_MANAGER", "SCHEDULER", "WORKLOADS"]
_METRIC_COMPONENTS = ["SYSTEM_COMPONENTS", "APISERVER", "CONTROLLER_MANAGER", "SCHEDULER"]

# Kubernetes spells taint effects NoExecute; the GKE API spells them NO_EXECUTE.
_GKE_TAINT_EFFECT = {
    "NoExecute": "NO_EXECUTE",
    "NoSchedule": "NO_SCHEDULE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
}

_ZONE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$")
_RANGE_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"


class GkeNetwork(ConfigModel):
    """The subnetwork's primary range (nodes), secondary ranges (pods, Services) and the
    control plane's /28. The four ranges must be disjoint."""

    node_cidr: str = "10.0.0.0/20"
    pod_cidr: str = "10.4.0.0/14"
    service_cidr: str = "10.8.0.0/20"
    # The control plane's private endpoint range (private clusters need a /28 that overlaps
    # nothing else in the VPC). 172.16.0.0/28 is GKE's documented example range.
    master_cidr: str = "172.16.0.0/28"
    # Use an existing network and subnetwork (self links or names) instead of creating them;
    # then podCidr must be the range the subnetwork's pods secondary range really has (Cilium
    # routes it natively), and the subnetwork needs its own NAT for egress.
    network: str | None = None
    subnetwork: str | None = None
    pods_range_name: Annotated[str, Field(pattern=_RANGE_NAME)] = "pods"
    services_range_name: Annotated[str, Field(pattern=_RANGE_NAME)] = "services"

    @field_validator("node_cidr", "pod_cidr", "service_cidr", "master_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        return check_cidr(value)

    @field_validator("master_cidr")
    @classmethod
    def _master_is_28(cls, value: str) -> str:
        if ipaddress.ip_network(value).prefixlen != 28:
            raise ValueError(
                f"{value} is not a /28; GKE needs exactly a /28 for the control plane's "
                "private endpoint, e.g. 172.16.0.0/28"
            )
        return value

    @model_validator(mode="after")
    def _no_overlap(self) -> GkeNetwork:
        ranges = {
            "nodeCidr": self.node_cidr,
            "podCidr": self.pod_cidr,
            "serviceCidr": self.service_cidr,
            "masterCidr": self.master_cidr,
        }
        names = list(ranges)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if ipaddress.ip_network(ranges[a]).overlaps(ipaddress.ip_network(ranges[b])):
                    raise field_error(
                        b,
                        f"{ranges[b]} overlaps {a} {ranges[a]}; nodes, pods, Services and the "
                        "control plane need disjoint ranges",
                    )
        if (self.network is None) != (self.subnetwork is None):
            raise field_error("subnetwork", "give both network and subnetwork, or neither")
        if self.pods_range_name == self.services_range_name:
            raise field_error(
                "servicesRangeName", "pods and Services need two different secondary ranges"
            )
        return self


class GkeClusterConfig(ConfigModel):
    """One GKE cluster as written under ``meshless:clusters`` with ``cloud: gke``."""

    cloud: Literal["gke"]
    name: Annotated[str, Field(pattern=r"^[a-z][-a-z0-9]{1,38}[a-z0-9]$")]
    project: Annotated[str, Field(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")]
    region: str
    # Zones of the region for the nodes; unset means GKE's default of three zones.
    zones: Annotated[list[str] | None, Field(min_length=1)] = None
    kubernetes_version: str = "1.32"
    release_channel: Literal["RAPID", "REGULAR", "STABLE", "UNSPECIFIED"] = "REGULAR"
    mode: GkeMode = "cilium"
    network: GkeNetwork = Field(default_factory=GkeNetwork)
    endpoint: EndpointAccess = Field(default_factory=EndpointAccess)
    node_pools: Annotated[list[NodePool], Field(min_length=1)]
    node_image: Literal["COS_CONTAINERD", "UBUNTU_CONTAINERD"] = "COS_CONTAINERD"
    node_kernel: Annotated[str | None, Field(pattern=r"^\d+\.\d+$")] = None
    deletion_protection: bool | None = None
    # Pulumi `protect` on the cluster, its node pools, its KMS key and its Cilium release;
    # unset means on in prod (components/common.py resolve_protect).
    protect: bool | None = None
    # Dataplane V2 only: Google's Cilium enforces CiliumClusterwideNetworkPolicy (L3/L4).
    clusterwide_network_policy: bool = False
    # None means "the mode's default": our release in cilium mode, nothing in dataplane-v2.
    cilium: CiliumSettings | None = None
    # Folder of traffic-policy YAML files (components/network_policy.py), relative to the repo.
    traffic_policies: str | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return check_region(value, GCP_REGIONS, "GCP")

    @field_validator("kubernetes_version")
    @classmethod
    def _kubernetes_version(cls, value: str) -> str:
        return check_kubernetes_version(value)

    @model_validator(mode="after")
    def _shape_rules(self) -> GkeClusterConfig:
        for i, zone in enumerate(self.zones or []):
            if not (_ZONE.match(zone) and zone.startswith(f"{self.region}-")):
                raise field_error(
                    f"zones[{i}]",
                    f"{zone} is not a zone of region {self.region}; use zones like {self.region}-a",
                )
        if self.zones is not None and len(set(self.zones)) != len(self.zones):
            raise field_error("zones", "lists a zone twice")
        check_unique_names(self.node_pools, "nodePools", "a cluster")
        for i, pool in enumerate(self.node_pools):
            problem = check_gce_machine_type(pool.machine_type)
            if problem:
                raise field_error(f"nodePools[{i}].machineType", problem)
        return self

    @model_validator(mode="after")
    def _mode_rules(self) -> GkeClusterConfig:
        if self.mode == "dataplane-v2" and self.cilium is not None:
            fields = CiliumSettings.model_fields
            asked = sorted(fields[f].alias or f for f in self.cilium.model_fields_set) or [
                "nothing"
            ]
            raise field_error(
                "cilium",
                f"cluster {self.name} runs mode dataplane-v2, where Google manages Cilium: there "
                "is no Cilium version, Envoy, L7 policy or mutual auth of ours to configure "
                f"(this block sets {', '.join(asked)}). Remove the cilium block, or use "
                "mode: cilium for a self-managed Cilium with Envoy and L7 policies",
            )
        if self.mode == "cilium" and self.clusterwide_network_policy:
            raise field_error(
                "clusterwideNetworkPolicy",
                "only applies to mode dataplane-v2; in mode cilium our own Cilium already "
                "enforces CiliumClusterwideNetworkPolicy",
            )
        if self.mode == "dataplane-v2" and self.traffic_policies is not None:
            raise field_error(
                "trafficPolicies",
                f"cluster {self.name} runs mode dataplane-v2: Google's Cilium enforces no "
                "CiliumNetworkPolicy and no L7 rules. Use mode: cilium for L7 traffic policies, "
                "or clusterwideNetworkPolicy for L3/L4 only",
            )
        settings = self.cilium_settings
        if settings is not None:
            problems = check_profile(settings.profile, "gke", self.kernel)
            if problems:
                raise field_error("cilium.profile", f"cluster {self.name}: " + "; ".join(problems))
        return self

    @property
    def cilium_settings(self) -> CiliumSettings | None:
        """Our release's settings, or None when Google runs Cilium (dataplane-v2)."""
        if self.mode == "dataplane-v2":
            return None
        return self.cilium or CiliumSettings()

    @property
    def kernel(self) -> tuple[int, int]:
        major, minor = (self.node_kernel or GKE_NODE_IMAGE_KERNEL[self.node_image]).split(".")
        return int(major), int(minor)

    @property
    def zone_count(self) -> int:
        return len(self.zones) if self.zones else _DEFAULT_ZONE_COUNT


def _node_account_id(cluster: str) -> str:
    """A service account id (6-30 characters) unique per cluster name."""
    base = f"{cluster}-nodes"
    if len(base) <= 30:
        return base
    digest = hashlib.sha256(cluster.encode()).hexdigest()[:6]
    return f"{cluster[:17].rstrip('-')}-{digest}-nodes"


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
        self._child = pulumi.ResourceOptions(parent=self)
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

        network, subnetwork = self._network(name, config)
        key_id, key_grant = self._secrets_key(name, config, labels, deletion_protection)
        node_account, node_grants = self._node_service_account(name, config)

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

        pools = self._node_pools(name, config, node_account, node_grants, labels)

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
            opts=self._child,
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

    def _network(
        self, name: str, config: GkeClusterConfig
    ) -> tuple[pulumi.Input[str], pulumi.Input[str]]:
        """A custom-mode VPC, the nodes' subnetwork with the pod and Service ranges, and Cloud
        NAT; or the network and subnetwork the user gave (whose NAT is theirs)."""
        net = config.network
        if net.network is not None and net.subnetwork is not None:
            return net.network, net.subnetwork
        network = gcp.compute.Network(
            f"{name}-vpc",
            name=config.name,
            project=config.project,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            opts=self._child,
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
            opts=self._child,
        )
        router = gcp.compute.Router(
            f"{name}-router",
            name=f"{config.name}-router",
            project=config.project,
            region=config.region,
            network=network.id,
            opts=self._child,
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
            opts=self._child,
        )
        return network.id, subnetwork.id

    def _secrets_key(
        self,
        name: str,
        config: GkeClusterConfig,
        labels: dict[str, str],
        deletion_protection: bool,
    ) -> tuple[pulumi.Output[str], pulumi.Resource]:
        """A Cloud KMS key in the cluster's region for Secrets envelope encryption, usable by
        the project's GKE service agent."""
        # No explicit names: KMS key rings and keys can never be deleted, so a fixed name would
        # block re-creating a destroyed stack; Pulumi's auto-name suffix avoids the clash.
        ring = gcp.kms.KeyRing(
            f"{name}-secrets",
            project=config.project,
            # GKE wants the key in the cluster's location.
            location=config.region,
            opts=self._child,
        )
        key = gcp.kms.CryptoKey(
            f"{name}-secrets",
            key_ring=ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period="7776000s",  # 90 days
            labels=labels,
            # Losing the key makes every Secret in etcd unreadable: protected wherever the
            # cluster itself is (by Pulumi or by GKE's deletion protection).
            opts=pulumi.ResourceOptions(parent=self, protect=self.protect or deletion_protection),
        )
        # The agent's address needs the project number; an invoke reads it (no resource is
        # created inside apply, and the plan's mocks answer it).
        project = gcp.organizations.get_project_output(
            project_id=config.project, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        agent = project.number.apply(
            lambda number: (
                f"serviceAccount:service-{number}@container-engine-robot.iam.gserviceaccount.com"
            )
        )
        grant = gcp.kms.CryptoKeyIAMMember(
            f"{name}-secrets-gke-agent",
            crypto_key_id=key.id,
            role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            member=agent,
            opts=self._child,
        )
        return key.id, grant

    def _node_service_account(
        self, name: str, config: GkeClusterConfig
    ) -> tuple[gcp.serviceaccount.Account, list[pulumi.Resource]]:
        """Nodes run as their own account with GKE's least-privilege node role, not as the
        Compute Engine default account (project Editor). Pods use Workload Identity."""
        account = gcp.serviceaccount.Account(
            f"{name}-nodes",
            project=config.project,
            account_id=_node_account_id(config.name),
            display_name=f"GKE nodes of {config.name}",
            opts=self._child,
        )
        grants: list[pulumi.Resource] = [
            gcp.projects.IAMMember(
                f"{name}-nodes-{role.split('.')[-1]}",
                project=config.project,
                role=role,
                member=account.member,
                opts=self._child,
            )
            # container.defaultNodeServiceAccount: logs, metrics, autoscaling metrics;
            # artifactregistry.reader: pulling images of this project's registries.
            for role in (
                "roles/container.defaultNodeServiceAccount",
                "roles/artifactregistry.reader",
            )
        ]
        return account, grants

    def _node_pools(
        self,
        name: str,
        config: GkeClusterConfig,
        account: gcp.serviceaccount.Account,
        grants: list[pulumi.Resource],
        labels: dict[str, str],
    ) -> list[pulumi.Resource]:
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
                    cluster=self.cluster.name,
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
                        parent=self,
                        depends_on=grants,
                        # The autoscaler owns the node count; a changed initial count would
                        # otherwise recreate the whole pool.
                        ignore_changes=["initialNodeCount", "nodeCount"],
                        protect=self.protect,
                    ),
                )
            )
        return pools
