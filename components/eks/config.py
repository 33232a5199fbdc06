"""What a user writes for one EKS cluster (``cloud: eks`` under ``meshless:clusters``).

Pure pydantic models, no Pulumi runtime: every rule here runs before the first resource is
registered, and a refusal names the config key and the fix (infra/config.py adds the
``meshless:clusters[i].`` prefix). The component that reads them is components/eks/cluster.py.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from components.cilium import CiliumSettings, check_profile
from components.cloud_names import check_ec2_instance_type
from components.common import (
    ConfigModel,
    EndpointAccess,
    NodePool,
    check_cidr,
    check_kubernetes_version,
    check_unique_names,
    field_error,
)
from components.eks.user_data import instance_limits
from components.regions import AWS_REGIONS, check_region

__all__ = ["NODE_IMAGE_KERNEL", "EksAddon", "EksClusterConfig", "EksNetwork"]

# Kernel of each EKS-optimised node image family for Kubernetes 1.32 (AL2023 and Bottlerocket
# both ship 6.1). Cilium's profiles check features against it; override with nodeKernel when
# you run a custom AMI.
NODE_IMAGE_KERNEL = {
    "AL2023_x86_64_STANDARD": "6.1",
    "AL2023_ARM_64_STANDARD": "6.1",
    "BOTTLEROCKET_x86_64": "6.1",
    "BOTTLEROCKET_ARM_64": "6.1",
}


class EksNetwork(ConfigModel):
    """The VPC we create, or the private subnets of an existing one."""

    vpc_cidr: str = "10.0.0.0/16"
    availability_zones: Annotated[list[str], Field(min_length=2, max_length=6)]
    service_cidr: str = "172.20.0.0/16"
    subnet_ids: list[str] | None = None

    @field_validator("vpc_cidr", "service_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        return check_cidr(value)

    @model_validator(mode="after")
    def _no_overlap(self) -> EksNetwork:
        vpc, services = ipaddress.ip_network(self.vpc_cidr), ipaddress.ip_network(self.service_cidr)
        if vpc.overlaps(services):
            raise field_error(
                "serviceCidr",
                f"{self.service_cidr} overlaps vpcCidr {self.vpc_cidr}; Services would shadow pod "
                "and node addresses. Pick a range outside the VPC, e.g. 172.20.0.0/16",
            )
        if vpc.prefixlen > 20:
            raise field_error(
                "vpcCidr",
                f"{self.vpc_cidr} is too small for ENI mode (every pod takes a VPC address); use "
                "a /20 or larger",
            )
        return self


class EksAddon(ConfigModel):
    """An extra EKS add-on (e.g. aws-ebs-csi-driver, eks-pod-identity-agent).

    Any name is accepted here; the policy pack's eks-no-conflicting-addons blocks kube-proxy
    and vpc-cni, so the rule lives in one place for plans and real previews alike."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][-a-z0-9]*$")]
    version: str | None = None


class EksClusterConfig(ConfigModel):
    """One EKS cluster as written under ``meshless:clusters`` with ``cloud: eks``."""

    cloud: Literal["eks"]
    name: Annotated[str, Field(pattern=r"^[a-z][-a-z0-9]{1,38}[a-z0-9]$")]
    region: str
    kubernetes_version: str = "1.32"
    network: EksNetwork
    endpoint: EndpointAccess = Field(default_factory=EndpointAccess)
    node_pools: Annotated[list[NodePool], Field(min_length=1)]
    node_image: Literal[tuple(NODE_IMAGE_KERNEL)] = "AL2023_x86_64_STANDARD"  # type: ignore[valid-type]
    node_kernel: Annotated[str | None, Field(pattern=r"^\d+\.\d+$")] = None
    admin_role_arns: list[Annotated[str, Field(pattern=r"^arn:aws:iam::\d{12}:role/.+$")]] = Field(
        default_factory=list
    )
    deletion_protection: bool | None = None
    # Pulumi `protect` on the cluster, its node pools, its KMS key and its Cilium release;
    # unset means on in prod (components/common.py resolve_protect).
    protect: bool | None = None
    cilium: CiliumSettings = Field(default_factory=CiliumSettings)
    # Folder of traffic-policy YAML files (components/network_policy.py), relative to the repo.
    traffic_policies: str | None = None
    addons: list[EksAddon] = Field(default_factory=list)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return check_region(value, AWS_REGIONS, "AWS")

    @field_validator("kubernetes_version")
    @classmethod
    def _kubernetes_version(cls, value: str) -> str:
        return check_kubernetes_version(value)

    @model_validator(mode="after")
    def _zones_in_region(self) -> EksClusterConfig:
        seen: set[str] = set()
        for i, zone in enumerate(self.network.availability_zones):
            if not re.fullmatch(rf"{re.escape(self.region)}[a-z]", zone):
                raise field_error(
                    f"network.availabilityZones[{i}]",
                    f"{zone} is not a zone of region {self.region}; use zones like {self.region}a",
                )
            if zone in seen:
                # Each zone gets a public and a private subnet named after it: a zone given
                # twice would be two resources with one name, which the engine refuses.
                raise field_error(
                    f"network.availabilityZones[{i}]", f"{zone} is listed twice; list it once"
                )
            seen.add(zone)
        for i, pool in enumerate(self.node_pools):
            problem = check_ec2_instance_type(pool.machine_type, self.node_image)
            if problem:
                raise field_error(f"nodePools[{i}].machineType", problem)
        check_unique_names(self.node_pools, "nodePools", "a cluster")
        check_unique_names(self.addons, "addons", "a cluster")
        for i, addon in enumerate(self.addons):
            if addon.name == "coredns":
                raise field_error(
                    f"addons[{i}].name",
                    "coredns is always installed (after Cilium is ready); remove it from addons",
                )
        self._check_node_images()
        problems = check_profile(self.cilium.profile, "eks", self.kernel)
        if problems:
            raise field_error("cilium.profile", f"cluster {self.name}: " + "; ".join(problems))
        return self

    def _check_node_images(self) -> None:
        """Refuse what the nodes could not run in Cilium's ENI mode (components/eks/user_data.py)."""
        if self.node_image.startswith("BOTTLEROCKET"):
            raise field_error(
                "nodeImage",
                f"{self.node_image} cannot run Cilium's ENI mode here: the ENIs Cilium attaches "
                "must be left unmanaged by the OS, and Bottlerocket's settings offer no way to do "
                "that. Use AL2023_x86_64_STANDARD or AL2023_ARM_64_STANDARD",
            )
        for i, pool in enumerate(self.node_pools):
            if instance_limits(pool.machine_type) is None:
                raise field_error(
                    f"nodePools[{i}].machineType",
                    f"{pool.machine_type!r} is not an EC2 instance type EKS knows (its ENI "
                    "limits set the nodes' max pods); use a type such as m6i.large",
                )

    @property
    def cilium_settings(self) -> CiliumSettings:
        return self.cilium

    @property
    def kernel(self) -> tuple[int, int]:
        major, minor = (self.node_kernel or NODE_IMAGE_KERNEL[self.node_image]).split(".")
        return int(major), int(minor)
