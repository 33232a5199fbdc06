"""Cilium on one cluster: the Helm release that replaces kube-proxy and the Istio sidecars.

``CiliumSettings`` is what a user writes under a cluster's ``cilium:`` key; ``build_values``
turns it plus the cluster's facts into the chart's values; ``CiliumRelease`` installs them as
one ``kubernetes.helm.v3.Release`` on the cluster's provider.

Not managed here: the cluster's own DNS (EKS CoreDNS is an add-on of the EKS component that
waits for this release), CiliumNetworkPolicies (components/network_policy.py), and Google's
managed Cilium on Dataplane V2 clusters (no release of ours there at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, field_validator, model_validator

from components.catalog import DEFAULT_CHART_VERSION, known_versions, load_catalog
from components.common import ConfigModel, field_error, type_token

__all__ = [
    "CHART_REPOSITORY",
    "ENI_PREFIX_DELEGATION",
    "GATEWAY_API_CRD_URLS",
    "GATEWAY_API_VERSION",
    "HUBBLE_METRICS_BY_ENVIRONMENT",
    "IMAGE_OVERRIDE_PATHS",
    "CiliumRelease",
    "CiliumSettings",
    "ClusterFacts",
    "HubbleSettings",
    "ImageOverride",
    "ProfileError",
    "build_values",
    "check_profile",
]

CHART_REPOSITORY = "https://helm.cilium.io"
# EKS ENI mode: each free ENI slot takes a /28 prefix instead of one address, so a node holds
# far more pods per ENI; the nodes' max pods follows it (components/eks_nodes.py).
ENI_PREFIX_DELEGATION = True

# Gateway API v1.1.0 is the release Cilium 1.16 implements; its CRDs must exist before the
# agent starts or Cilium's Gateway controller stays off. TLSRoute is experimental-channel
# but still required by Cilium 1.16.
GATEWAY_API_VERSION = "v1.1.0"
_GW = f"https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/{GATEWAY_API_VERSION}/config/crd"
GATEWAY_API_CRD_URLS = (
    f"{_GW}/standard/gateway.networking.k8s.io_gatewayclasses.yaml",
    f"{_GW}/standard/gateway.networking.k8s.io_gateways.yaml",
    f"{_GW}/standard/gateway.networking.k8s.io_httproutes.yaml",
    f"{_GW}/standard/gateway.networking.k8s.io_referencegrants.yaml",
    f"{_GW}/standard/gateway.networking.k8s.io_grpcroutes.yaml",
    f"{_GW}/experimental/gateway.networking.k8s.io_tlsroutes.yaml",
)

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

Profile = Literal["default", "throughput", "latency"]
Cloud = Literal["eks", "gke"]


class HubbleSettings(ConfigModel):
    """Hubble observability. Relay and UI are on by default: they are how an operator sees
    what the L7 policies allow and drop, which replaced Kiali for Istio users."""

    relay: bool = True
    ui: bool = True
    # None means "the environment's default set" (see HUBBLE_METRICS_BY_ENVIRONMENT).
    metrics: list[str] | None = None


# Friendly names for imageOverrides -> the chart's values path of that image.
IMAGE_OVERRIDE_PATHS = {
    "agent": "image",
    "operator": "operator.image",
    "envoy": "envoy.image",
    "hubbleRelay": "hubble.relay.image",
    "hubbleUiBackend": "hubble.ui.backend.image",
    "hubbleUiFrontend": "hubble.ui.frontend.image",
    "certgen": "certgen.image",
    "nodeinit": "nodeinit.image",
    "clustermeshApiserver": "clustermesh.apiserver.image",
}


class ImageOverride(ConfigModel):
    """An image outside the catalog, e.g. a patched Envoy or a registry mirror.

    The digest is optional here on purpose: the policy pack, not the config parser, is the
    gate that decides whether a tag-only or non-catalog digest may ship (allowedDigests)."""

    repository: Annotated[str, Field(min_length=1)]
    tag: Annotated[str, Field(min_length=1)]
    digest: Annotated[str | None, Field(pattern=r"^sha256:[0-9a-f]{64}$")] = None


class CiliumSettings(ConfigModel):
    """What a cluster's ``cilium:`` block may say. Everything else is derived."""

    version: str = DEFAULT_CHART_VERSION
    profile: Profile = "default"
    hubble: HubbleSettings = Field(default_factory=HubbleSettings)
    envoy: bool = True
    ingress_controller: bool = True
    gateway_api: bool = False
    mutual_auth: bool = False
    cluster_mesh: bool = False
    cluster_id: Annotated[int, Field(ge=0, le=255)] = 0
    operator_replicas: Annotated[int, Field(ge=1, le=5)] = 2
    # Only `true` is valid on 1.16. Older spellings are accepted here so that a config carried
    # over from Cilium <= 1.15 reaches the policy gate, which explains that 1.16 removed them.
    kube_proxy_replacement: bool | Literal["true", "false", "strict", "partial", "disabled"] = True
    image_overrides: dict[Literal[tuple(IMAGE_OVERRIDE_PATHS)], ImageOverride] = Field(  # type: ignore[valid-type]
        default_factory=dict
    )

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value not in load_catalog():
            raise ValueError(
                f"Cilium chart {value!r} is not in the digest catalog; known versions: "
                f"{', '.join(known_versions())}. Add its digests to "
                "components/data/cilium-images.json first"
            )
        return value

    @model_validator(mode="after")
    def _mesh_rules(self) -> CiliumSettings:
        if self.mutual_auth and self.cluster_mesh:
            raise field_error(
                "mutualAuth",
                "mutual authentication (SPIRE, beta in Cilium 1.16) cannot be combined with "
                "ClusterMesh: SPIRE identities are not federated across clusters. Turn one off",
            )
        if self.cluster_mesh and self.cluster_id == 0:
            raise field_error("clusterId", "ClusterMesh needs a unique clusterId between 1 and 255")
        return self


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


