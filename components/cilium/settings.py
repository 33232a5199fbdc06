"""What a user may write under a cluster's ``cilium:`` key; everything else is derived.

Pure pydantic models: a chart version outside the digest catalog, an upgrade step that skips a
minor, or mutual auth with ClusterMesh are refused before any resource exists.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from components.catalog import DEFAULT_CHART_VERSION, known_versions, load_catalog
from components.cilium.profiles import Profile
from components.common import ConfigModel, field_error
from components.contract import IMAGE_OVERRIDE_PATHS
from components.registry import RegistryMirror

__all__ = ["CiliumSettings", "HubbleSettings", "ImageOverride"]


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
