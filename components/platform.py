"""Platform calls every real cluster needs under default deny, as first-class rules.

A service's traffic policy can say ``cloudIdentity: true`` (it fetches cloud credentials
through the cluster's workload identity) and ``kubeApiserver: true`` (a controller that talks
to the Kubernetes API). ``platform_egress`` turns those switches into CiliumNetworkPolicy egress
rules for one cluster, because what they must allow depends on the cloud:

| cloud, mechanism | what the pod calls | rule | source |
| --- | --- | --- | --- |
| GKE, Workload Identity | the GKE metadata server, ``169.254.169.254:80`` | ``toCIDR 169.254.169.254/32`` TCP 80 | Cilium gives that address the ``world`` identity, so ``toEntities: [host]`` matches nothing there and only a CIDR rule works (A/B test on a live GKE cluster with self-managed Cilium: Smana/runlore#562) |
| EKS, IRSA | AWS STS ``AssumeRoleWithWebIdentity`` at ``sts.<region>.amazonaws.com:443`` | ``toFQDNs matchName`` TCP 443 + its DNS lookup rule | the EKS pod identity webhook sets ``AWS_STS_REGIONAL_ENDPOINTS=regional`` and ``AWS_REGION``, so SDKs call the regional endpoint (aws/aws-sdk-php#3197 shows the injected variables; AWS IAM guide "Manage AWS STS in an AWS Region") |
| EKS, Pod Identity (add-on ``eks-pod-identity-agent``) | the node-local agent, ``169.254.170.23:80`` | ``toEntities: [host]`` TCP 80 | the agent is a ``hostNetwork`` DaemonSet; Cilium classifies the address as ``host``, so an ipBlock/CIDR rule does not match it (cilium/cilium#34387, Hubble ``(host)``); validated in-cluster with ``toEntities: [host]`` port 80 (Smana/runlore#57) |
| any, controllers | the Kubernetes API server, port 443 | ``toEntities: [kube-apiserver]`` TCP 443 | Cilium's ``kube-apiserver`` entity (docs.cilium.io, Layer 3 policies, Entities based); both EKS and GKE serve the API on 443 |

IRSA is always possible on our EKS clusters (components/eks/iam.py creates the OIDC provider), so
``cloudIdentity`` always allows STS there; Pod Identity is added only where the cluster runs
the agent add-on. Not handled: the instance metadata service of the node itself (IMDS at
169.254.169.254 on EKS; pods should not use the node's role), and GKE's legacy port 988.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "EKS_POD_IDENTITY_ADDON",
    "EKS_POD_IDENTITY_IP",
    "GKE_METADATA_IP",
    "KUBE_APISERVER_PORT",
    "Platform",
    "PlatformCall",
    "cloud_identity_calls",
    "platform_egress",
    "platform_for",
]

JSON = dict[str, Any]

GKE_METADATA_IP = "169.254.169.254"
EKS_POD_IDENTITY_IP = "169.254.170.23"
EKS_POD_IDENTITY_ADDON = "eks-pod-identity-agent"
KUBE_APISERVER_PORT = 443


@dataclass(frozen=True)
class Platform:
    """What the rules of one cluster depend on: its cloud, region and identity add-ons."""

    cloud: Literal["gke", "eks"]
    region: str
    pod_identity_agent: bool = False

    @property
    def host_ips(self) -> frozenset[str]:
        """Link-local addresses Cilium classifies as the ``host`` identity on this cloud."""
        return frozenset({EKS_POD_IDENTITY_IP}) if self.pod_identity_agent else frozenset()


@dataclass(frozen=True)
class PlatformCall:
    """One call a workload makes for its cloud identity: to an IP or a DNS name, on a port."""

    what: str
    port: int
    ip: str | None = None
    fqdn: str | None = None
    entity: str | None = None


def platform_for(cluster: Any) -> Platform:
    """The platform of a validated cluster config (EksClusterConfig or GkeClusterConfig)."""
    addons = {addon.name for addon in getattr(cluster, "addons", [])}
    return Platform(
        cloud=cluster.cloud,
        region=cluster.region,
        pod_identity_agent=EKS_POD_IDENTITY_ADDON in addons,
    )


def cloud_identity_calls(platform: Platform) -> list[PlatformCall]:
    """The calls ``cloudIdentity: true`` must allow on this platform (see the table above)."""
    if platform.cloud == "gke":
        return [PlatformCall("GKE metadata server", 80, ip=GKE_METADATA_IP)]
    calls = [PlatformCall("AWS STS (IRSA)", 443, fqdn=f"sts.{platform.region}.amazonaws.com")]
    if platform.pod_identity_agent:
        calls.append(
            PlatformCall("EKS Pod Identity agent", 80, ip=EKS_POD_IDENTITY_IP, entity="host")
        )
    return calls


def _tcp(port: int) -> list[JSON]:
    return [{"ports": [{"port": str(port), "protocol": "TCP"}]}]


def platform_egress(
    cloud_identity: bool, kube_apiserver: bool, platform: Platform | None
) -> tuple[list[JSON], list[JSON]]:
    """Egress rules for a service's platform switches, and the DNS names it must look up
    (for the caller's DNS rule). Without a platform (a render outside any cluster) only the
    cloud-independent API server rule is produced."""
    rules: list[JSON] = []
    names: list[JSON] = []
    if cloud_identity and platform is not None:
        for call in cloud_identity_calls(platform):
            if call.entity:
                rules.append({"toEntities": [call.entity], "toPorts": _tcp(call.port)})
            elif call.ip:
                rules.append({"toCIDR": [f"{call.ip}/32"], "toPorts": _tcp(call.port)})
            else:
                rules.append({"toFQDNs": [{"matchName": call.fqdn}], "toPorts": _tcp(call.port)})
                names.append({"matchName": call.fqdn})
    if kube_apiserver:
        rules.append({"toEntities": ["kube-apiserver"], "toPorts": _tcp(KUBE_APISERVER_PORT)})
    return rules, names
