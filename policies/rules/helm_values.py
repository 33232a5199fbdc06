"""The values a Helm release really installs with, and which of them become containers.

A release takes values from two places: ``valueYamlFiles`` (assets) and ``values``. Helm
deep-merges them in order, later files over earlier ones and ``values`` over all files; a
``null`` deletes a key (helm/helm#1620; pulumi-kubernetes#2958 is the bug report about Pulumi
doing it differently, since fixed). A policy that reads only ``values`` would pass an unpinned
image given in a file, so every Cilium policy reads ``effective_values``. A file the pack cannot
read (a path on the deployer's disk, a remote URL) makes the values unknown: fail closed.

Which paths become containers is derived from the chart's own templates for each catalogued
version (``data/cilium-chart-paths.json``, written by infra/chart_paths.py and proven complete
by rendering the real chart in tests/policies/test_chart_paths.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

from pulumi_policy import proxy as _proxy

from ._values import MISSING, is_unknown

__all__ = [
    "UNREADABLE_VALUES",
    "chart_paths",
    "container_lists",
    "effective_values",
    "values_problem",
]

_DATA: Final = Path(__file__).resolve().parent.parent / "data" / "cilium-chart-paths.json"
# Reported as "unknown": an unreadable values file hides every key, like a computed value.
UNREADABLE_VALUES: Final = _proxy.UNKNOWN_OBJECT_VALUE


@cache
def _chart_data() -> dict[str, dict[str, list[str]]]:
    try:
        data = json.loads(_DATA.read_text(encoding="utf-8"))
        versions = data["versions"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return versions if isinstance(versions, dict) else {}


def chart_paths(version: Any, kind: str) -> list[str]:
    """The chart's ``imagePaths`` or ``containerListPaths`` for a version; for a version the
    data does not know, the union over all versions (a wider check, never a narrower one)."""
    data = _chart_data()
    if isinstance(version, str) and version in data:
        return list(data[version].get(kind, []))
    return sorted({path for entry in data.values() for path in entry.get(kind, [])})


def _asset_text(asset: Any) -> str | None:
    """The text of a StringAsset; None for file and remote assets (not readable here)."""
    text = getattr(asset, "text", None)
    if isinstance(text, str):
        return text
    if isinstance(asset, Mapping) and isinstance(asset.get("text"), str):
        return str(asset["text"])
    return None


def _merge(base: Any, top: Any) -> Any:
    """Helm's coalesce of two values trees: maps merge key by key, anything else replaces,
    and a null in ``top`` deletes the key."""
    if not isinstance(base, dict) or not isinstance(top, dict):
        return top
    merged = dict(base)
    for key, value in top.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key, MISSING), value)
    return merged


def _file_values(files: Any) -> tuple[dict[str, Any], str | None]:
    if files is MISSING or files is None:
        return {}, None
    if is_unknown(files) or not isinstance(files, list):
        return {}, "valueYamlFiles is unknown"
    import yaml  # the pack's requirements carry PyYAML through pulumi

    merged: dict[str, Any] = {}
    for index, asset in enumerate(files):
        text = _asset_text(asset)
        if text is None:
            kind = "a file on the deployer's disk" if getattr(asset, "path", None) else "remote"
            return merged, (
                f"valueYamlFiles[{index}] is {kind}, which the policy pack cannot read, so "
                "the chart values cannot be checked. Put those values in `values` (or a "
                "StringAsset)"
            )
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            return merged, f"valueYamlFiles[{index}] is not valid YAML ({exc})"
        if loaded is None:
            continue
        if not isinstance(loaded, dict):
            return merged, f"valueYamlFiles[{index}] is not a YAML mapping of values"
        merged = _merge(merged, loaded)
    return merged, None


def values_problem(props: Mapping[str, Any]) -> str | None:
    """Why the release's effective values cannot be read, or None."""
    return _file_values(props.get("valueYamlFiles", MISSING))[1]


def effective_values(props: Mapping[str, Any]) -> Any:
    """``valueYamlFiles`` merged under ``values`` as Helm merges them. The unknown sentinel
    when a file cannot be read; ``values`` itself when it is not an object."""
    from_files, problem = _file_values(props.get("valueYamlFiles", MISSING))
    if problem:
        return UNREADABLE_VALUES
    values = props.get("values", MISSING)
    if not from_files:
        return values
    if values is MISSING or values is None:
        return from_files
    if not isinstance(values, dict):
        return values
    return _merge(from_files, values)


def container_lists(values: Any, version: Any) -> Iterator[tuple[str, Any]]:
    """(path, value) of every list of whole containers the chart copies into a pod spec: the
    paths the chart templates read, plus any ``*Containers`` key anywhere in the values (a
    newer chart may read one the data does not list yet)."""
    seen: set[str] = set()
    for path in chart_paths(version, "containerListPaths"):
        current = values
        for key in path.split("."):
            current = current.get(key, MISSING) if isinstance(current, dict) else MISSING
        if current is not MISSING:
            seen.add(path)
            yield path, current
    yield from (
        (path, value) for path, value in _named_container_lists(values, "") if path not in seen
    )


def _named_container_lists(values: Any, here: str) -> Iterator[tuple[str, Any]]:
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        path = f"{here}{key}"
        if str(key).lower().endswith("containers"):
            yield path, value
        elif isinstance(value, dict):
            yield from _named_container_lists(value, path + ".")
