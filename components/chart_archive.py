"""A Cilium chart archive pinned by content: installed only if its sha256 is the catalog's.

By default the release pulls chart ``cilium`` at an exact version from https://helm.cilium.io.
An air-gapped install sets ``cilium.chartArchive`` instead, to either

- a local file ``.../cilium-<version>.tgz`` (relative to the repository root), or
- an OCI reference by manifest digest, ``oci://<registry>/<path>/cilium@sha256:<digest>``.
  ``uv run meshless chart pull`` fetches that manifest, checks that its chart layer is the
  catalog's archive and stores the bytes in a cache keyed by the manifest digest
  (infra/chart_pull.py); the plan and the release then both read that one file.

Either way the program hashes the file when the config is loaded and refuses any archive whose
sha256 is not the one recorded for that chart version in ``policies/data/cilium-charts.json``,
so what Helm installs is the published chart and nothing else.

Not managed here: chart signatures (Cilium publishes no provenance files for its charts).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from components.contract import PACK_DATA_DIR

__all__ = [
    "CACHE_ENV",
    "CHARTS_PATH",
    "PROJECT_ROOT",
    "OciChart",
    "archive_chart",
    "chart_digest",
    "check_archive",
    "parse_oci",
]

CHARTS_PATH = PACK_DATA_DIR / "cilium-charts.json"
# Relative archive paths are read from the project root, whatever the working directory
# (`pulumi up` runs the program from infra/, the `main` folder).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
CACHE_ENV = "MESHLESS_CHART_CACHE"

_OCI = re.compile(
    r"^oci://(?P<registry>[a-z0-9.-]+(?::\d+)?)/(?P<repository>[a-z0-9._/-]+)"
    r"(?::(?P<tag>[\w.-]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


@dataclass(frozen=True)
class OciChart:
    """``oci://registry/repository@sha256:...``: a chart in an OCI registry, by manifest."""

    registry: str
    repository: str
    digest: str

    @property
    def reference(self) -> str:
        return f"oci://{self.registry}/{self.repository}@{self.digest}"

    def cached(self, version: str) -> Path:
        """Where `meshless chart pull` stores the verified archive of this manifest."""
        root = Path(os.environ.get(CACHE_ENV) or PROJECT_ROOT / ".cache" / "charts")
        return root / self.digest.replace(":", "-") / f"cilium-{version}.tgz"


def parse_oci(reference: str) -> OciChart | str:
    """The parsed reference, or why it cannot be used (a message for the config error)."""
    match = _OCI.match(reference)
    if not match:
        return (
            f"{reference!r} is not an OCI reference oci://<registry>/<path>/cilium@sha256:<digest>"
        )
    if match["digest"] is None:
        return (
            f"{reference!r} names a tag, which the registry can move; reference the chart by "
            "its manifest digest: oci://<registry>/<path>/cilium@sha256:<digest> "
            "(`crane digest` prints it)"
        )
    if match["repository"].rsplit("/", 1)[-1] != "cilium":
        return f"{reference!r} must be a repository named cilium (the chart it holds)"
    return OciChart(match["registry"], match["repository"], match["digest"])


@cache
def _charts() -> dict[str, dict[str, str]]:
    return json.loads(CHARTS_PATH.read_text(encoding="utf-8"))["charts"]


def chart_digest(version: str) -> str | None:
    """``sha256:<hex>`` of the published archive of a chart version, None when unrecorded."""
    entry = _charts().get(version)
    return entry["digest"] if entry else None


def _local_file(source: str, version: str, root: Path) -> Path | str:
    """The file a chartArchive setting installs from, or why there is none."""
    if source.startswith("oci://"):
        parsed = parse_oci(source)
        if isinstance(parsed, str):
            return parsed
        cached = parsed.cached(version)
        if not cached.is_file():
            return (
                f"{source} has not been pulled on this machine; run `uv run meshless chart "
                "pull --stack <stack>` (it verifies the archive against the catalog)"
            )
        return cached
    if "://" in source:
        return (
            f"{source!r} is neither a local file nor an oci:// reference; for the chart "
            "repository (https://helm.cilium.io) leave chartArchive unset"
        )
    expected_name = f"cilium-{version}.tgz"
    if Path(source).name != expected_name:
        # The policy pack recognises a Cilium release by its chart name or archive file name.
        return f"{source!r} must be named {expected_name} (the chart and version it holds)"
    path = Path(source)
    return path if path.is_absolute() else root / path


def check_archive(source: str, version: str, root: Path = PROJECT_ROOT) -> str | None:
    """Why this archive may not be installed as chart ``version``; None when it may."""
    expected = chart_digest(version)
    if expected is None:
        return (
            f"Cilium chart {version} has no archive digest in {CHARTS_PATH.name}; add the "
            "published archive's sha256 in a reviewed change first"
        )
    file = _local_file(source, version, root)
    if isinstance(file, str):
        return file
    try:
        actual = "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError as exc:
        return f"cannot read {source!r} ({exc.strerror or exc}); fix the path (relative to the repository root)"
    if actual != expected:
        return (
            f"{source} has {actual} but the catalog records {expected} for Cilium chart "
            f"{version}; the archive is not the published chart. Download it again "
            f"(https://helm.cilium.io/cilium-{version}.tgz) and compare the digests"
        )
    return None


def archive_chart(source: str | None, version: str, root: Path = PROJECT_ROOT) -> str | None:
    """The absolute path Helm installs from, None when the chart repository is used."""
    if source is None:
        return None
    file = _local_file(source, version, root)
    if isinstance(file, str):  # check_archive refused it before any resource was declared
        raise ValueError(file)
    return str(file.resolve())
