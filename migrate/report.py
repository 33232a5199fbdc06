"""What carried over: per input object fully / partly / not migrated, every field that did
not carry over with the reason and what Cilium offers instead; report.md and report.json."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from migrate.reader import IstioObject, Unreadable

__all__ = ["Gap", "ObjectReport", "Report", "Status"]

Status = Literal["fully", "partly", "not"]
STATUSES: tuple[str, ...] = ("fully", "partly", "not", "unreadable")


@dataclass(frozen=True, order=True)
class Gap:
    """A field that did not carry over (``field`` as a path into the object's spec)."""

    field: str
    reason: str
    alternative: str


@dataclass
class ObjectReport:
    """The outcome for one input object. A converter records gaps and what it produced; the
    status follows: no gap = fully, gaps and output = partly, nothing carried = not."""

    obj: IstioObject
    gaps: list[Gap] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outputs: set[str] = field(default_factory=set)
    carried: bool = False

    def gap(self, path: str, reason: str, alternative: str) -> None:
        self.gaps.append(Gap(path, reason, alternative))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    @property
    def status(self) -> Status:
        if not self.gaps:
            return "fully"
        return "partly" if self.carried else "not"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.obj.kind,
            "apiVersion": self.obj.api_version,
            "namespace": self.obj.namespace,
            "name": self.obj.name,
            "file": self.obj.file,
            "document": self.obj.doc,
            "status": self.status,
            "notCarriedOver": [
                {"field": g.field, "reason": g.reason, "ciliumAlternative": g.alternative}
                for g in sorted(set(self.gaps))
            ],
            "notes": list(self.notes),
            "outputs": sorted(self.outputs),
        }


@dataclass
class Report:
    objects: list[ObjectReport]
    unreadable: list[Unreadable]

    @property
    def counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter(o.status for o in self.objects)
        out = {s: counts.get(s, 0) for s in STATUSES[:3]}
        out["unreadable"] = len(self.unreadable)
        out["input"] = sum(out.values())
        return out

    @property
    def exit_code(self) -> int:
        """0 when every object migrated fully, 1 otherwise (something unreadable, partly or
        not migrated)."""
        counts = self.counts
        return 0 if counts["fully"] == counts["input"] else 1

    def as_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "objects": [o.as_json() for o in sorted(self.objects, key=lambda o: o.obj.sort_key)],
            "unreadable": [
                {
                    "file": u.file,
                    "document": u.doc,
                    "kind": u.kind,
                    "name": u.name,
                    "problems": list(u.problems),
                }
                for u in sorted(self.unreadable, key=lambda u: u.sort_key)
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2, sort_keys=False) + "\n"

    def to_markdown(self) -> str:
        counts = self.counts
        lines = [
            "# Istio migration report",
            "",
            f"{counts['input']} input objects: {counts['fully']} fully migrated, "
            f"{counts['partly']} partly, {counts['not']} not migrated, "
            f"{counts['unreadable']} unreadable.",
            "",
            "| status | kind | object | file | not carried over |",
            "| --- | --- | --- | --- | --- |",
        ]
        ordered = sorted(self.objects, key=lambda o: (STATUSES.index(o.status), o.obj.sort_key))
        for o in ordered:
            lines.append(
                f"| {o.status} | {o.obj.kind} | {o.obj.namespace}/{o.obj.name} | "
                f"{_cell(o.obj.where)} | {len(set(o.gaps))} |"
            )
        for u in sorted(self.unreadable, key=lambda u: u.sort_key):
            lines.append(
                f"| unreadable | {u.kind or '?'} | {u.name or '?'} | "
                f"{_cell(f'{u.file} (document {u.doc})')} | - |"
            )
        lines += self._details()
        return "\n".join(lines) + "\n"

    def _details(self) -> list[str]:
        lines: list[str] = []
        for o in sorted(self.objects, key=lambda o: o.obj.sort_key):
            if not o.gaps and not o.notes:
                continue
            lines += ["", f"## {o.obj.kind} {o.obj.namespace}/{o.obj.name}: {o.status}", ""]
            if o.gaps:
                lines += ["| field | why not | what Cilium offers |", "| --- | --- | --- |"]
                lines += [
                    f"| `{_cell(g.field)}` | {_cell(g.reason)} | {_cell(g.alternative)} |"
                    for g in sorted(set(o.gaps))
                ]
            if o.notes:
                lines += ["", *[f"- {n}" for n in o.notes]]
            if o.outputs:
                lines += ["", "Output: " + ", ".join(f"`{p}`" for p in sorted(o.outputs))]
        if self.unreadable:
            lines += ["", "## Unreadable input", ""]
            lines += [f"- {u.message}" for u in sorted(self.unreadable, key=lambda u: u.sort_key)]
        return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
