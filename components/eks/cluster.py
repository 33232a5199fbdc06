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

The parts live beside this module: the config model (config.py), the VPC (network.py), IAM
roles and access entries (iam.py), node groups and launch templates (node_groups.py) and the
nodes' user data (user_data.py). All their resources are children of this one component.

Not managed here: Cilium itself (components/cilium/).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.common import resolve_protect, type_token
from components.eks import iam
from components.eks.config import EksClusterConfig
from components.eks.network import cluster_subnets
from components.eks.node_groups import node_groups

__all__ = ["EksCluster"]

_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]


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
        # What a mistaken change must not delete: the cluster, its node groups, its key.
        self.protect = resolve_protect(config.protect, environment)
        region = config.region
        tags = {"meshless:cluster": config.name, "meshless:environment": environment}

        subnet_ids = cluster_subnets(name, config, tags, self)
        cluster_role, cluster_policy = iam.cluster_role(name, tags, self)
        self.cluster = self._control_plane(
            name, config, environment, subnet_ids, cluster_role, cluster_policy, tags
        )
        iam.access_entries(name, config, self.cluster, self)
        self.operator_role_arn = iam.operator_role(name, self.cluster, tags, self)
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
            opts=pulumi.ResourceOptions(parent=self),
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

    def _control_plane(
        self,
        name: str,
        config: EksClusterConfig,
        environment: str,
        subnet_ids: Sequence[pulumi.Input[str]],
        role: aws.iam.Role,
        role_policy: aws.iam.RolePolicyAttachment,
        tags: dict[str, str],
    ) -> aws.eks.Cluster:
        """The control plane without bootstrap add-ons, its Secrets encrypted with our key."""
        region = config.region
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
        return aws.eks.Cluster(
            f"{name}-cluster",
            name=config.name,
            version=config.kubernetes_version,
            role_arn=role.arn,
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
                parent=self, depends_on=[role_policy], protect=self.protect
            ),
        )

    def add_node_groups(self, after: list[pulumi.Resource]) -> list[aws.eks.NodeGroup]:
        """The managed node groups, created once ``after`` (the Cilium release) is installed.

        A managed node group only turns ACTIVE when its nodes are Ready, and a node is Ready
        only once a CNI has written its config; with ``bootstrap_self_managed_addons=False``
        there is no vpc-cni, so a node group created before Cilium fails with
        ``NodeCreationFailure: Unhealthy nodes in the kubernetes cluster``
        (terraform-aws-modules/terraform-aws-eks #3106 (the maintainer: control plane without
        default add-ons, then the CNI, then node groups), #3139, #1972)."""
        self.node_groups = node_groups(
            self._name,
            self._config,
            self.cluster,
            self._subnet_ids,
            self._tags,
            parent=self,
            protect=self.protect,
            after=after,
        )
        return self.node_groups

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
