"""Cilium upgrade rules, checked wherever a plan knows both the running and the next version.

From the Cilium upgrade guide (docs.cilium.io, "Upgrade Guide"):
- patch releases of one minor upgrade freely;
- a minor upgrade goes one minor at a time (1.16 -> 1.17, never 1.16 -> 1.18), with the chart
  value ``upgradeCompatibility`` set to the minor being replaced, so the new chart keeps the old
  defaults where they changed ("Step 2: Use Helm to Upgrade your Cilium deployment");
- the pre-flight check (a ``preflight.enabled`` release that pre-pulls the new images) runs
  first, see the README.
A downgrade is refused unless the cluster's ``cilium.downgradeReason`` says why. The upstream
notes that apply to our values are derived from the two versions' vendored values.yaml: keys we
set that the target removed (an error: the program must migrate them), and defaults we inherit
that the target removed or changed (listed for the reviewer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml

from infra.export_format import HELM_RELEASE, StackExport
from infra.program import REPO_ROOT

__all__ = ["UpgradeStep", "upgrade_steps", "upgrades_markdown"]

VALUES_DIR = REPO_ROOT / "vendor" / "cilium-chart"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_IMAGE_KEYS = ("digest", "Digest", "tag", "useDigest", "repository")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def _version(text: str) -> tuple[int, int, int]:
    major, minor, patch = (int(p) for p in text.split("."))
    return major, minor, patch


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


@cache
def _defaults(version: str) -> dict[str, Any]:
    path = VALUES_DIR / f"values-{version}.yaml"
    if not path.is_file():
        return {}
    return _flat(yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER))


@dataclass
class UpgradeStep:
    """One release's move between the base plan and this one."""

    release: str  # the release's logical name (URN's last part)
    base: str
    head: str
    values: dict[str, Any]
    downgrade_reason: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        base, head = _version(self.base), _version(self.head)
        if head == base:
            return "same"
        if head < base:
            return "downgrade"
        if head[:2] == base[:2]:
            return "patch"
        return "minor" if (head[0], head[1] - 1) == base[:2] else "skip"

    def check(self) -> UpgradeStep:
        kind = self.kind
        base_minor = ".".join(self.base.split(".")[:2])
        where = f"release {self.release}: Cilium {self.base} -> {self.head}"
        if kind == "skip":
            self.problems.append(
                f"{where} skips a minor version; Cilium upgrades one minor at a time. Move to "
                f"the latest {_version(self.base)[0]}.{_version(self.base)[1] + 1} patch first"
            )
        elif kind == "downgrade" and not self.downgrade_reason:
            self.problems.append(
                f"{where} is a downgrade. A rollback to an older Cilium needs its own review: "
                "set cilium.downgradeReason in the stack file to say why, or keep the version"
            )
        elif kind == "minor":
            if self.values.get("upgradeCompatibility") != base_minor:
                self.problems.append(
                    f"{where} is a minor upgrade: set cilium.upgradeCompatibility: "
                    f'"{base_minor}" so the new chart keeps the defaults the running Cilium '
                    "was installed with (Cilium upgrade guide)"
                )
            self._derive_notes()
        return self

    def _derive_notes(self) -> None:
        before, after = _defaults(self.base), _defaults(self.head)
        if not before or not after:
            self.problems.append(
                f"release {self.release}: no vendored values.yaml for {self.base} or "
                f"{self.head} to check the upgrade against; vendor both chart versions"
            )
            return
        ours = _flat(self.values)
        for path in sorted(ours):
            if path in before and path not in after:
                self.problems.append(
                    f"release {self.release}: value {path} is set but Cilium {self.head} no "
                    "longer has it; migrate it in components/cilium/values.py"
                )
        for path in sorted(before):
            if any(k in path for k in _IMAGE_KEYS) or path in ours:
                continue
            if path not in after:
                self.notes.append(f"`{path}` removed in {self.head} (default was {before[path]!r})")
            elif before[path] != after[path]:
                self.notes.append(
                    f"`{path}` default {before[path]!r} -> {after[path]!r} (unset here, so "
                    f"{self.head}'s applies unless upgradeCompatibility keeps the old one)"
                )


def _cilium_releases(resources: StackExport | list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        r["urn"]: r
        for r in StackExport.of(resources).of_type(HELM_RELEASE)
        if (r.get("inputs") or {}).get("chart") == "cilium"
    }


def upgrade_steps(
    base: StackExport | list[dict[str, Any]],
    head: StackExport | list[dict[str, Any]],
    downgrade_reasons: dict[str, str] | None = None,
) -> list[UpgradeStep]:
    """The version move of every Cilium release present in both plans (by URN), checked;
    ``downgrade_reasons`` maps a release's logical name to the reason a downgrade was allowed."""
    before, after = _cilium_releases(base), _cilium_releases(head)
    steps = []
    for urn in sorted(set(before) & set(after)):
        old = str(before[urn]["inputs"].get("version"))
        new = str(after[urn]["inputs"].get("version"))
        if old == new:
            continue
        name = urn.rsplit("::", 1)[-1]
        if not (_SEMVER.match(old) and _SEMVER.match(new)):
            # e.g. a base plan from a chart given as a path: the move cannot be judged.
            bad = UpgradeStep(name, old, new, {})
            bad.problems.append(
                f"release {name}: cannot compare chart versions {old!r} and {new!r} (exact "
                "x.y.z versions only); plan against a base with exact versions"
            )
            steps.append(bad)
            continue
        step = UpgradeStep(
            name,
            old,
            new,
            after[urn]["inputs"].get("values") or {},
            downgrade_reason=(downgrade_reasons or {}).get(name),
        )
        steps.append(step.check())
    return steps


def upgrades_markdown(steps: list[UpgradeStep]) -> str:
    if not steps:
        return ""
    out = ["#### Cilium version changes", ""]
    for step in steps:
        mark = "⛔" if step.problems else ("⚠️" if step.kind in ("minor", "downgrade") else "✅")
        out.append(f"- {mark} `{step.release}`: {step.base} → {step.head} ({step.kind} upgrade)")
        out += [f"  - **refused:** {p}" for p in step.problems]
        if step.kind == "downgrade" and step.downgrade_reason:
            out.append(f"  - downgrade allowed: {step.downgrade_reason}")
        if step.notes:
            out.append(
                f"  - <details><summary>{len(step.notes)} upstream default change(s) this "
                "cluster inherits</summary>\n\n    "
                + "\n    ".join(f"- {n}" for n in step.notes)
                + "\n\n    </details>"
            )
    return "\n".join(out) + "\n"
