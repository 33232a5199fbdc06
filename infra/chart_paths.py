"""Which chart values become container images, derived from the Cilium chart's own templates.

The policy pack must judge every value the chart turns into a container: an image block
(``include "cilium.image" .Values.<path>``, the operator's own helper, or a SPIRE image given as
a plain string) and every list of whole containers the chart copies into a pod spec
(``toYaml .Values.extraContainers`` and its siblings). Writing that list by hand is how a slot
gets missed, so this module reads it out of the chart archives and writes
``policies/data/cilium-chart-paths.json`` (inside the pack: the pack is published alone).
tests/policies/test_chart_paths.py renders the real chart with every one of these values set to
a marker and proves that nothing else reaches a container.

``uv run python -m infra.chart_paths vendor/cilium-chart`` rewrites the file from the vendored
chart archives.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

__all__ = ["DATA_FILE", "derive", "derive_all", "main"]

DATA_FILE = Path(__file__).resolve().parent.parent / "policies" / "data" / "cilium-chart-paths.json"

# An image helper call or a typeOf test of an image value given as a string (SPIRE).
_IMAGE_REFS = (
    re.compile(r'include\s+"cilium\.image"\s+\(?\s*\.Values\.([A-Za-z0-9_.]+)'),
    re.compile(r'typeOf\s+\.Values\.([A-Za-z0-9_.]+)\s*\)\s*"string"'),
    # Helpers that assemble an image from repository/tag themselves (the operator's).
    re.compile(r"\.Values\.([A-Za-z0-9_.]+)\.repository\b"),
)
# Whole container objects copied into a pod spec from values.
_CONTAINER_LISTS = re.compile(r"\.Values\.([A-Za-z0-9_.]*[cC]ontainers)\b")


def derive(archive: Path) -> dict[str, Any]:
    """Image paths and container-list paths a chart archive's templates read."""
    images: set[str] = set()
    containers: set[str] = set()
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if not member.isfile() or "/templates/" not in member.name:
                continue
            handle = tar.extractfile(member)
            text = handle.read().decode("utf-8", "replace") if handle else ""
            for pattern in _IMAGE_REFS:
                images.update(pattern.findall(text))
            containers.update(_CONTAINER_LISTS.findall(text))
    return {
        "source": archive.name,
        "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
        "imagePaths": sorted(images),
        "containerListPaths": sorted(containers),
    }


def derive_all(chart_dir: Path) -> dict[str, Any]:
    versions = {}
    for archive in sorted(chart_dir.glob("cilium-*.tgz")):
        version = archive.name.removeprefix("cilium-").removesuffix(".tgz")
        versions[version] = derive(archive)
    return {
        "about": (
            "Values paths the Cilium chart renders into containers, per chart version; "
            "derived from the chart templates by infra/chart_paths.py, do not edit by hand"
        ),
        "versions": versions,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m infra.chart_paths <folder with cilium-<version>.tgz>")
        return 2
    data = derive_all(Path(argv[0]))
    if not data["versions"]:
        print(f"{argv[0]}: no cilium-<version>.tgz archive found")
        return 2
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    DATA_FILE.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {DATA_FILE} ({', '.join(data['versions'])})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
