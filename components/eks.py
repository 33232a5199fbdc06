"""An EKS cluster with no kube-proxy and no VPC CNI, ready for Cilium in ENI mode.

Creates the network (or uses given subnets), the control plane with
``bootstrap_self_managed_addons=False`` (EKS then installs neither vpc-cni, kube-proxy nor
CoreDNS), KMS envelope encryption of secrets, control-plane logs, managed node groups tainted
until Cilium is ready, the IAM role the Cilium operator assumes (IRSA) to manage ENIs, and a
Kubernetes provider whose kubeconfig is a secret.

Bootstrap order (what ``infra/program.py`` does with this component): control plane and the
Kubernetes provider -> the Cilium release, which waits for nothing that needs a node ->
``add_node_groups`` -> ``add_addons`` (CoreDNS, the cluster's readiness point) -> everything
that needs Cilium's CRDs. A managed node group never turns ACTIVE without a CNI on its nodes
(terraform-aws-modules/terraform-aws-eks #3106, #3139, #1972), so nothing may make the release
wait for nodes; ``policies/rules/rehearsal.py`` proves the order on every plan and preview.

Not managed here: Cilium itself (components/cilium.py).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Sequence
from typing import Annotated, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field, field_validator, model_validator

from components.cilium import ENI_PREFIX_DELEGATION, CiliumSettings, check_profile
from components.cloud_names import check_ec2_instance_type
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
from components.eks_nodes import instance_limits, max_pods, node_user_data
from components.regions import AWS_REGIONS, check_region

__all__ = [
    "CILIUM_OPERATOR_ENI_ACTIONS",
    "EksAddon",
    "EksCluster",
    "EksClusterConfig",
    "EksNetwork",
]

# What the Cilium operator calls in ENI IPAM mode (Cilium docs, "ENI" IPAM, required
# privileges). Scoped to the account: ENI ids are not known in advance.
CILIUM_OPERATOR_ENI_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:AttachNetworkInterface",
    "ec2:CreateNetworkInterface",
    "ec2:CreateTags",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeVpcs",
    "ec2:DetachNetworkInterface",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:UnassignPrivateIpAddresses",
)

# Kernel of each EKS-optimised node image family for Kubernetes 1.32 (AL2023 and Bottlerocket
# both ship 6.1). Cilium's profiles check features against it; override with nodeKernel when
# you run a custom AMI.
_NODE_IMAGE_KERNEL = {
    "AL2023_x86_64_STANDARD": "6.1",
    "AL2023_ARM_64_STANDARD": "6.1",
    "BOTTLEROCKET_x86_64": "6.1",
    "BOTTLEROCKET_ARM_64": "6.1",
}

_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]


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
    node_image: Literal[tuple(_NODE_IMAGE_KERNEL)] = "AL2023_x86_64_STANDARD"  # type: ignore[valid-type]
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
        """Refuse what the nodes could not run in Cilium's ENI mode (components/eks_nodes.py)."""
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
        major, minor = (self.node_kernel or _NODE_IMAGE_KERNEL[self.node_image]).split(".")
        return int(major), int(minor)


def _assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def _kubeconfig(name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no long-lived token)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": name,
                    "cluster": {"server": endpoint, "certificate-authority-data": ca_data},
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                name,
                                "--region",
                                region,
                            ],
                        }
                    },
                }
            ],
        }
    )


