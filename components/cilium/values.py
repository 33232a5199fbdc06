"""The Cilium chart's values for one cluster: pure, the same inputs give the same values.

``build_values`` turns a cluster's ``CiliumSettings`` and its ``ClusterFacts`` into the values
of the ``cilium`` chart: every image pinned by digest from the catalog (the operator in the
cloud's variant), kube-proxy replacement with an explicit API host and port, Envoy, Hubble,
the cloud's IPAM and routing, and the profile's datapath.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.catalog import load_catalog
from components.cilium.profiles import Cloud, ProfileError, check_profile, profile_values
from components.cilium.settings import CiliumSettings
from components.contract import IMAGE_OVERRIDE_PATHS, OPERATOR_DIGEST_KEYS
from components.hubble_tls import HUBBLE_RELAY_CLIENT_SECRET, HUBBLE_SERVER_SECRET
from components.registry import PULL_SECRET_NAME, mirror_image_blocks

__all__ = [
    "ENI_PREFIX_DELEGATION",
    "HUBBLE_METRICS_BY_ENVIRONMENT",
    "ClusterFacts",
    "build_values",
    "source_image_blocks",
]

# EKS ENI mode: each free ENI slot takes a /28 prefix instead of one address, so a node holds
# far more pods per ENI; the nodes' max pods follows it (components/eks/user_data.py).
ENI_PREFIX_DELEGATION = True

# Hubble metrics cost agent CPU per flow; staging gets the full set for debugging, prod the
# set that answers "is traffic flowing and is policy dropping it" at a fraction of the cost.
HUBBLE_METRICS_BY_ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "staging": (
        "dns",
        "drop",
        "tcp",
        "flow",
        "port-distribution",
        "icmp",
        "httpV2:exemplars=true;labelsContext=source_ip,source_namespace,source_workload,"
        "destination_ip,destination_namespace,destination_workload,traffic_direction",
    ),
    "prod": (
        "dns",
        "drop",
        "tcp",
        "flow",
        "httpV2:labelsContext=source_namespace,destination_namespace",
    ),
}


@dataclass(frozen=True)
class ClusterFacts:
    """What the release needs to know about its cluster, resolved or as outputs."""

    name: str
    cloud: Cloud
    environment: str
    api_host: pulumi.Input[str]
    api_port: int
    node_kernel: tuple[int, int]
    pod_cidr: str | None = None  # GKE: the native-routing CIDR
    operator_role_arn: pulumi.Input[str] | None = None  # EKS: IRSA role with ENI permissions
    protect: bool = False  # the cluster's resolved `protect` (components/common.py)
    # GKE: pods reach gke-metadata-server through an iptables redirect that BPF host routing
    # bypasses (cilium/cilium #28655, #36685), so Workload Identity needs legacy host routing.
    workload_identity: bool = False


def _image(block: dict[str, Any]) -> dict[str, Any]:
    return {
        "repository": block["repository"],
        "tag": block["tag"],
        "digest": block["digest"],
        "useDigest": True,
    }


def _images(version: str, cloud: Cloud) -> dict[str, dict[str, Any]]:
    """Values fragments that pin every image of the version, the operator per cloud."""
    catalog = load_catalog()[version]
    images = {path: _image(block) for path, block in catalog.items() if path != "operator.image"}
    operator = catalog["operator.image"]
    digest_key = OPERATOR_DIGEST_KEYS[cloud]
    images["operator.image"] = {
        "repository": operator["repository"],
        "tag": operator["tag"],
        "suffix": operator.get("suffix", ""),
        "useDigest": True,
        digest_key: operator[digest_key],
    }
    return images


def _hubble_values(settings: CiliumSettings, environment: str, images: dict) -> dict[str, Any]:
    metrics = settings.hubble.metrics
    if metrics is None:
        metrics = list(
            HUBBLE_METRICS_BY_ENVIRONMENT.get(environment, HUBBLE_METRICS_BY_ENVIRONMENT["prod"])
        )
    return {
        "enabled": True,
        # Certificates come from the program (components/hubble_tls.py) as existing secrets:
        # stable across previews, and no certgen hook Job that would need a node.
        "tls": {
            "enabled": True,
            "auto": {"enabled": False},
            "server": {"existingSecret": HUBBLE_SERVER_SECRET},
        },
        "relay": {
            "enabled": settings.hubble.relay,
            "image": images["hubble.relay.image"],
            "tls": {"client": {"existingSecret": HUBBLE_RELAY_CLIENT_SECRET}},
        },
        "ui": {
            "enabled": settings.hubble.ui,
            "backend": {"image": images["hubble.ui.backend.image"]},
            "frontend": {"image": images["hubble.ui.frontend.image"]},
        },
        "metrics": {"enabled": metrics, "enableOpenMetrics": True},
    }


def _cloud_values(facts: ClusterFacts, images: dict) -> dict[str, Any]:
    if facts.cloud == "eks":
        # ENI mode: pods get VPC addresses from ENIs the operator attaches, routed natively.
        # egressMasqueradeInterfaces is deliberately absent: it conflicts with BPF masquerade.
        values: dict[str, Any] = {
            "eni": {"enabled": True, "awsEnablePrefixDelegation": ENI_PREFIX_DELEGATION},
            "ipam": {"mode": "eni"},
            "routingMode": "native",
        }
        if facts.operator_role_arn is not None:
            values["serviceAccounts"] = {
                "operator": {"annotations": {"eks.amazonaws.com/role-arn": facts.operator_role_arn}}
            }
        return values
    return {
        "gke": {"enabled": True},
        "ipam": {"mode": "kubernetes"},
        "routingMode": "native",
        "ipv4NativeRoutingCIDR": facts.pod_cidr,
        "cni": {"binPath": "/home/kubernetes/bin"},
        # Not in values.yaml but read by the chart's nodeinit startup script (cilium-cli sets
        # them for GKE): wrap the kubelet so it uses Cilium's CNI, and delete GKE's cbr0.
        "nodeinit": {
            "enabled": True,
            "reconfigureKubelet": True,
            "removeCbrBridge": True,
            "image": images["nodeinit.image"],
        },
    }


def source_image_blocks(settings: CiliumSettings, cloud: Cloud) -> dict[str, dict[str, Any]]:
    """Every image block before any mirror: the catalog's, replaced by imageOverrides."""
    images = _images(settings.version, cloud)
    for component, override in settings.image_overrides.items():
        path = IMAGE_OVERRIDE_PATHS[component]
        block: dict[str, Any] = {
            "repository": override.repository,
            "tag": override.tag,
            "useDigest": override.digest is not None,
        }
        if path == "operator.image":
            block["suffix"] = ""
            block[OPERATOR_DIGEST_KEYS[cloud]] = override.digest or ""
        else:
            block["digest"] = override.digest or ""
        images[path] = block
    return images


