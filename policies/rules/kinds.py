"""Resource type tokens the policies look at, as the Pulumi engine names them."""

from __future__ import annotations

from typing import Final

from . import contract

__all__ = [
    "CCNP",
    "CNP",
    "EKS_ADDON",
    "EKS_CLUSTER",
    "EKS_NODE_GROUP",
    "GKE_CLUSTER",
    "GKE_MODE_LABEL",
    "GKE_NODE_POOL",
    "HELM_INSTALLS",
    "HELM_RELEASE",
    "KMS_KEYS",
    "KUBERNETES_PROVIDER",
    "LAUNCH_TEMPLATE",
]

HELM_RELEASE: Final = "kubernetes:helm.sh/v3:Release"
# Every way the Kubernetes provider installs a chart. Only HELM_RELEASE is ours; the charts
# are judged too, so a Cilium installed another way is at least held to the same values.
HELM_INSTALLS: Final = (
    HELM_RELEASE,
    "kubernetes:helm.sh/v4:Chart",
    "kubernetes:helm.sh/v3:Chart",
    "kubernetes:helm.sh/v2:Chart",
)
CNP: Final = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"
CCNP: Final = "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy"
KUBERNETES_PROVIDER: Final = "pulumi:providers:kubernetes"
EKS_CLUSTER: Final = "aws:eks/cluster:Cluster"
EKS_ADDON: Final = "aws:eks/addon:Addon"
EKS_NODE_GROUP: Final = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE: Final = "aws:ec2/launchTemplate:LaunchTemplate"
GKE_CLUSTER: Final = "gcp:container/cluster:Cluster"
GKE_NODE_POOL: Final = "gcp:container/nodePool:NodePool"
# The keys that envelope-encrypt a cluster's Secrets.
KMS_KEYS: Final = ("aws:kms/key:Key", "gcp:kms/cryptoKey:CryptoKey")

# The GKE component labels each cluster with its mode: "cilium" or "dataplane-v2".
GKE_MODE_LABEL: Final = contract.GKE_MODE_LABEL
