"""Hold the deploy rehearsal's creation order against the order the engine really created
resources in, read from `pulumi up --event-log`.

The rehearsal (policies/rules/rehearsal.py) claims, for every resource, the set of resources
"the engine finishes before it starts" it (`Rehearsal.ancestors`); its creation phases are
built from that. In the event log a step starts with a `resourcePreEvent` and is finished
with a `resOutputsEvent`; each claim must hold there: every ancestor's outputs event comes
before the resource's pre event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.rehearsal import load_rehearsal

__all__ = ["read_events", "rehearsal_order_problems"]


def read_events(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """(URN -> sequence of its create step's start, URN -> sequence of its outputs)."""
    started: dict[str, int] = {}
    finished: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        for key, into in (("resourcePreEvent", started), ("resOutputsEvent", finished)):
            metadata = (event.get(key) or {}).get("metadata") or {}
            if metadata.get("op") == "create":
                into.setdefault(metadata["urn"], event["sequence"])
    return started, finished


def rehearsal_order_problems(
    resources: list[dict[str, Any]], started: dict[str, int], finished: dict[str, int]
) -> list[str]:
    """Every 'A is finished before B starts' of the rehearsal the engine did not keep."""
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
    rehearsal = module.Rehearsal(nodes)
    problems = []
    for node in nodes:
        if rehearsal.cluster_of(node.urn) is None or node.urn not in started:
            continue
        for before in sorted(rehearsal.ancestors(node.urn)):
            done = finished.get(before)
            if done is None or done > started[node.urn]:
                problems.append(
                    f"{node.urn}: started (event {started[node.urn]}) before {before} was "
                    f"created (event {done if done is not None else 'never'})"
                )
    return problems
