"""Registry mirrors and chart archives across a stack: which mirror each cluster uses, and the
config checks that need the catalog, the config map or the file system.

The stack's ``imageMirror`` applies to every cluster with a Cilium release unless the cluster's
``cilium.imageMirror`` names its own. Checked before any resource exists: every image a release
runs comes from a mapped registry, a named pull-secret key exists in the stack config, and a
chart archive is the catalog's bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

from components.chart_archive import check_archive
from components.cilium import CiliumSettings
from components.registry import RegistryMirror, unmapped_registries
from infra.config import NAMESPACE, ClusterConfig, StackConfig

__all__ = ["check_supply", "resolve_mirrors"]


def _with_mirror(cluster: ClusterConfig, mirror: RegistryMirror) -> ClusterConfig:
    settings = cluster.cilium_settings
    if settings is None or settings.image_mirror is not None:
        return cluster
    return cluster.model_copy(
        update={"cilium": settings.model_copy(update={"image_mirror": mirror})}
    )


def resolve_mirrors(config: StackConfig) -> StackConfig:
    """The config with the stack's mirror copied into each cluster that has none of its own."""
    if config.image_mirror is None:
        return config
    clusters = [_with_mirror(cluster, config.image_mirror) for cluster in config.clusters]
    return config.model_copy(update={"clusters": clusters})


def _mirror_key(index: int, cluster: ClusterConfig) -> str:
    """Where the user wrote the mirror this (unresolved) cluster uses."""
    own = cluster.cilium is not None and cluster.cilium.image_mirror is not None
    return (
        f"{NAMESPACE}:clusters[{index}].cilium.imageMirror" if own else f"{NAMESPACE}:imageMirror"
    )


def _mirror_problems(
    key: str, cluster: ClusterConfig, settings: CiliumSettings, values: Mapping[str, str]
) -> list[str]:
    mirror = settings.image_mirror
    if mirror is None:
        return []
    problems = [
        f"{key}.registries: {cluster.name} runs {', '.join(paths)} from {registry}, which the "
        f"mirror does not map; add `{registry}: <your registry>/<path>` so every Cilium image "
        "is pulled from the mirror"
        for registry, paths in sorted(unmapped_registries(settings, cluster.cloud, mirror).items())
    ]
    if mirror.pull_secret is not None and mirror.pull_secret not in values:
        problems.append(
            f"{key}.pullSecret: the stack config has no key {mirror.pull_secret}; set it with "
            f'`pulumi config set --secret {mirror.pull_secret} "$(cat config.json)"` (a '
            ".dockerconfigjson) or remove pullSecret"
        )
    return problems


def check_supply(config: StackConfig, values: Mapping[str, str]) -> list[str]:
    """Every mirror and chart-archive problem of a config as the user wrote it."""
    problems: list[str] = []
    resolved = resolve_mirrors(config)
    for index, (written, cluster) in enumerate(
        zip(config.clusters, resolved.clusters, strict=True)
    ):
        settings = cluster.cilium_settings
        if settings is None:
            continue
        problems += _mirror_problems(_mirror_key(index, written), cluster, settings, values)
        if settings.chart_archive is not None:
            problem = check_archive(settings.chart_archive, settings.version)
            if problem:
                problems.append(f"{NAMESPACE}:clusters[{index}].cilium.chartArchive: {problem}")
    return problems
