"""The Cilium digest catalog: every image the chart can deploy, pinned by sha256, per chart version.

The data lives in ``policies/data/cilium-images.json``, inside the policy pack (which runs in its
own environment and is published alone), so that the pack reads the very same file. Facts come from the chart
archives' values.yaml (see the file's ``source``); this module only loads and checks them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from components.contract import (
    IMAGE_SLOT_PATHS,
    OPERATOR_DIGEST_KEYS,
    OPERATOR_IMAGE,
    PACK_DATA_DIR,
)

__all__ = [
    "CATALOG_PATH",
    "DEFAULT_CHART_VERSION",
    "OPERATOR_DIGEST_KEYS",
    "REQUIRED_IMAGES",
    "CatalogProblem",
    "ImagePin",
    "check_version",
    "known_versions",
    "load_catalog",
    "next_minor",
    "pins_for",
]

CATALOG_PATH = PACK_DATA_DIR / "cilium-images.json"

# The last 1.16 patch (January 2026). 1.16 is out of upstream support; the product still
# defaults to it as its users asked, and 1.17.18 is in the catalog as the reviewed next step.
DEFAULT_CHART_VERSION = "1.16.19"

# Every values path whose image a release of ours may deploy (policies/data/contract.json). A
# version missing any of them is incomplete: the release could not pin that component.
REQUIRED_IMAGES = IMAGE_SLOT_PATHS


_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImagePin:
    """One image of the catalog, as a values path and its pinned reference."""

    path: str
    repository: str
    tag: str
    digest: str

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"


@dataclass(frozen=True)
class CatalogProblem:
    version: str
    path: str
    problem: str


@cache
def load_catalog(path: Path = CATALOG_PATH) -> dict[str, dict[str, dict[str, object]]]:
    """Chart version -> values path -> image block, exactly as the chart's values.yaml has it."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["versions"]


def known_versions() -> list[str]:
    return sorted(load_catalog(), key=lambda v: tuple(int(p) for p in v.split(".")))


def next_minor(version: str) -> str | None:
    """The newest catalogued chart version of the first minor after ``version``'s (the upgrade
    target the summary suggests), or None when the catalog has no later minor yet."""

    def minor(v: str) -> tuple[int, int]:
        major, minor_, *_ = (int(p) for p in v.split("."))
        return major, minor_

    later = [v for v in known_versions() if minor(v) > minor(version)]
    if not later:
        return None
    first = min(minor(v) for v in later)
    return [v for v in later if minor(v) == first][-1]


def pins_for(version: str, cloud: str) -> dict[str, ImagePin]:
    """The pinned images of one chart version, the operator resolved to the cloud's variant."""
    pins: dict[str, ImagePin] = {}
    for path, block in load_catalog()[version].items():
        digest_key = OPERATOR_DIGEST_KEYS[cloud] if path == OPERATOR_IMAGE else "digest"
        repository = str(block["repository"])
        if path == OPERATOR_IMAGE:
            repository = f"{repository}-{'aws' if cloud == 'eks' else 'generic'}"
        pins[path] = ImagePin(path, repository, str(block["tag"]), str(block[digest_key]))
    return pins


def check_version(
    version: str, catalog: dict[str, dict[str, dict[str, object]]] | None = None
) -> list[CatalogProblem]:
    """Problems with one version's entries: missing images, malformed digests or tags."""
    catalog = load_catalog() if catalog is None else catalog
    if version not in catalog:
        return [CatalogProblem(version, "-", f"not in the catalog ({', '.join(known_versions())})")]
    entries = catalog[version]
    problems = [
        CatalogProblem(version, path, "missing") for path in REQUIRED_IMAGES if path not in entries
    ]
    for path, block in sorted(entries.items()):
        keys = list(OPERATOR_DIGEST_KEYS.values()) if path == OPERATOR_IMAGE else ["digest"]
        for key in keys:
            if not _DIGEST.match(str(block.get(key, ""))):
                problems.append(
                    CatalogProblem(
                        version, path, f"{key} {block.get(key)!r} is not sha256:<64 hex>"
                    )
                )
        if not block.get("repository") or not block.get("tag"):
            problems.append(CatalogProblem(version, path, "repository or tag missing"))
    return problems
