"""The gate's input files: a ``pulumi stack export`` (or the plan's resources.json) and a policy
config file, read and shape-checked before the pack starts. Bad input is a GateInputError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.gate.report import GateInputError

__all__ = ["load_export", "load_policy_config", "read_json"]


def read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateInputError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GateInputError(f"{path}: cannot read {what}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GateInputError(
            f"{path}: {what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _check_resource(index: int, res: Any) -> str | None:
    where = f"deployment.resources[{index}]"
    if not isinstance(res, dict):
        return f"{where} is not an object"
    for key in ("urn", "type"):
        if not isinstance(res.get(key), str) or not res[key]:
            return f"{where} has no {key!r} string"
    for key in ("inputs", "outputs"):
        if key in res and res[key] is not None and not isinstance(res[key], dict):
            return f"{where}.{key} is not an object"
    if not isinstance(res.get("dependencies", []) or [], list):
        return f"{where}.dependencies is not a list"
    return None


def load_export(path: Path) -> list[dict]:
    """The resources of a ``pulumi stack export`` file (or the plan's resources.json)."""
    data = read_json(path, "stack export")
    if not isinstance(data, dict) or not isinstance(data.get("deployment"), dict):
        raise GateInputError(
            f'{path}: not a stack export: expected {{"version": 3, "deployment": '
            '{"resources": [...]}} (the output of `pulumi stack export`)'
        )
    if data.get("version") != 3:
        raise GateInputError(
            f"{path}: stack export version is {data.get('version')!r}; only version 3 is read"
        )
    resources = data["deployment"].get("resources", [])
    if resources is None:
        resources = []
    if not isinstance(resources, list):
        raise GateInputError(f"{path}: deployment.resources is not a list")
    for index, res in enumerate(resources):
        problem = _check_resource(index, res)
        if problem:
            raise GateInputError(f"{path}: {problem}")
    return resources


def load_policy_config(path: Path) -> dict[str, Any]:
    """A Pulumi policy config file: policy name -> level, or -> {enforcementLevel, props}."""
    data = read_json(path, "policy config")
    if not isinstance(data, dict):
        raise GateInputError(
            f'{path}: policy config must be an object like {{"policy-name": "mandatory"}}'
        )
    return data
