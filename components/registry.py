"""Private registry mirrors: every Cilium image pulled from the user's registry, same digests.

A mirror maps each source registry (``quay.io``, ``ghcr.io``, ``docker.io``) to a repository
prefix in the user's registry (ECR, Artifact Registry, Harbor). An image
``quay.io/cilium/cilium:v1.16.19@sha256:...`` becomes
``<prefix>/cilium/cilium:v1.16.19@sha256:...``: the repository changes, the digest stays the
catalog's. A registry copy that preserves the manifest (``crane copy``,
``skopeo copy --all --preserve-digests``) keeps the digest, so the bytes that run are the
reviewed ones whichever registry serves them.

Not managed here: the registry itself, its repositories and its credentials' rotation; the
copy (``meshless images`` lists what to copy); images set explicitly in ``imageOverrides``
(the user chose those repositories, so they are used as written).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, field_validator

from components.catalog import OPERATOR_DIGEST_KEYS, load_catalog
from components.common import ConfigModel

if TYPE_CHECKING:
    from components.cilium import CiliumSettings, Cloud

__all__ = [
    "PULL_SECRET_NAME",
    "ImageCopy",
    "RegistryMirror",
    "deployed_image_paths",
    "images_to_copy",
    "mirror_image_blocks",
    "pull_secret",
    "split_repository",
    "unique",
    "unmapped_registries",
]

# One Secret per cluster, in kube-system next to the Cilium pods that reference it through the
# chart's top-level `imagePullSecrets` (agent, operator, Envoy, Hubble, certgen, nodeinit,
# clustermesh and SPIRE templates all render it: cilium chart 1.16.19 values.yaml and
# templates/*, vendor/cilium-chart/cilium-1.16.19.tgz).
PULL_SECRET_NAME = "meshless-registry-mirror"

_HOST = r"(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*(?::\d+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# A registry host (with a dot or a port, or localhost) and an optional repository path, no
# scheme, tag or digest: the prefix image names get under the mirror.
_PREFIX = re.compile(rf"^{_HOST}(?:/{_PATH})*$")
_REGISTRY = re.compile(rf"^{_HOST}$")


def split_repository(repository: str) -> tuple[str, str]:
    """(registry host, path) of an image repository, Docker's rules for an implicit host: the
    first segment is a host when it has a dot or a port or is ``localhost``."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    path = repository if "/" in repository else f"library/{repository}"
    return "docker.io", path