class ProfileError(ValueError):
    """A performance profile whose preconditions the cluster does not meet."""


# Kernel floors from the Cilium 1.16 tuning guide.
_NETKIT_KERNEL = (6, 8)
_BIG_TCP_IPV4_KERNEL = (6, 3)
_BBR_KERNEL = (5, 18)

_PROFILE_NEEDS: dict[str, dict[str, bool]] = {
    "default": {},
    "throughput": {"big_tcp": True, "bbr": True, "netkit": True},
    "latency": {"bbr": True, "netkit": True, "xdp": True},
}


def _kernel(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def check_profile(profile: str, cloud: Cloud, node_kernel: tuple[int, int]) -> list[str]:
    """Every unmet precondition of a profile, each saying what is needed and what to do."""
    needs = _PROFILE_NEEDS[profile]
    problems: list[str] = []
    floors = (
        ("netkit", _NETKIT_KERNEL, "netkit devices"),
        ("big_tcp", _BIG_TCP_IPV4_KERNEL, "IPv4 BIG TCP"),
        ("bbr", _BBR_KERNEL, "BBR in the bandwidth manager"),
    )
    for feature, floor, what in floors:
        if needs.get(feature) and node_kernel < floor:
            problems.append(
                f"profile {profile!r} uses {what}, which needs a node kernel >= "
                f"{_kernel(floor)}; the node image has {_kernel(node_kernel)}. Use a node image "
                f"with a newer kernel (nodeKernel) or profile 'default'"
            )
    if needs.get("xdp") and cloud == "gke":
        problems.append(
            f"profile {profile!r} uses XDP load-balancer acceleration, which GCP's gVNIC/virtio "
            "drivers do not support for Cilium; use profile 'throughput' or 'default' on GKE"
        )
    return problems


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
    digest_key = "awsDigest" if cloud == "eks" else "genericDigest"
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
        # "cronJob" has certgen create the certificates inside the cluster once and renew them
        # on a schedule. The default "helm" method generates new certificates on every render,
        # so every `pulumi preview` would show the release as changed.
        "tls": {
            "enabled": True,
            "auto": {
                "enabled": True,
                "method": "cronJob",
                "certValidityDuration": 1095,
                "schedule": "0 0 1 */4 *",
            },
        },
        "relay": {"enabled": settings.hubble.relay, "image": images["hubble.relay.image"]},
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


def _profile_values(profile: str, cloud: Cloud) -> dict[str, Any]:
    needs = _PROFILE_NEEDS[profile]
    values: dict[str, Any] = {
        "bpf": {"masquerade": True, "datapathMode": "netkit" if needs.get("netkit") else "veth"},
        "bandwidthManager": {"enabled": bool(needs.get("bbr")), "bbr": bool(needs.get("bbr"))},
        "enableIPv4BIGTCP": bool(needs.get("big_tcp")),
    }
    if needs.get("xdp") and cloud != "gke":
        values["loadBalancer"] = {"acceleration": "native"}
    return values


def build_values(settings: CiliumSettings, facts: ClusterFacts) -> dict[str, Any]:
    """The chart's values for one cluster. Pure: the same inputs give the same values."""
    problems = check_profile(settings.profile, facts.cloud, facts.node_kernel)
    if problems:
        raise ProfileError(f"cluster {facts.name}: " + "; ".join(problems))
    images = _images(settings.version, facts.cloud)
    for component, override in settings.image_overrides.items():
        path = IMAGE_OVERRIDE_PATHS[component]
        block: dict[str, Any] = {
            "repository": override.repository,
            "tag": override.tag,
            "useDigest": override.digest is not None,
        }
        if path == "operator.image":
            block["suffix"] = ""
            block["awsDigest" if facts.cloud == "eks" else "genericDigest"] = override.digest or ""
        else:
            block["digest"] = override.digest or ""
        images[path] = block
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
    values.update(_cloud_values(facts, images))
    values.update(_profile_values(settings.profile, facts.cloud))
    return values


class CiliumRelease(pulumi.ComponentResource):
    """One Cilium Helm release on one cluster, every image pinned by digest."""

    release: k8s.helm.v3.Release
    status: pulumi.Output[Any]

    def __init__(
        self,
        name: str,
        settings: CiliumSettings,
        facts: ClusterFacts,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("cilium", "CiliumRelease"), name, None, opts)
        values = build_values(settings, facts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)

        crds: list[pulumi.Resource] = []
        if settings.gateway_api:
            # Cilium only starts its Gateway controller when these CRDs exist at agent start.
            crds = [
                k8s.yaml.v2.ConfigFile(f"{name}-gateway-api-crd-{i}", file=url, opts=child)
                for i, url in enumerate(GATEWAY_API_CRD_URLS)
            ]

        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            k8s.helm.v3.ReleaseArgs(
                name="cilium",
                chart="cilium",
                version=settings.version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
                namespace="kube-system",
                values=values,
                # A failed upgrade rolls back rather than leaving a cluster half-networked.
                atomic=True,
                cleanup_on_fail=True,
                timeout=900,
                # The agent DaemonSet is only "ready" once every node's agent is; waiting here
                # is what lets CoreDNS and the network policies depend on the release.
                skip_await=False,
                max_history=10,
            ),
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=crds,
                    protect=facts.protect,
                    # The release is the data plane: Helm uninstalling it takes every pod's
                    # network and (without kube-proxy) every Service down at once, while the
                    # cluster and nodes live on. A replace (a changed name or namespace,
                    # pulumi-kubernetes#2532) or a refactor that loses the URN would do exactly
                    # that; retained, Pulumi only forgets it and the replace fails on the name
                    # still in use, for an operator to resolve deliberately.
                    retain_on_delete=facts.protect,
                ),
            ),
        )
        self.status = self.release.status
        self.register_outputs({"status": self.status, "chartVersion": settings.version})
