"""What a user writes for one GKE cluster (``cloud: gke`` under ``meshless:clusters``).

Pure pydantic models, no Pulumi runtime: every rule here runs before the first resource is
registered, and a refusal names the config key and the fix (infra/config.py adds the
``meshless:clusters[i].`` prefix). Which mode may ask for what (dataplane-v2 has no Cilium of
ours) is decided here. The component that reads them is components/gke/cluster.py.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from components.cilium import CiliumSettings, check_profile
from components.cloud_names import check_gce_machine_type
from components.common import (
    ConfigModel,
    EndpointAccess,
    NodePool,
    check_cidr,
    check_kubernetes_version,
    check_unique_names,
    field_error,
)
from components.regions import GCP_REGIONS, check_region

__all__ = ["GKE_NODE_IMAGE_KERNEL", "GkeClusterConfig", "GkeMode", "GkeNetwork"]

GkeMode = Literal["cilium", "dataplane-v2"]

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