class RegistryMirror(ConfigModel):
    """Where a stack (or one cluster) pulls every Cilium image from."""

    # Source registry -> repository prefix in the mirror, e.g.
    # quay.io: 123456789012.dkr.ecr.us-east-1.amazonaws.com/quay.io
    registries: Annotated[dict[str, str], Field(min_length=1)]
    # A secret stack config key, `<namespace>:<key>` outside the `meshless` namespace (which
    # holds only typed settings), whose value is a .dockerconfigjson:
    # `pulumi config set --secret registry:harbor "$(cat config.json)"`. Needed for registries
    # the nodes cannot pull from with their own identity (Harbor, another account's registry);
    # ECR from EKS nodes and Artifact Registry from GKE nodes use the node's IAM identity.
    pull_secret: Annotated[
        str | None, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9_-]*:[a-zA-Z][a-zA-Z0-9_-]*$")
    ] = None

    @field_validator("registries")
    @classmethod
    def _well_formed(cls, value: dict[str, str]) -> dict[str, str]:
        for source, prefix in value.items():
            if not _REGISTRY.match(source):
                raise ValueError(
                    f"{source!r} is not a registry host; keys are source registries such as "
                    "quay.io, ghcr.io or docker.io"
                )
            if not _PREFIX.match(prefix):
                raise ValueError(
                    f"mirror for {source} is {prefix!r}; write a registry host and optional "
                    "path without scheme, tag or digest, e.g. "
                    "123456789012.dkr.ecr.us-east-1.amazonaws.com/quay.io"
                )
        return value

    @field_validator("pull_secret")
    @classmethod
    def _outside_meshless(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("meshless:"):
            raise ValueError(
                f"{value!r} is in the meshless namespace, which holds only typed settings; use "
                "another namespace, e.g. registry:pullSecret"
            )
        return value

    def repository(self, source: str) -> str | None:
        """The mirrored repository of ``source``, None when its registry is not mapped."""
        registry, path = split_repository(source)
        prefix = self.registries.get(registry)
        return f"{prefix}/{path}" if prefix is not None else None


def deployed_image_paths(settings: CiliumSettings, cloud: Cloud) -> tuple[str, ...]:
    """Values paths of the catalog images a release with these settings runs (the chart's
    conditions for each component; tests/test_registry.py holds this equal to what the real
    chart renders)."""
    # No certgen: Hubble's certificates come from the program (components/hubble_tls.py) and
    # ClusterMesh's from the chart's `helm` method, so no certgen Job or CronJob is rendered.
    paths = ["image", "operator.image"]
    if settings.envoy:
        paths.append("envoy.image")
    if settings.hubble.relay:
        paths.append("hubble.relay.image")
    if settings.hubble.ui:
        paths += ["hubble.ui.backend.image", "hubble.ui.frontend.image"]
    if cloud == "gke":
        paths.append("nodeinit.image")
    if settings.cluster_mesh:
        paths.append("clustermesh.apiserver.image")
    if settings.mutual_auth:
        paths += [
            "authentication.mutual.spire.install.agent.image",
            "authentication.mutual.spire.install.server.image",
            "authentication.mutual.spire.install.initImage",
        ]
    return tuple(paths)


def mirror_image_blocks(
    images: Mapping[str, dict[str, Any]], mirror: RegistryMirror | None
) -> dict[str, dict[str, Any]]:
    """Image blocks with each repository moved to the mirror (digests untouched). A block whose
    registry the mirror does not map keeps its repository; config checks refuse that for
    every image a release runs (``unmapped_registries``)."""
    if mirror is None:
        return dict(images)
    out = {}
    for path, block in images.items():
        moved = mirror.repository(str(block["repository"]))
        out[path] = {**block, "repository": moved} if moved else dict(block)
    return out


def unmapped_registries(
    settings: CiliumSettings, cloud: Cloud, mirror: RegistryMirror
) -> dict[str, list[str]]:
    """Source registry -> values paths of deployed catalog images the mirror does not cover
    (images in imageOverrides are the user's explicit choice and are not required to be)."""
    from components.cilium import IMAGE_OVERRIDE_PATHS

    overridden = {IMAGE_OVERRIDE_PATHS[name] for name in settings.image_overrides}
    catalog = load_catalog()[settings.version]
    missing: dict[str, list[str]] = {}
    for path in deployed_image_paths(settings, cloud):
        if path in overridden:
            continue
        registry, _ = split_repository(str(catalog[path]["repository"]))
        if registry not in mirror.registries:
            missing.setdefault(registry, []).append(path)
    return missing


@dataclass(frozen=True)
class ImageCopy:
    """One image a stack runs: where it comes from and, with a mirror, where it is pulled."""

    source_repository: str
    tag: str
    digest: str | None  # None only for a tag-only imageOverride (the policy pack refuses it)
    mirror_repository: str | None

    @property
    def source(self) -> str:
        pinned = f"@{self.digest}" if self.digest else ""
        return f"{self.source_repository}:{self.tag}{pinned}"

    @property
    def source_by_digest(self) -> str:
        # skopeo refuses references with both a tag and a digest (containers/image#1736).
        if not self.digest:
            return self.source
        return f"{self.source_repository}@{self.digest}"

    @property
    def target(self) -> str:
        """What the cluster pulls: by digest when there is one."""
        repository = self.mirror_repository or self.source_repository
        return f"{repository}@{self.digest}" if self.digest else f"{repository}:{self.tag}"

    @property
    def target_tag(self) -> str | None:
        return f"{self.mirror_repository}:{self.tag}" if self.mirror_repository else None


def images_to_copy(
    settings: CiliumSettings, cloud: Cloud, mirror: RegistryMirror | None
) -> list[ImageCopy]:
    """Every image a release runs (catalog or imageOverrides), with the repository the chart
    renders: the operator's gets its cloud suffix, as cilium-operator's _helpers.tpl appends
    it (``{{ .repository }}-{{ aws|generic }}{{ .suffix }}``)."""
    from components.cilium import source_image_blocks

    blocks = source_image_blocks(settings, cloud)
    copies = []
    for path in deployed_image_paths(settings, cloud):
        block = blocks[path]
        repository = str(block["repository"])
        digest_key = "digest"
        if path == "operator.image":
            repository += f"-{'aws' if cloud == 'eks' else 'generic'}{block.get('suffix', '')}"
            digest_key = OPERATOR_DIGEST_KEYS[cloud]
        moved = mirror.repository(repository) if mirror else None
        digest = block.get(digest_key) or None
        copies.append(ImageCopy(repository, str(block["tag"]), digest, moved))
    return copies


def unique(copies: Iterable[ImageCopy]) -> list[ImageCopy]:
    """Each image once, in a stable order (several clusters run the same images)."""
    return sorted(set(copies), key=lambda c: (c.source, c.target))


def pull_secret(
    name: str,
    mirror: RegistryMirror | None,
    provider: k8s.Provider,
    parent: pulumi.Resource,
) -> k8s.core.v1.Secret | None:
    """The cluster's pull Secret from the mirror's secret config key, if it names one."""
    if mirror is None or mirror.pull_secret is None:
        return None
    namespace, _, key = mirror.pull_secret.partition(":")
    credentials = pulumi.Config(namespace).require_secret(key)
    return k8s.core.v1.Secret(
        f"{name}-registry-pull-secret",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=PULL_SECRET_NAME, namespace="kube-system"),
        type="kubernetes.io/dockerconfigjson",
        string_data={".dockerconfigjson": credentials},
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
