"""Cilium on one cluster: the Helm release that replaces kube-proxy and the Istio sidecars.

``CiliumSettings`` is what a user writes under a cluster's ``cilium:`` key; ``build_values``
turns it plus the cluster's facts into the chart's values; ``CiliumRelease`` installs them as
one ``kubernetes.helm.v3.Release`` on the cluster's provider. In modules by job:

- ``settings.py``: ``CiliumSettings`` and its parts (validated before any resource exists);
- ``profiles.py``: performance profiles, their kernel and cloud preconditions;
- ``values.py``: ``ClusterFacts`` and ``build_values``, the chart values (pure);
- ``release.py``: ``CiliumRelease`` (type ``meshless:cilium:CiliumRelease``).

Beside the package: the digest catalog (components/catalog.py), Hubble's certificates
(components/hubble_tls.py), registry mirrors (components/registry.py), verified local chart
archives (components/chart_archive.py) and the upgrade pre-flight (components/preflight.py).

Not managed here: the cluster's own DNS (EKS CoreDNS is an add-on of the EKS component that
waits for this release), CiliumNetworkPolicies (components/network_policy.py), and Google's
managed Cilium on Dataplane V2 clusters (no release of ours there at all).
"""

from components.cilium.profiles import Cloud, Profile, ProfileError, check_profile
from components.cilium.release import (
    CHART_REPOSITORY,
    GATEWAY_API_CRD_URLS,
    GATEWAY_API_VERSION,
    CiliumRelease,
)
from components.cilium.settings import CiliumSettings, HubbleSettings, ImageOverride
from components.cilium.values import (
    ENI_PREFIX_DELEGATION,
    HUBBLE_METRICS_BY_ENVIRONMENT,
    ClusterFacts,
    build_values,
    source_image_blocks,
)
from components.contract import IMAGE_OVERRIDE_PATHS

__all__ = [
    "CHART_REPOSITORY",
    "ENI_PREFIX_DELEGATION",
    "GATEWAY_API_CRD_URLS",
    "GATEWAY_API_VERSION",
    "HUBBLE_METRICS_BY_ENVIRONMENT",
    "IMAGE_OVERRIDE_PATHS",
    "CiliumRelease",
    "CiliumSettings",
    "Cloud",
    "ClusterFacts",
    "HubbleSettings",
    "ImageOverride",
    "Profile",
    "ProfileError",
    "build_values",
    "check_profile",
    "source_image_blocks",
]
