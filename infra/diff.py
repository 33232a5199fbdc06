"""Compare two offline plans: what a pull request adds, removes and changes.

`compare_plans(base_dir, head_dir)` reads `resources.json` and `policy-report.json` from two
`out/<stack>/` directories (the base branch's plan and the pull request's plan) and returns a
`PlanDiff`: URNs added and removed, and for each resource present in both the input paths whose
values differ (`values.hubble.relay.enabled`, `spec.ingress[0].toPorts[0].rules.http[1].path`),
plus the policy violations the change introduces or resolves.

Pure functions over data: no Pulumi runtime, no CLI. Secret values (Pulumi's signed secret
envelope, or the `[secret]` placeholder of a redacted export) are compared but never printed;
they show as `[secret]`. Only `inputs` are compared: outputs and ids come from mocks offline
and would only add noise.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.export_format import (
    REDACTED,
    UNKNOWN_SENTINEL,
    ExportError,
    StackExport,
    is_secret_envelope,
    read_export,
)
from infra.render import md_code, md_text, split_finding

__all__ = [
    "SECRET_MARKER",
    "DiffInputError",
    "PlanDiff",
    "ResourceChange",
    "Violation",
    "compare_plans",
    "diff_inputs",
    "diff_plans",
    "load_plan",
    "plan_in_memory",
]

#: What a secret looks like in a redacted export, and how the diff displays any secret.
SECRET_MARKER = REDACTED

RESOURCES_FILE = "resources.json"
POLICY_REPORT_FILE = "policy-report.json"

# A GitHub comment holds at most 65,536 characters; these caps keep one stack's diff well
# inside that next to the rest of the summary.
_MAX_ROWS = 150
_MAX_PATHS_PER_RESOURCE = 8
_MAX_VALUE_CHARS = 60
_COLLAPSE_OVER = 10

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_MISSING = object()


class DiffInputError(Exception):
    """A plan directory or one of its files is missing or unreadable."""


@dataclass(frozen=True, order=True)
class Violation:
    """One policy violation; identity is policy + URN + message (enforcement may be retuned)."""

    policy: str
    urn: str
    message: str
    enforcement: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.policy, self.urn, self.message)


@dataclass(frozen=True)
class ResourceChange:
    """A resource present in both plans whose inputs differ.

    `paths` lists the changed input paths. `values` maps the paths whose both sides are
    scalars to a display pair (before, after), already redacted and shortened.
    """

    urn: str
    type: str
    paths: list[str]
    values: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """The parts of one `out/<stack>/` directory the diff needs."""

    export: StackExport
    violations: list[Violation]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.export.by_urn


@dataclass
class PlanDiff:
    """What changes between a base plan and a head plan."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[ResourceChange] = field(default_factory=list)
    new_violations: list[Violation] = field(default_factory=list)
    resolved_violations: list[Violation] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.changed
            or self.new_violations
            or self.resolved_violations
        )

    def verdict(self) -> str:
        """One line: the counts a reviewer reads first."""
        if self.is_empty:
            return "No changes against the base plan."
        parts = [
            f"{len(self.added)} to add",
            f"{len(self.changed)} to change",
            f"{len(self.removed)} to remove",
        ]
        line = ", ".join(parts)
        if self.new_violations or self.resolved_violations:
            line += (
                f"; {len(self.new_violations)} new policy violation"
                f"{'' if len(self.new_violations) == 1 else 's'},"
                f" {len(self.resolved_violations)} resolved"
            )
        return line + "."

    def to_markdown(
        self, title: str | None = "Changes against the base branch", *, violations: bool = True
    ) -> str:
        """GitHub-flavoured Markdown: verdict first, long lists collapsed.

        `title=None` leaves the heading to the caller (the summary has its own);
        `violations=False` leaves the new and resolved findings to the caller too (the summary
        lists every finding once, marking the new and striking the resolved).
        """
        out = [f"### {title}", ""] if title else []
        out.append(f"**{self.verdict()}**")
        if self.is_empty:
            return "\n".join(out) + "\n"
        if violations and self.new_violations:
            out += _section(
                f"New policy violations ({len(self.new_violations)})",
                _violation_table(self.new_violations),
                len(self.new_violations),
            )
        if violations and self.resolved_violations:
            out += _section(
                f"Resolved policy violations ({len(self.resolved_violations)})",
                _violation_table(self.resolved_violations),
                len(self.resolved_violations),
            )
        if self.added:
            out += _section(
                f"Added ({len(self.added)})",
                _urn_table(self.added, self.types),
                len(self.added),
            )
        if self.removed:
            out += _section(
                f"Removed ({len(self.removed)})",
                _urn_table(self.removed, self.types),
                len(self.removed),
            )
        if self.changed:
            out += _section(
                f"Changed ({len(self.changed)})",
                _change_table(self.changed),
                len(self.changed),
            )
        return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- loading


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise DiffInputError(f"{what}: {path} does not exist (run `make plan` for that tree first)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DiffInputError(f"{what}: {path} is not readable JSON: {exc}") from exc


def plan_in_memory(export: StackExport, report: Any, path: Path) -> Plan:
    """The plan just written to ``path`` from what its writer still holds (no re-read)."""
    return Plan(export=export, violations=_violations(report, path / POLICY_REPORT_FILE))


def _violations(doc: Any, path: Path) -> list[Violation]:
    items = doc.get("violations") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise DiffInputError(f"{path}: expected an object with a `violations` list")
    return [
        Violation(
            policy=str(v.get("policy", "")),
            urn=str(v.get("urn") or ""),
            message=str(v.get("message", "")),
            enforcement=str(v.get("enforcement", "")),
        )
        for v in items
        if isinstance(v, dict)
    ]


def load_plan(plan_dir: Path, label: str = "plan", export: StackExport | None = None) -> Plan:
    """Read one plan output directory; raise `DiffInputError` naming what is missing.
    ``export``: its resources.json, already read by the caller (not read again)."""
    plan_dir = Path(plan_dir)
    if plan_dir.is_file():
        raise DiffInputError(
            f"{label} plan {plan_dir} is a file; give the plan's folder (out/<stack>, which "
            "holds resources.json and policy-report.json)"
        )
    if not plan_dir.is_dir():
        raise DiffInputError(
            f"{label} plan directory {plan_dir} does not exist "
            "(run `make plan STACK=<stack>` on that tree first)"
        )
    res_path = plan_dir / RESOURCES_FILE
    rep_path = plan_dir / POLICY_REPORT_FILE
    if not res_path.is_file():
        raise DiffInputError(
            f"{label} plan: {res_path} does not exist (run `make plan` for that tree first)"
        )
    if export is None:
        try:
            export = read_export(res_path, f"{label} plan")
        except ExportError as exc:
            raise DiffInputError(str(exc)) from None
    violations = _violations(_read_json(rep_path, f"{label} plan"), rep_path)
    return Plan(export=export, violations=violations)


# --------------------------------------------------------------------------- comparing


def _is_secret(value: Any) -> bool:
    if value == SECRET_MARKER:
        return True
    return is_secret_envelope(value)


def _secret_identity(value: Any) -> tuple[Any, ...]:
    """What two secrets are compared by: the plaintext when the state carries it.

    A redacted `[secret]` and an encrypted envelope (`ciphertext`, re-encrypted with a fresh
    nonce on every export) carry nothing comparable, so two of them count as equal.
    """
    if isinstance(value, dict) and "plaintext" in value:
        return ("plaintext", value["plaintext"])
    return ("opaque",)


def _key_path(prefix: str, key: str) -> str:
    if _IDENT.match(key):
        return f"{prefix}.{key}" if prefix else key
    return f"{prefix}[{json.dumps(key)}]"


def _walk(before: Any, after: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """Yield (path, before, after) for every leaf that differs; `_MISSING` for absent."""
    b_secret, a_secret = _is_secret(before), _is_secret(after)
    if b_secret or a_secret:
        if not (b_secret and a_secret and _secret_identity(before) == _secret_identity(after)):
            yield path, before, after
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            yield from _walk(
                before.get(key, _MISSING), after.get(key, _MISSING), _key_path(path, str(key))
            )
        return
    if isinstance(before, list) and isinstance(after, list):
        for i in range(max(len(before), len(after))):
            b = before[i] if i < len(before) else _MISSING
            a = after[i] if i < len(after) else _MISSING
            yield from _walk(b, a, f"{path}[{i}]")
        return
    if _is_number(before) and _is_number(after):
        # JSON has one number type; the engine's wire format turns every int into a double.
        if before != after:
            yield path, before, after
        return
    if before != after or type(before) is not type(after):
        yield path, before, after


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _display(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    if _is_secret(value):
        return SECRET_MARKER
    if value == UNKNOWN_SENTINEL:
        return "(unknown)"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = json.dumps(_redact(value), sort_keys=True)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 1] + "…"
    return text


def _redact(value: Any) -> Any:
    """A copy of `value` with every secret replaced by the marker."""
    if _is_secret(value):
        return SECRET_MARKER
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def diff_inputs(before: dict[str, Any], after: dict[str, Any]) -> ResourceChange | None:
    """The change between two state entries of one URN, or None if their inputs agree."""
    paths: list[str] = []
    values: dict[str, tuple[str, str]] = {}
    for path, b, a in _walk(before.get("inputs") or {}, after.get("inputs") or {}, ""):
        paths.append(path)
        values[path] = (_display(b), _display(a))
    if not paths:
        return None
    return ResourceChange(
        urn=after["urn"], type=str(after.get("type", "")), paths=paths, values=values
    )


def compare_plans(base_dir: Path, head_dir: Path) -> PlanDiff:
    """Compare the plan in `head_dir` against the one in `base_dir`."""
    return diff_plans(load_plan(Path(base_dir), "base"), load_plan(Path(head_dir), "head"))


def diff_plans(base: Plan, head: Plan) -> PlanDiff:
    """What changes from ``base`` to ``head`` (both already read)."""
    types = {urn: str(r.get("type", "")) for urn, r in {**base.resources, **head.resources}.items()}
    changed = [
        change
        for urn in sorted(base.resources.keys() & head.resources.keys())
        if (change := diff_inputs(base.resources[urn], head.resources[urn])) is not None
    ]
    base_v = {v.key: v for v in base.violations}
    head_v = {v.key: v for v in head.violations}
    return PlanDiff(
        added=sorted(head.resources.keys() - base.resources.keys()),
        removed=sorted(base.resources.keys() - head.resources.keys()),
        changed=changed,
        new_violations=sorted(head_v[k] for k in head_v.keys() - base_v.keys()),
        resolved_violations=sorted(base_v[k] for k in base_v.keys() - head_v.keys()),
        types=types,
    )


# --------------------------------------------------------------------------- markdown


def _cell(text: str) -> str:
    """Prose inside a Markdown table cell or <summary> (infra/render.py)."""
    return md_text(text)


def _code(text: str) -> str:
    """A value as a Markdown code span: verbatim, never entity-escaped (infra/render.py)."""
    return md_code(text)


def resource_name(urn: str) -> str:
    """The last URN segment: the resource's logical name."""
    return urn.rsplit("::", 1)[-1]


def _short_type(type_token: str) -> str:
    return type_token or "?"


def _capped(rows: list[str], total: int) -> list[str]:
    if total > _MAX_ROWS:
        return [*rows[:_MAX_ROWS], f"\n_…and {total - _MAX_ROWS} more not shown._"]
    return rows


def _urn_table(urns: list[str], types: dict[str, str]) -> list[str]:
    rows = ["| Resource | Type |", "| --- | --- |"]
    rows += [
        f"| {_code(resource_name(u))} | {_code(_short_type(types.get(u, '')))} |"
        for u in urns[:_MAX_ROWS]
    ]
    return _capped(rows, len(urns))


def _change_cell(change: ResourceChange) -> str:
    shown = []
    for path in change.paths[:_MAX_PATHS_PER_RESOURCE]:
        before, after = change.values.get(path, ("", ""))
        shown.append(f"{_code(path)}: {_code(before)} → {_code(after)}")
    rest = len(change.paths) - len(shown)
    if rest > 0:
        shown.append(f"…and {rest} more")
    return "<br>".join(shown)


def _change_table(changes: list[ResourceChange]) -> list[str]:
    rows = ["| Resource | Type | Changed inputs |", "| --- | --- | --- |"]
    rows += [
        f"| {_code(resource_name(c.urn))} | {_code(_short_type(c.type))} | {_change_cell(c)} |"
        for c in changes[:_MAX_ROWS]
    ]
    return _capped(rows, len(changes))


def _violation_table(violations: list[Violation]) -> list[str]:
    rows = [
        "| Policy | Enforcement | Resource | Message | Fix |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows += [
        f"| {_code(v.policy)} | {_cell(v.enforcement)} | "
        f"{_code(resource_name(v.urn)) if v.urn else '(stack)'} | "
        f"{md_text(split_finding(v.message, v.urn).message)} | "
        f"{md_text(split_finding(v.message, v.urn).fix or '')} |"
        for v in violations[:_MAX_ROWS]
    ]
    return _capped(rows, len(violations))


def _section(heading: str, body: list[str], count: int) -> list[str]:
    if count > _COLLAPSE_OVER:
        return [
            "",
            "<details>",
            f"<summary>{html.escape(heading)}</summary>",
            "",
            *body,
            "",
            "</details>",
        ]
    return ["", f"#### {heading}", "", *body]
