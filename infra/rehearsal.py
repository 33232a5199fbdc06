"""The deploy rehearsal for the offline plan's summary: the policy pack's own module, loaded
from policies/rules/rehearsal.py (stdlib only), so the phases in summary.md come from the same
model that gates the plan. The pack is published alone and cannot import the program; the
program loads the pack's file instead of copying it."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["creation_phases", "load_rehearsal", "rehearsal_of"]

_FILE = Path(__file__).resolve().parents[1] / "policies" / "rules" / "rehearsal.py"
_NAME = "meshless_rehearsal"


@cache
def load_rehearsal() -> ModuleType:
    spec = importlib.util.spec_from_file_location(_NAME, _FILE)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with the repo
        raise ImportError(f"cannot load {_FILE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def rehearsal_of(resources: list[dict[str, Any]]) -> Any:
    """The pack's Rehearsal over a plan's or export's resources (stack-export shape)."""
    module = load_rehearsal()
    nodes = [
        module.Node(
            urn=r["urn"],
            type=r["type"],
            name=r["urn"].rsplit("::", 1)[-1],
            props=r.get("inputs") or {},
            provider=r["provider"].rsplit("::", 1)[0] if r.get("provider") else None,
            dependencies=tuple(r.get("dependencies") or ()),
        )
        for r in resources
    ]
    return module.Rehearsal(nodes)


def creation_phases(resources: list[dict[str, Any]]) -> dict[str, list[list[str]]]:
    """Per cluster, the creation phases of a plan's resources (stack-export shape)."""
    return rehearsal_of(resources).phases()
