"""The pack's list of chart values that become containers is complete, proven on the real chart.

policies/data/cilium-chart-paths.json is derived from each catalogued chart's templates by
infra/chart_paths.py. Here the real chart is rendered (`helm template`, no cluster) with every
listed image path and container list set to a unique marker and every component switched on:
every container image in the render must be one of the markers (nothing else reaches a pod)
and every marker must appear (nothing listed is dead). The chart archives are the vendored ones
(vendor/cilium-chart, sha256 in vendor/PROVENANCE.json); Helm is the pinned binary of
devtools/helm.py, as in tests/test_cilium.py.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.catalog import known_versions
from devtools.helm import template
from infra.chart_paths import DATA_FILE, derive

REPO = Path(__file__).resolve().parents[1]
CHARTS = REPO / "vendor" / "cilium-chart"

CONTAINER_KEYS = ("containers", "initContainers", "ephemeralContainers")


def _data() -> dict[str, Any]:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))["versions"]


def _set(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        values = values.setdefault(key, {})
    values[last] = value


def _images(obj: Any, found: list[str]) -> list[str]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in CONTAINER_KEYS and isinstance(value, list):
                found += [c.get("image", "") for c in value if isinstance(c, dict)]
            else:
                _images(value, found)
    elif isinstance(obj, list):
        for item in obj:
            _images(item, found)
    return found


def _everything_on(preflight: bool) -> dict[str, Any]:
    return {
        "kubeProxyReplacement": True,
        "k8sServiceHost": "10.0.0.2",
        "k8sServicePort": 443,
        "envoy": {"enabled": True},
        "nodeinit": {"enabled": True},
        "preflight": {"enabled": preflight},
        "hubble": {
            "relay": {"enabled": True},
            "ui": {"enabled": True},
            "tls": {"auto": {"method": "cronJob"}},
        },
        "clustermesh": {"useAPIServer": True},
        "authentication": {"mutual": {"spire": {"enabled": True, "install": {"enabled": True}}}},
    }


def _render(version: str, values: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    return template(CHARTS / f"cilium-{version}.tgz", values, tmp_path)


class TestDerivedPathsAreCurrent:
    """The data file is what the derivation reads from the archives today."""

    @pytest.mark.parametrize("version", known_versions())
    def test_data_matches_the_chart_templates(self, version: str) -> None:
        archive = CHARTS / f"cilium-{version}.tgz"
        assert _data()[version] == derive(archive), "rerun: python -m infra.chart_paths"

    @pytest.mark.parametrize("version", known_versions())
    def test_every_image_block_of_values_yaml_is_listed(self, version: str) -> None:
        with tarfile.open(CHARTS / f"cilium-{version}.tgz") as archive:
            handle = archive.extractfile("cilium/values.yaml")
            assert handle is not None
            defaults = yaml.safe_load(handle.read())
        blocks: list[str] = []

        def walk(node: Any, here: str) -> None:
            if isinstance(node, dict):
                if "repository" in node or "override" in node:
                    blocks.append(here)
                for key, value in node.items():
                    walk(value, f"{here}.{key}" if here else key)

        walk(defaults, "")
        assert blocks and set(blocks) <= set(_data()[version]["imagePaths"])


class TestRenderProvesCompleteness:
    """Rendering the real chart: every container image comes from a listed path, and every
    listed path reaches a container."""

    @pytest.mark.parametrize("version", known_versions())
    def test_markers_are_all_and_only_images_rendered(self, version: str, tmp_path) -> None:
        data = _data()[version]
        markers: dict[str, str] = {}
        seen: set[str] = set()
        # preflight mode renders a different agent set, so the chart is rendered both ways.
        for preflight in (False, True):
            values = _everything_on(preflight)
            for index, path in enumerate(data["imagePaths"]):
                marker = f"marker.example/image-{index}:v1"
                markers[marker] = path
                _set(values, path, {"override": marker})
            for index, path in enumerate(data["containerListPaths"]):
                marker = f"marker.example/list-{index}:v1"
                markers[marker] = path
                _set(values, path, [{"name": f"marker-{index}", "image": marker}])
            images = _images(_render(version, values, tmp_path), [])
            unaccounted = sorted({image for image in images if image not in markers})
            assert not unaccounted, f"chart {version} renders images from unlisted values"
            seen |= set(images)
        assert {markers[m] for m in markers if m not in seen} == set()
