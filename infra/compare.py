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


def compare_with(base_dir: Path | None, target: Path) -> Comparison:
    from infra.diff import DiffInputError, compare_plans, load_plan
    from infra.objdiff import diff_rendered, objects_markdown

    if base_dir is None:
        return Comparison()
    try:
        return Comparison(
            diff=compare_plans(base_dir, target),
            base=load_plan(base_dir, "base").export,
            objects_markdown=objects_markdown(diff_rendered(base_dir, target)),
        )
    except DiffInputError as exc:
        return Comparison(error=str(exc))
