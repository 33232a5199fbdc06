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
from components.chart_archive import archive_chart
from components.common import ConfigModel, field_error, type_token
from components.contract import IMAGE_OVERRIDE_PATHS, OPERATOR_DIGEST_KEYS
from components.hubble_tls import HUBBLE_RELAY_CLIENT_SECRET, HUBBLE_SERVER_SECRET, HubbleTls
from components.registry import PULL_SECRET_NAME, RegistryMirror, mirror_image_blocks, pull_secret

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
    "source_image_blocks",
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
    # This cluster's registry mirror; None uses the stack's `imageMirror` (components/registry.py).
    image_mirror: RegistryMirror | None = None
    # A local chart archive (relative to the repository root) installed instead of the chart
    # repository's; its sha256 must equal the catalog's (components/chart_archive.py).
    chart_archive: str | None = None
    # Upgrades (README, "Upgrading Cilium"): the minor being replaced during a minor upgrade,
    # the reason a downgrade is intended, and the pre-flight image pull before either.
    upgrade_compatibility: Annotated[str | None, Field(pattern=r"^\d+\.\d+$")] = None
    downgrade_reason: Annotated[str | None, Field(min_length=10)] = None
    preflight_version: str | None = None  # components/preflight.py

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value not in load_catalog():
            raise ValueError(
                f"Cilium chart {value!r} is not in the digest catalog; known versions: "
                f"{', '.join(known_versions())}. Add its digests to "
                "policies/data/cilium-images.json first"
            )
        return value

    @field_validator("preflight_version")
    @classmethod
    def _known_preflight_version(cls, value: str | None) -> str | None:
        if value is not None and value not in load_catalog():
            raise ValueError(
                f"Cilium chart {value!r} is not in the digest catalog; known versions: "
                f"{', '.join(known_versions())}"
            )
        return value

    @model_validator(mode="after")
    def _preflight_is_ahead(self) -> CiliumSettings:
        if self.preflight_version is None:
            return self
        now = tuple(int(p) for p in self.version.split("."))
        target = tuple(int(p) for p in self.preflight_version.split("."))
        if not now < target <= (now[0], now[1] + 1, 10_000):
            raise field_error(
                "preflightVersion",
                f"{self.preflight_version} is not the next step from version {self.version}: "
                "the pre-flight check runs the version you are about to upgrade to (a later "
                "patch, or the next minor); remove it once the upgrade is done",
            )
        return self

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
    # GKE: pods reach gke-metadata-server through an iptables redirect that BPF host routing
    # bypasses (cilium/cilium #28655, #36685), so Workload Identity needs legacy host routing.
    workload_identity: bool = False


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


def _profile_values(profile: str, cloud: Cloud) -> dict[str, Any]:
    needs = _PROFILE_NEEDS[profile]
    values: dict[str, Any] = {
        "bpf": {"masquerade": True, "datapathMode": "netkit" if needs.get("netkit") else "veth"},
        "bandwidthManager": {"enabled": bool(needs.get("bbr")), "bbr": bool(needs.get("bbr"))},
        "enableIPv4BIGTCP": bool(needs.get("big_tcp")),
    }
    if needs.get("xdp") and cloud != "gke":
        # best-effort, not native: native needs XDP on every device the agent uses, and on EKS
        # the ENA driver runs XDP only with MTU <= 3498 (nodes default to 9001) while ENI mode
        # attaches several devices (Cilium docs, kubeproxy-free, "NodePort XDP on AWS").
        # best-effort accelerates where the driver can and leaves the rest to tc BPF.
        values["loadBalancer"] = {"acceleration": "best-effort"}
    return values


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
    values.update(_profile_values(settings.profile, facts.cloud))
    if facts.workload_identity:
        values["bpf"]["hostLegacyRouting"] = True
    if settings.image_mirror is not None and settings.image_mirror.pull_secret is not None:
        values["imagePullSecrets"] = [{"name": PULL_SECRET_NAME}]
    return values


class CiliumRelease(pulumi.ComponentResource):
    """One Cilium Helm release on one cluster, every image pinned by digest.

    ``waits_for_pods`` says whether the release may wait for its pods (Helm's ``--wait``):
    - False on EKS, where it is installed before any node exists (node groups wait for it):
      ``skip_await=True`` and ``atomic=False``, because atomic turns the wait back on
      (pulumi-kubernetes helm.v3.Release: "`skipAwait` will be disabled automatically if atomic
      is used"; helm pkg/action/install.go sets ``Wait`` when ``Atomic``). Readiness is then
      proven later by the node groups (ACTIVE only with a CNI) and the CoreDNS add-on.
    - True on GKE, where node pools exist first (GKE's own bridge CNI makes them Ready; our
      taint keeps other pods off until the agent runs): ``atomic`` with Helm's wait. Helm's
      wait is weaker than "every agent runs": its ready check subtracts ``maxUnavailable``
      (helm pkg/kube/ready.go), and the chart's agent DaemonSet has ``maxUnavailable: 2``, so
      on a two-node pool it can pass with zero ready agents; the operator Deployment (50%)
      needs one of two replicas.
    Neither renders a Helm hook: Hubble's certificates come from HubbleTls.
    """

    release: k8s.helm.v3.Release
    status: pulumi.Output[Any]

    def __init__(
        self,
        name: str,
        settings: CiliumSettings,
        facts: ClusterFacts,
        provider: k8s.Provider,
        waits_for_pods: bool,
        after: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("cilium", "CiliumRelease"), name, None, opts)
        values = build_values(settings, facts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)

        before: list[pulumi.Resource] = list(after or [])
        secret = pull_secret(name, settings.image_mirror, provider, self)
        if secret is not None:
            before.append(secret)  # the pods reference it from their first pull
        if settings.gateway_api:
            # Cilium only starts its Gateway controller when these CRDs exist at agent start.
            before += [
                k8s.yaml.v2.ConfigFile(f"{name}-gateway-api-crd-{i}", file=url, opts=child)
                for i, url in enumerate(GATEWAY_API_CRD_URLS)
            ]
        hubble_tls = HubbleTls(
            f"{name}-hubble-tls",
            cluster_name=facts.name,
            relay=settings.hubble.relay,
            provider=provider,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The agent mounts the secrets as optional, but the relay would start without a client
        # certificate and crash-loop until they appear: create them first.
        before += hubble_tls.secrets

        # A verified local archive (checked against the catalog's sha256 when the config was
        # loaded) or the chart repository. The provider stores a local chart's path as given
        # (pulumi/pulumi-kubernetes#2251): the absolute path always resolves, but deploying
        # from a checkout at another path shows a chart diff and makes a new Helm revision.
        archive = archive_chart(settings.chart_archive, settings.version)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            k8s.helm.v3.ReleaseArgs(
                name="cilium",
                chart=archive or "cilium",
                version=settings.version,
                repository_opts=None
                if archive
                else k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
                namespace="kube-system",
                values=values,
                # With a wait: a failed install or upgrade rolls back rather than leaving a
                # cluster half-networked. Without one (bootstrap before nodes), see above.
                atomic=waits_for_pods,
                cleanup_on_fail=True,
                timeout=900,
                skip_await=not waits_for_pods,
                max_history=10,
            ),
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=before,
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
