"""EKS without kube-proxy and without the VPC CNI, ready for Cilium in ENI mode.

One component, ``EksCluster`` (type ``meshless:aws:EksCluster``), in modules by job:

- ``config.py``: ``EksClusterConfig`` and its parts, what a user writes under
  ``meshless:clusters`` with ``cloud: eks`` (validated before any resource exists);
- ``cluster.py``: the component: control plane, Secrets key, Kubernetes provider, add-ons, and
  the bootstrap order (control plane -> Cilium -> node groups -> CoreDNS);
- ``network.py``: the VPC, subnets and NAT gateways;
- ``iam.py``: the cluster, node and Cilium-operator (IRSA) roles, and access entries;
- ``node_groups.py``: managed node groups and their launch templates;
- ``user_data.py``: what a node needs for ENI mode (networkd config, max pods).
"""

from components.eks.cluster import EksCluster
from components.eks.config import EksAddon, EksClusterConfig, EksNetwork
from components.eks.iam import CILIUM_OPERATOR_ENI_ACTIONS

__all__ = [
    "CILIUM_OPERATOR_ENI_ACTIONS",
    "EksAddon",
    "EksCluster",
    "EksClusterConfig",
    "EksNetwork",
]
