"""The Cilium Helm release on one cluster: the component that installs the chart's values.

Not managed here: the values themselves (values.py), the cluster's own DNS (EKS CoreDNS is an
add-on of the EKS component that waits for this release) and CiliumNetworkPolicies
(components/network_policy.py).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.chart_archive import archive_chart
from components.cilium.settings import CiliumSettings
from components.cilium.values import ClusterFacts, build_values
from components.common import type_token
from components.hubble_tls import HubbleTls
from components.registry import pull_secret

__all__ = ["CHART_REPOSITORY", "GATEWAY_API_CRD_URLS", "GATEWAY_API_VERSION", "CiliumRelease"]

CHART_REPOSITORY = "https://helm.cilium.io"

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
