"""The EKS cluster's managed node groups and their launch templates.

Each node pool of the config becomes one ``aws.eks.NodeGroup`` tainted
``node.cilium.io/agent-not-ready=true:NoExecute`` until Cilium runs on the node, booting from
a launch template whose user data leaves Cilium's ENIs to Cilium and sizes max pods for its
IPAM (components/eks/user_data.py). They are created after the Cilium release: see
components/eks/cluster.py for the bootstrap order and its sources.

Not managed here: the AMI (EKS picks the release for the cluster version and node image).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.cilium import ENI_PREFIX_DELEGATION
from components.common import CILIUM_AGENT_NOT_READY_TAINT, NodePool
from components.eks import iam
from components.eks.config import EksClusterConfig
from components.eks.user_data import instance_limits, max_pods, node_user_data

__all__ = ["node_groups"]


def node_groups(
    name: str,
    config: EksClusterConfig,
    cluster: aws.eks.Cluster,
    subnet_ids: Sequence[pulumi.Input[str]],
    tags: dict[str, str],
    parent: pulumi.Resource,
    protect: bool,
    after: list[pulumi.Resource],
) -> list[aws.eks.NodeGroup]:
    """One managed node group per configured pool, each created once ``after`` exists."""
    role, attachments = iam.node_role(name, tags, parent)
    taint = CILIUM_AGENT_NOT_READY_TAINT
    groups = []
    for pool in config.node_pools:
        template = _launch_template(name, config, pool, tags, parent)
        group = aws.eks.NodeGroup(
            f"{name}-{pool.name}",
            cluster_name=cluster.name,
            node_group_name=pool.name,
            node_role_arn=role.arn,
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
                parent=parent,
                depends_on=[*attachments, *after],
                # The autoscaler moves desired size; Pulumi must not fight it.
                ignore_changes=["scalingConfig.desiredSize"],
                protect=protect,
            ),
        )
        groups.append(group)
    return groups


def _launch_template(
    name: str,
    config: EksClusterConfig,
    pool: NodePool,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> aws.ec2.LaunchTemplate:
    """The node group's launch template: user data that leaves Cilium's ENIs to Cilium and
    sizes max pods for its IPAM (components/eks/user_data.py), IMDSv2 only, an encrypted disk."""
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
        opts=pulumi.ResourceOptions(parent=parent),
    )