class EksCluster(pulumi.ComponentResource):
    """An EKS control plane and node groups that run no kube-proxy and no VPC CNI."""

    cluster: aws.eks.Cluster
    provider: k8s.Provider
    api_server_host: pulumi.Output[str]
    api_server_port: int = 443
    kubeconfig: pulumi.Output[str]
    operator_role_arn: pulumi.Output[str]
    protect: bool

    def __init__(
        self,
        name: str,
        config: EksClusterConfig,
        environment: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("aws", "EksCluster"), name, None, opts)
        self._name = name
        self._config = config
        self._child = pulumi.ResourceOptions(parent=self)
        # What a mistaken change must not delete: the cluster, its node groups, its key.
        self.protect = resolve_protect(config.protect, environment)
        region = config.region
        tags = {"meshless:cluster": config.name, "meshless:environment": environment}

        subnet_ids = self._network(name, config, tags)

        cluster_role = aws.iam.Role(
            f"{name}-cluster-role",
            assume_role_policy=_assume_role_policy("eks.amazonaws.com"),
            tags=tags,
            opts=self._child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=cluster_role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=self._child,
        )
        key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"Envelope encryption of Kubernetes secrets in {config.name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            region=region,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=self.protect),
        )
        deletion_protection = (
            config.deletion_protection
            if config.deletion_protection is not None
            else environment == "prod"
        )
        self.cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=config.name,
            version=config.kubernetes_version,
            role_arn=cluster_role.arn,
            region=region,
            # No vpc-cni, no kube-proxy, no CoreDNS: Cilium replaces the first two and
            # CoreDNS is added once Cilium runs.
            bootstrap_self_managed_addons=False,
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=config.endpoint.public,
                public_access_cidrs=config.endpoint.allowed_cidrs
                if config.endpoint.public
                else None,
            ),
            kubernetes_network_config=aws.eks.ClusterKubernetesNetworkConfigArgs(
                service_ipv4_cidr=config.network.service_cidr,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=_LOG_TYPES,
            deletion_protection=deletion_protection,
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[cluster_policy], protect=self.protect
            ),
        )

        self._access_entries(name, config)
        self.operator_role_arn = self._operator_role(name, config, tags)
        # Node groups come later (add_node_groups), after the Cilium release: see the module
        # docstring for the order and its sources.
        self._subnet_ids, self._tags = subnet_ids, tags
        self.node_groups: list[aws.eks.NodeGroup] = []

        endpoint = self.cluster.endpoint
        self.api_server_host = endpoint.apply(lambda url: url.removeprefix("https://").rstrip("/"))
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(endpoint, self.cluster.certificate_authority.data).apply(
                lambda args: _kubeconfig(config.name, args[0], args[1], region)
            )
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            # No dependency on node groups: the Cilium release (the CNI) goes through this
            # provider before any node exists, and the node groups wait for it.
            opts=self._child,
        )
        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "endpoint": endpoint,
                "apiServerHost": self.api_server_host,
                "apiServerPort": self.api_server_port,
                "kubeconfig": self.kubeconfig,
                "ciliumOperatorRoleArn": self.operator_role_arn,
            }
        )

    def _network(
        self, name: str, config: EksClusterConfig, tags: dict[str, str]
    ) -> Sequence[pulumi.Input[str]]:
        """A VPC with a public and a private subnet per zone, or the subnets the user gave."""
        if config.network.subnet_ids:
            return list(config.network.subnet_ids)
        region = config.region
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=config.network.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            region=region,
            tags={**tags, "Name": f"{config.name}-vpc"},
            opts=self._child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, region=region, tags=tags, opts=self._child
        )
        # Private subnets get the big halves: in ENI mode every pod takes one of their addresses.
        network = ipaddress.ip_network(config.network.vpc_cidr)
        private_ranges: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(
            network.subnets(prefixlen_diff=3)
        )
        public_ranges = list(private_ranges[-1].subnets(prefixlen_diff=3))
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            region=region,
            tags=tags,
            opts=self._child,
        )
        private_ids: list[pulumi.Output[str]] = []
        for i, zone in enumerate(config.network.availability_zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=str(public_ranges[i]),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                region=region,
                tags={**tags, "kubernetes.io/role/elb": "1"},
                opts=self._child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}",
                subnet_id=public.id,
                route_table_id=public_rt.id,
                region=region,
                opts=self._child,
            )
            eip = aws.ec2.Eip(
                f"{name}-nat-{zone}", domain="vpc", region=region, tags=tags, opts=self._child
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{zone}",
                subnet_id=public.id,
                allocation_id=eip.id,
                region=region,
                tags=tags,
                opts=self._child,
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=str(private_ranges[i]),
                availability_zone=zone,
                region=region,
                tags={**tags, "kubernetes.io/role/internal-elb": "1"},
                opts=self._child,
            )
            private_rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{zone}",
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                region=region,
                tags=tags,
                opts=self._child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}",
                subnet_id=private.id,
                route_table_id=private_rt.id,
                region=region,
                opts=self._child,
            )
            private_ids.append(private.id)
        return private_ids

    def _access_entries(self, name: str, config: EksClusterConfig) -> None:
        for i, role_arn in enumerate(config.admin_role_arns):
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{i}",
                cluster_name=self.cluster.name,
                principal_arn=role_arn,
                region=config.region,
                opts=self._child,
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{i}",
                cluster_name=self.cluster.name,
                principal_arn=role_arn,
                policy_arn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                region=config.region,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]),
            )

    def _operator_role(
        self, name: str, config: EksClusterConfig, tags: dict[str, str]
    ) -> pulumi.Output[str]:
        """IRSA role for kube-system/cilium-operator with the ENI permissions it needs."""
        issuer = self.cluster.identities[0].oidcs[0].issuer
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            tags=tags,
            opts=self._child,
        )
        trust = pulumi.Output.all(oidc.arn, issuer).apply(
            lambda args: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": args[0]},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {
                                "StringEquals": {
                                    f"{args[1].removeprefix('https://')}:sub": "system:serviceaccount:kube-system:cilium-operator",
                                    f"{args[1].removeprefix('https://')}:aud": "sts.amazonaws.com",
                                }
                            },
                        }
                    ],
                }
            )
        )
        role = aws.iam.Role(
            f"{name}-cilium-operator", assume_role_policy=trust, tags=tags, opts=self._child
        )
        aws.iam.RolePolicy(
            f"{name}-cilium-operator-eni",
            role=role.id,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": list(CILIUM_OPERATOR_ENI_ACTIONS),
                            "Resource": "*",
                        }
                    ],
                }
            ),
            opts=self._child,
        )
        return role.arn

    def add_node_groups(self, after: list[pulumi.Resource]) -> list[aws.eks.NodeGroup]:
        """The managed node groups, created once ``after`` (the Cilium release) is installed.

        A managed node group only turns ACTIVE when its nodes are Ready, and a node is Ready
        only once a CNI has written its config; with ``bootstrap_self_managed_addons=False``
        there is no vpc-cni, so a node group created before Cilium fails with
        ``NodeCreationFailure: Unhealthy nodes in the kubernetes cluster``
        (terraform-aws-modules/terraform-aws-eks #3106 (the maintainer: control plane without
        default add-ons, then the CNI, then node groups), #3139, #1972)."""
        self.node_groups = self._node_groups(
            self._name, self._config, self._subnet_ids, self._tags, after
        )
        return self.node_groups

    def _node_groups(
        self,
        name: str,
        config: EksClusterConfig,
        subnet_ids: Sequence[pulumi.Input[str]],
        tags: dict[str, str],
        after: list[pulumi.Resource],
    ) -> list[aws.eks.NodeGroup]:
        node_role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=_assume_role_policy("ec2.amazonaws.com"),
            tags=tags,
            opts=self._child,
        )
        # No AmazonEKS_CNI_Policy: there is no VPC CNI; Cilium's operator manages ENIs instead.
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy.split('/')[-1]}",
                role=node_role.name,
                policy_arn=policy,
                opts=self._child,
            )
            for policy in (
                "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
                "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
                "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
            )
        ]
        taint = CILIUM_AGENT_NOT_READY_TAINT
        groups = []
        for pool in config.node_pools:
            template = self._launch_template(name, config, pool, tags)
            group = aws.eks.NodeGroup(
                f"{name}-{pool.name}",
                cluster_name=self.cluster.name,
                node_group_name=pool.name,
                node_role_arn=node_role.arn,
                subnet_ids=subnet_ids,
                instance_types=[pool.machine_type],
                ami_type=config.node_image,
                capacity_type="SPOT" if pool.spot else "ON_DEMAND",
                # Disk size lives in the launch template: EKS refuses both (launch template docs).
                launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                    id=template.id, version=template.latest_version.apply(str)
                ),
                scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                    min_size=pool.min_size, max_size=pool.max_size, desired_size=pool.initial_size
                ),
                update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable_percentage=25),
                labels=pool.labels,
                # EKS spells the effect NO_EXECUTE; Kubernetes shows it as NoExecute.
                taints=[
                    aws.eks.NodeGroupTaintArgs(
                        key=taint["key"], value=taint["value"], effect="NO_EXECUTE"
                    )
                ],
                region=config.region,
                tags=tags,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*attachments, *after],
                    # The autoscaler moves desired size; Pulumi must not fight it.
                    ignore_changes=["scalingConfig.desiredSize"],
                    protect=self.protect,
                ),
            )
            groups.append(group)
        return groups

    def _launch_template(
        self, name: str, config: EksClusterConfig, pool: NodePool, tags: dict[str, str]
    ) -> aws.ec2.LaunchTemplate:
        """The node group's launch template: user data that leaves Cilium's ENIs to Cilium and
        sizes max pods for its IPAM (components/eks_nodes.py), IMDSv2 only, an encrypted disk."""
        limits = instance_limits(pool.machine_type)
        assert limits is not None  # checked by EksClusterConfig
        user_data = node_user_data(max_pods(limits, ENI_PREFIX_DELEGATION), ENI_PREFIX_DELEGATION)
        return aws.ec2.LaunchTemplate(
            f"{name}-{pool.name}",
            description=f"Nodes of {config.name}/{pool.name} for Cilium ENI mode",
            user_data=base64.b64encode(user_data.encode()).decode(),
            # IMDSv2 only. Hop limit 1: the pods that need instance metadata, cilium-agent and
            # cilium-operator, run on the host network (chart defaults); workload pods cannot
            # reach it and so cannot borrow the node role (EKS best practices, IMDS).
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",  # the AL2023 EKS AMI's root volume
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=pool.disk_size_gb,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type="instance", tags=tags)
            ],
            region=config.region,
            tags=tags,
            opts=self._child,
        )

    def add_addons(self, after: list[pulumi.Resource]) -> list[aws.eks.Addon]:
        """CoreDNS and the configured add-ons, created once ``after`` (the node groups, which
        are ACTIVE only when Cilium runs on their nodes) exists: an add-on's pods need a node
        with pod networking, and EKS waits for an add-on to turn ACTIVE (its Deployment
        available). CoreDNS ACTIVE is the readiness point of the cluster: in ENI mode its pods
        get addresses only from the Cilium operator, so the operator ran, and with it the
        registration of the cilium.io CRDs (Cilium 1.16 operator, ``--skip-crd-creation``
        false by default)."""
        names = [("coredns", None)] + [(a.name, a.version) for a in self._config.addons]
        return [
            aws.eks.Addon(
                f"{self._name}-{addon}",
                cluster_name=self.cluster.name,
                addon_name=addon,
                addon_version=version,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                region=self._config.region,
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
            for addon, version in names
        ]
