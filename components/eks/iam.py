"""Who may do what on an EKS cluster: the AWS IAM side of the EksCluster component.

- the control plane's service role (AmazonEKSClusterPolicy);
- the nodes' role: worker, ECR read-only and SSM, and deliberately no AmazonEKS_CNI_Policy,
  since there is no VPC CNI (Cilium's operator manages the ENIs);
- the Cilium operator's role for ENI IPAM, assumed through IRSA by
  ``kube-system/cilium-operator`` only;
- EKS access entries (authentication mode API) making the configured roles cluster admins.

Every resource is a child of the EksCluster component. Not managed here: the deployer's own
credentials, and roles for workloads (components/platform.py).
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.eks.config import EksClusterConfig

__all__ = [
    "CILIUM_OPERATOR_ENI_ACTIONS",
    "access_entries",
    "cluster_role",
    "node_role",
    "operator_role",
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

_NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
)

_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


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


def cluster_role(
    name: str, tags: dict[str, str], parent: pulumi.Resource
) -> tuple[aws.iam.Role, aws.iam.RolePolicyAttachment]:
    """The control plane's service role and its policy (the cluster waits for both)."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-cluster-role",
        assume_role_policy=_assume_role_policy("eks.amazonaws.com"),
        tags=tags,
        opts=child,
    )
    policy = aws.iam.RolePolicyAttachment(
        f"{name}-cluster-policy",
        role=role.name,
        policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
        opts=child,
    )
    return role, policy


def access_entries(
    name: str, config: EksClusterConfig, cluster: aws.eks.Cluster, parent: pulumi.Resource
) -> None:
    """Each of ``adminRoleArns`` as a cluster admin (EKS access entries, no aws-auth map)."""
    for i, role_arn in enumerate(config.admin_role_arns):
        entry = aws.eks.AccessEntry(
            f"{name}-admin-{i}",
            cluster_name=cluster.name,
            principal_arn=role_arn,
            region=config.region,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        aws.eks.AccessPolicyAssociation(
            f"{name}-admin-{i}",
            cluster_name=cluster.name,
            principal_arn=role_arn,
            policy_arn=_ADMIN_POLICY,
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            region=config.region,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[entry]),
        )


def _irsa_trust(oidc_arn: str, issuer: str) -> str:
    """Only the cilium-operator service account of kube-system may assume the role."""
    host = issuer.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{host}:sub": "system:serviceaccount:kube-system:cilium-operator",
                            f"{host}:aud": "sts.amazonaws.com",
                        }
                    },
                }
            ],
        }
    )


def operator_role(
    name: str, cluster: aws.eks.Cluster, tags: dict[str, str], parent: pulumi.Resource
) -> pulumi.Output[str]:
    """IRSA role for kube-system/cilium-operator with the ENI permissions it needs."""
    child = pulumi.ResourceOptions(parent=parent)
    issuer = cluster.identities[0].oidcs[0].issuer
    oidc = aws.iam.OpenIdConnectProvider(
        f"{name}-oidc",
        url=issuer,
        client_id_lists=["sts.amazonaws.com"],
        tags=tags,
        opts=child,
    )
    trust = pulumi.Output.all(oidc.arn, issuer).apply(lambda args: _irsa_trust(args[0], args[1]))
    role = aws.iam.Role(f"{name}-cilium-operator", assume_role_policy=trust, tags=tags, opts=child)
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
        opts=child,
    )
    return role.arn


def node_role(
    name: str, tags: dict[str, str], parent: pulumi.Resource
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """The role every node group's instances run as, and its policy attachments (the node
    groups wait for them: a node without them cannot join)."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-node-role",
        assume_role_policy=_assume_role_policy("ec2.amazonaws.com"),
        tags=tags,
        opts=child,
    )
    # No AmazonEKS_CNI_Policy: there is no VPC CNI; Cilium's operator manages ENIs instead.
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-node-{policy.split('/')[-1]}",
            role=role.name,
            policy_arn=policy,
            opts=child,
        )
        for policy in _NODE_POLICIES
    ]
    return role, attachments
