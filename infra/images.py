"""`meshless images`: every image a stack runs, ready to feed a mirroring tool.

One line per image, no duplicates (clusters that run the same image share its line):
``source repository:tag@digest -> target repository@digest``, where the target is the mirror's
repository when the cluster uses one (else the source itself). ``--format json`` adds, per
image, the clusters running it and the two references copy tools want: skopeo refuses a source
with both tag and digest (containers/image#1736), so ``sourceByDigest`` is ``repository@digest``,
and ``targetTag`` (``mirror:tag``) is a readable destination whose digest a manifest-preserving
copy (``crane copy``, ``skopeo copy --all --preserve-digests``) keeps.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from components.registry import ImageCopy, images_to_copy, unique
from infra.config import ConfigError

if TYPE_CHECKING:
    from infra.program import StackPlan

__all__ = ["images_command", "stack_images"]


class Format(StrEnum):
    text = "text"
    json = "json"


def stack_images(plan: StackPlan) -> dict[ImageCopy, list[str]]:
    """Each distinct image of the stack -> the clusters that run it (config order)."""
    found: dict[ImageCopy, list[str]] = {}
    for cluster in plan.config.clusters:
        settings = cluster.cilium_settings
        if settings is None:
            continue  # dataplane-v2: Google runs Cilium, no image of ours
        for copy in images_to_copy(settings, cluster.cloud, settings.image_mirror):
            found.setdefault(copy, []).append(cluster.name)
    return {copy: found[copy] for copy in unique(found)}


def _json(stack: str, images: dict[ImageCopy, list[str]]) -> str:
    entries: list[dict[str, Any]] = [
        {
            "source": copy.source,
            "sourceByDigest": copy.source_by_digest,
            "target": copy.target,
            "targetTag": copy.target_tag,
            "digest": copy.digest,
            "clusters": clusters,
        }
        for copy, clusters in images.items()
    ]
    return json.dumps({"stack": stack, "images": entries}, indent=2)


def images_command(
    stack: Annotated[str, typer.Option(help="Stack: reads Pulumi.<stack>.yaml")] = "staging",
    stack_file: Annotated[
        Path | None, typer.Option(help="Read this stack file instead of Pulumi.<stack>.yaml")
    ] = None,
    output: Annotated[Format, typer.Option("--format", help="text or json")] = Format.text,
) -> None:
    """List every image the stack will run: source -> mirror (or source) by digest."""
    from infra.cli import _fail
    from infra.plan import PlanInputError, default_stack_file, read_stack_file
    from infra.program import load  # the cloud SDKs load only for this command

    try:
        plan = load(read_stack_file(stack_file or default_stack_file(stack)))
    except ConfigError as exc:
        raise _fail(exc.problems) from None
    except PlanInputError as exc:
        raise _fail([str(exc)]) from None
    images = stack_images(plan)
    if output is Format.json:
        typer.echo(_json(stack, images))
        return
    for copy in images:
        typer.echo(f"{copy.source} -> {copy.target}")
