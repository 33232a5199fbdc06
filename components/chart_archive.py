"""A Cilium chart archive pinned by content: installed only if its sha256 is the catalog's.

By default the release pulls chart ``cilium`` at an exact version from https://helm.cilium.io.
An air-gapped install points ``cilium.chartArchive`` at a local copy instead (pulled once,
e.g. ``helm pull oci://<registry>/cilium@sha256:<manifest digest>`` or from the chart
repository, and committed or shipped with the deployer). The program hashes the file when the
config is loaded and refuses any archive whose sha256 is not the one recorded for that chart
version in ``components/data/cilium-charts.json``; the release then installs exactly that file.

Not managed here: pulling the archive (no network during a plan), chart signatures (Cilium does
not publish provenance files for its charts).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

__all__ = ["CHARTS_PATH", "PROJECT_ROOT", "archive_chart", "chart_digest", "check_archive"]

CHARTS_PATH = Path(__file__).with_name("data") / "cilium-charts.json"
# Relative archive paths are read from the project root, whatever the working directory
# (`pulumi up` runs the program from infra/, the `main` folder).
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@cache
def _charts() -> dict[str, dict[str, str]]:
    return json.loads(CHARTS_PATH.read_text(encoding="utf-8"))["charts"]


def chart_digest(version: str) -> str | None:
    """``sha256:<hex>`` of the published archive of a chart version, None when unrecorded."""
    entry = _charts().get(version)
    return entry["digest"] if entry else None


def _resolve(path: str, root: Path) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else root / candidate


def check_archive(path: str, version: str, root: Path = PROJECT_ROOT) -> str | None:
    """Why this archive may not be installed as chart ``version``; None when it may."""
    expected_name = f"cilium-{version}.tgz"
    if Path(path).name != expected_name:
        # The policy pack recognises a Cilium release by its chart name or archive file name.
        return f"{path!r} must be named {expected_name} (the chart and version it holds)"
    expected = chart_digest(version)
    if expected is None:
        return (
            f"Cilium chart {version} has no archive digest in {CHARTS_PATH.name}; add the "
            "published archive's sha256 in a reviewed change first"
        )
    file = _resolve(path, root)
    try:
        actual = "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError as exc:
        return f"cannot read {path!r} ({exc.strerror or exc}); fix the path (relative to the repository root)"
    if actual != expected:
        return (
            f"{path} has {actual} but the catalog records {expected} for Cilium chart "
            f"{version}; the archive is not the published chart. Download it again "
            f"(https://helm.cilium.io/{expected_name}) and compare the digests"
        )
    return None


def archive_chart(path: str | None, root: Path = PROJECT_ROOT) -> str | None:
    """The absolute path Helm installs from, None when the chart repository is used."""
    return str(_resolve(path, root).resolve()) if path else None
