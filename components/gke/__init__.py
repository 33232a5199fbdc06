"""GKE in two honest modes: standard GKE with our Cilium, or Google's Dataplane V2.

One component, ``GkeCluster`` (type ``meshless:gcp:GkeCluster``), in modules by job:

- ``config.py``: ``GkeClusterConfig`` and its parts, what a user writes under
  ``meshless:clusters`` with ``cloud: gke``, and which mode may ask for what;
- ``cluster.py``: the component: the private, VPC-native cluster and its Kubernetes provider;
- ``network.py``: the VPC, the nodes' subnetwork with pod and Service ranges, Cloud NAT;
- ``iam.py``: the Secrets KMS key and the nodes' least-privilege service account;
- ``node_pools.py``: the node pools, tainted until our Cilium runs (mode cilium).
"""

from components.contract import GKE_DATAPATH, GKE_MODE_LABEL
from components.gke.cluster import GkeCluster
from components.gke.config import GKE_NODE_IMAGE_KERNEL, GkeClusterConfig, GkeMode, GkeNetwork

__all__ = [
    "GKE_DATAPATH",
    "GKE_MODE_LABEL",
    "GKE_NODE_IMAGE_KERNEL",
    "GkeCluster",
    "GkeClusterConfig",
    "GkeMode",
    "GkeNetwork",
]
