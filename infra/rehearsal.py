"""The deploy rehearsal for the offline plan's summary: the policy pack's own module
(policies/rules/rehearsal.py, loaded by components.pack_rules), so the phases in summary.md come
from the same model that gates the plan."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from components.pack_rules import load_pack_module

__all__ = ["creation_phases", "load_rehearsal", "rehearsal_of"]


def load_rehearsal() -> ModuleType:
    return load_pack_module("rehearsal")


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
