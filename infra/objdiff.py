"""Object-level diff of rendered Helm releases between two plans.

Reads the rendered objects the plans wrote (manifests/<cluster>/<release>/*.yaml, see
infra/chart_render.py) and lists, per release, the objects added, removed and changed, with the changed
fields. Field-level changes reuse the resource diff (infra.diff.diff_inputs). A Secret's values
never appear: its changed keys are listed with "[secret]" on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from infra.diff import ResourceChange, diff_inputs

__all__ = ["ReleaseObjectDiff", "diff_rendered", "load_rendered", "objects_markdown"]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FOLD_AT = 10  # rows after which a release's list is collapsed
_MAX_FIELDS = 6


@dataclass
class ReleaseObjectDiff:
    release: str  # <cluster>/<release>
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[ResourceChange] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('namespace') or '-'}/{meta.get('name')}"


def load_rendered(plan_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """<cluster>/<release> -> object key -> object, from a plan's manifests/ folder."""
    releases: dict[str, dict[str, dict[str, Any]]] = {}
    manifests = plan_dir / "manifests"
    if not manifests.is_dir():
        return releases
    for folder in sorted(p for p in manifests.glob("*/*") if p.is_dir()):
        objects = {}
        for path in sorted(folder.glob("*.yaml")):
            obj = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
            if isinstance(obj, dict):
                objects[_key(obj)] = obj
        releases[folder.relative_to(manifests).as_posix()] = objects
    return releases


def _change(key: str, before: dict[str, Any], after: dict[str, Any]) -> ResourceChange | None:
    change = diff_inputs(
        {"urn": key, "inputs": before},
        {"urn": key, "type": str(after.get("kind")), "inputs": after},
    )
    if change is not None and after.get("kind") == "Secret":
        # ResourceChange is frozen: assigning raised FrozenInstanceError on any Secret change.
        change = replace(change, values={path: ("[secret]", "[secret]") for path in change.paths})
    return change


def diff_rendered(base_dir: Path, head_dir: Path) -> list[ReleaseObjectDiff]:
    """Per release present in either plan, what its rendered objects gain, lose and change."""
    base, head = load_rendered(base_dir), load_rendered(head_dir)
    diffs = []
    for release in sorted(set(base) | set(head)):
        before, after = base.get(release, {}), head.get(release, {})
        diff = ReleaseObjectDiff(
            release,
            added=sorted(set(after) - set(before)),
            removed=sorted(set(before) - set(after)),
        )
        for key in sorted(set(before) & set(after)):
            change = _change(key, before[key], after[key])
            if change is not None:
                diff.changed.append(change)
        if not diff.is_empty:
            diffs.append(diff)
    return diffs


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    escaped = text.replace("|", "\\|")  # a pipe would end the table cell
    return f"{fence}{escaped}{fence}"


def _rows(diff: ReleaseObjectDiff) -> list[str]:
    rows = ["| change | object | fields |", "| --- | --- | --- |"]
    rows += [f"| added | {_code(k)} | |" for k in diff.added]
    rows += [f"| removed | {_code(k)} | |" for k in diff.removed]
    for change in diff.changed:
        shown = change.paths[:_MAX_FIELDS]
        fields = "<br>".join(
            f"{_code(p)}: {_code(change.values[p][0])} → {_code(change.values[p][1])}"
            for p in shown
        )
        if len(change.paths) > _MAX_FIELDS:
            fields += f"<br>… and {len(change.paths) - _MAX_FIELDS} more"
        rows.append(f"| changed | {_code(change.urn)} | {fields} |")
    return rows


def objects_markdown(diffs: list[ReleaseObjectDiff]) -> str:
    """The object diff for the summary: one table per release, collapsed when long."""
    if not diffs:
        return "**Rendered objects:** no change in any Cilium release.\n"
    out = ["#### Rendered objects (what Helm will change)", ""]
    for diff in diffs:
        counts = (
            f"{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed"
        )
        rows = _rows(diff)
        if len(rows) - 2 > _FOLD_AT:
            out += [f"<details><summary><code>{diff.release}</code>: {counts}</summary>", ""]
            out += [*rows, "", "</details>", ""]
        else:
            out += [f"**`{diff.release}`**: {counts}", "", *rows, ""]
    return "\n".join(out)
