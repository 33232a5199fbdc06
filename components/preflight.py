"""The Cilium upgrade guide's pre-flight check, as one config switch: `cilium.preflightVersion`.

Step one of an upgrade (docs.cilium.io, "Upgrade Guide", "Running pre-flight check"): a second
Helm release of the *target* chart version with ``preflight.enabled=true``, ``agent=false`` and
``operator.enabled=false`` renders only the ``cilium-pre-flight-check`` DaemonSet (which pulls
the new agent image onto every node, so the upgrade does not wait for pulls while pods are
down) and Deployment (which validates the cluster's CiliumNetworkPolicies against the new
version). Once its DaemonSet is ready on every node, the version moves in the next change and
the switch is removed. Its image is the catalog's digest for the target version (mirrored like
every other image), and with kube-proxy replacement the pods need the API server address.

Not managed here: the upgrade itself (components/cilium/, checked by infra/upgrade.py).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cilium import (
    CHART_REPOSITORY,
    CiliumSettings,
    ClusterFacts,
    source_image_blocks,
)
from components.common import type_token
from components.registry import PULL_SECRET_NAME, mirror_image_blocks

__all__ = ["CiliumPreflight", "preflight_values"]


def preflight_values(settings: CiliumSettings, facts: ClusterFacts) -> dict[str, Any]:
    """Values of the pre-flight release: only the pre-flight objects render (agent, operator
    and Envoy off; Hubble relay/UI and the ingress controller stay at the chart's off)."""
    target = settings.model_copy(update={"version": settings.preflight_version})
    images = mirror_image_blocks(source_image_blocks(target, facts.cloud), settings.image_mirror)
    values: dict[str, Any] = {
        "agent": False,
        "operator": {"enabled": False},
        "envoy": {"enabled": False},
        # The agent image is not rendered with agent=false; pinned all the same so no values
        # path of this release names an image without the catalog's digest.
        "image": images["image"],
        "preflight": {"enabled": True, "image": images["preflight.image"]},
        "kubeProxyReplacement": True,
        "k8sServiceHost": facts.api_host,
        "k8sServicePort": facts.api_port,
    }
    if settings.image_mirror is not None and settings.image_mirror.pull_secret is not None:
        values["imagePullSecrets"] = [{"name": PULL_SECRET_NAME}]
    return values


class CiliumPreflight(pulumi.ComponentResource):
    """The pre-flight release of the next Cilium version on one cluster."""

    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        settings: CiliumSettings,
        facts: ClusterFacts,
        provider: k8s.Provider,
        after: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("cilium", "CiliumPreflight"), name, None, opts)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            k8s.helm.v3.ReleaseArgs(
                name="cilium-preflight",
                chart="cilium",
                version=settings.preflight_version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
                namespace="kube-system",
                values=preflight_values(settings, facts),
                # Waits for the DaemonSet on every node: that wait is the pre-pull. It runs
                # after the cluster's Cilium is ready (`after`), so nodes exist.
                atomic=True,
                cleanup_on_fail=True,
                timeout=900,
                max_history=3,
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=after),
        )
        self.register_outputs({"chartVersion": settings.preflight_version})
