"""The plan against a base plan (`meshless plan --compare <dir>`): what the summary shows of it.

The resource and finding diff (infra/diff.py), the base plan's export for the call graph's
added and removed arrows, and the rendered objects' diff (infra/objdiff.py). A base that cannot
be read is not an error of this plan: the summary says why there is no comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.export_format import StackExport

__all__ = ["Comparison", "compare_with"]


@dataclass
class Comparison:
    """The plan against a base plan: resources, rendered objects, or why not."""

    diff: Any = None
    error: str | None = None
    base: StackExport | None = None
    objects_markdown: str = ""


def compare_with(
    base_dir: Path | None, head: Any, head_dir: Path, base_export: StackExport | None = None
) -> Comparison:
    """``head`` (infra.diff.Plan, the plan being written into ``head_dir``) against the plan
    in ``base_dir``, which is read once; ``base_export``: its resources.json, when the caller
    has read it already (the plan does, for the upgrade checks)."""
    from infra.diff import DiffInputError, diff_plans, load_plan
    from infra.objdiff import diff_rendered, objects_markdown

    if base_dir is None:
        return Comparison()
    try:
        base = load_plan(base_dir, "base", base_export)
        return Comparison(
            diff=diff_plans(base, head),
            base=base.export,
            objects_markdown=objects_markdown(diff_rendered(base_dir, head_dir)),
        )
    except DiffInputError as exc:
        return Comparison(error=str(exc))