def build_values(settings: CiliumSettings, facts: ClusterFacts) -> dict[str, Any]:
    """The chart's values for one cluster. Pure: the same inputs give the same values."""
    problems = check_profile(settings.profile, facts.cloud, facts.node_kernel)
    if problems:
        raise ProfileError(f"cluster {facts.name}: " + "; ".join(problems))
    images = mirror_image_blocks(source_image_blocks(settings, facts.cloud), settings.image_mirror)
    values: dict[str, Any] = {
        "image": images["image"],
        "operator": {"replicas": settings.operator_replicas, "image": images["operator.image"]},
        "kubeProxyReplacement": settings.kube_proxy_replacement,
        "k8sServiceHost": facts.api_host,
        "k8sServicePort": facts.api_port,
        "l7Proxy": settings.envoy,
        "envoy": {"enabled": settings.envoy, "image": images["envoy.image"]},
        "hubble": _hubble_values(settings, facts.environment, images),
        "certgen": {"image": images["certgen.image"]},
        "ingressController": {
            "enabled": settings.ingress_controller,
            "default": settings.ingress_controller,
            "loadbalancerMode": "shared",
        },
        "gatewayAPI": {"enabled": settings.gateway_api},
        "cluster": {"name": facts.name, "id": settings.cluster_id},
        "clustermesh": {
            "useAPIServer": settings.cluster_mesh,
            "apiserver": {"image": images["clustermesh.apiserver.image"]},
        },
        "authentication": {
            "mutual": {
                "spire": {
                    "enabled": settings.mutual_auth,
                    "install": {
                        "enabled": settings.mutual_auth,
                        "initImage": images["authentication.mutual.spire.install.initImage"],
                        "agent": {
                            "image": images["authentication.mutual.spire.install.agent.image"]
                        },
                        "server": {
                            "image": images["authentication.mutual.spire.install.server.image"]
                        },
                    },
                }
            }
        },
        "preflight": {"image": images["preflight.image"]},
    }
    if settings.upgrade_compatibility is not None:
        values["upgradeCompatibility"] = settings.upgrade_compatibility
    values.update(_cloud_values(facts, images))
    values.update(profile_values(settings.profile, facts.cloud))
    if facts.workload_identity:
        values["bpf"]["hostLegacyRouting"] = True
    if settings.image_mirror is not None and settings.image_mirror.pull_secret is not None:
        values["imagePullSecrets"] = [{"name": PULL_SECRET_NAME}]
    return values
