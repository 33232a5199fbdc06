"""The gate's input files: a ``pulumi stack export`` (or the plan's resources.json) and a policy
config file, read and shape-checked before the pack starts. Bad input is a GateInputError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.export_format import ExportError, StackExport, read_export
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


def load_export(path: Path) -> StackExport:
    """The resources of a ``pulumi stack export`` file (or the plan's resources.json), read by
    the one reader of that format (infra/export_format.py)."""
    try:
        return read_export(path)
    except ExportError as exc:
        raise GateInputError(str(exc)) from None


def load_policy_config(path: Path) -> dict[str, Any]:
    """A Pulumi policy config file: policy name -> level, or -> {enforcementLevel, props}."""
    data = read_json(path, "policy config")
    if not isinstance(data, dict):
        raise GateInputError(
            f'{path}: policy config must be an object like {{"policy-name": "mandatory"}}'
        )
    return data
