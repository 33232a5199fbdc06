"""A VPC-native GKE cluster in one of two honest modes.

- ``cilium`` (default): GKE's standard datapath plus our own Cilium release
  (components/cilium.py). GKE keeps running kube-proxy on every node and it cannot be removed;
  Cilium's kube-proxy replacement handles Service traffic and kube-proxy's rules go unused.
- ``dataplane-v2``: Google-managed Cilium (``ADVANCED_DATAPATH``), truly without kube-proxy, but
  with no release of ours, no CiliumNetworkPolicy, no L7 rules and no Envoy of ours.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from components.cilium import CiliumSettings, check_profile
from components.common import (
    ConfigModel,
    EndpointAccess,
    NodePool,
    check_cidr,
    check_kubernetes_version,
    field_error,
)
from components.regions import GCP_REGIONS, check_region

__all__ = ["GKE_NODE_IMAGE_KERNEL", "GkeClusterConfig", "GkeMode", "GkeNetwork"]

GkeMode = Literal["cilium", "dataplane-v2"]

# Kernel of GKE's node images on 1.32 (COS 117 LTS ships 6.1; Ubuntu 22.04 images ship 6.8 on
# GKE 1.32). Override with nodeKernel when GKE moves a pool to a newer image.
GKE_NODE_IMAGE_KERNEL = {"COS_CONTAINERD": "6.1", "UBUNTU_CONTAINERD": "6.8"}


class GkeNetwork(ConfigModel):
    """The subnetwork's primary range (nodes) and secondary ranges (pods, Services)."""

    node_cidr: str = "10.0.0.0/20"
    pod_cidr: str = "10.4.0.0/14"
    service_cidr: str = "10.8.0.0/20"
    # Use an existing network and subnetwork (self links or names) instead of creating them.
    network: str | None = None
    subnetwork: str | None = None

    @field_validator("node_cidr", "pod_cidr", "service_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        return check_cidr(value)

    @model_validator(mode="after")
    def _no_overlap(self) -> GkeNetwork:
        ranges = {"nodeCidr": self.node_cidr, "podCidr": self.pod_cidr, "serviceCidr": self.service_cidr}
        names = list(ranges)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if ipaddress.ip_network(ranges[a]).overlaps(ipaddress.ip_network(ranges[b])):
                    raise field_error(
                        b, f"{ranges[b]} overlaps {a} {ranges[a]}; the three ranges must be disjoint"
                    )
        if (self.network is None) != (self.subnetwork is None):
            raise field_error("subnetwork", "give both network and subnetwork, or neither")
        return self


class GkeClusterConfig(ConfigModel):
    """One GKE cluster as written under ``meshless:clusters`` with ``cloud: gke``."""

    cloud: Literal["gke"]
    name: Annotated[str, Field(pattern=r"^[a-z][-a-z0-9]{1,38}[a-z0-9]$")]
    project: Annotated[str, Field(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")]
    region: str
    kubernetes_version: str = "1.32"
    release_channel: Literal["RAPID", "REGULAR", "STABLE", "UNSPECIFIED"] = "REGULAR"
    mode: GkeMode = "cilium"
    network: GkeNetwork = Field(default_factory=GkeNetwork)
    endpoint: EndpointAccess = Field(default_factory=EndpointAccess)
    node_pools: Annotated[list[NodePool], Field(min_length=1)]
    node_image: Literal["COS_CONTAINERD", "UBUNTU_CONTAINERD"] = "COS_CONTAINERD"
    node_kernel: Annotated[str | None, Field(pattern=r"^\d+\.\d+$")] = None
    deletion_protection: bool | None = None
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
    def _mode_rules(self) -> GkeClusterConfig:
        if self.mode == "dataplane-v2" and self.cilium is not None:
            raise field_error(
                "cilium",
                f"cluster {self.name} runs mode dataplane-v2, where Google manages Cilium: there "
                "is no Cilium version, Envoy, L7 policy or mutual auth of ours to configure. "
                "Remove the cilium block, or use mode: cilium for a self-managed Cilium with "
                "L7 policies",
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
