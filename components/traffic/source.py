"""Where a problem sits in a traffic file and how it is worded: pydantic errors turned into
``file:line: field: message`` with the field spelled as written (camelCase) and a suggestion
for a misspelt key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from components.gc_pause import gc_paused
from components.pydantic_errors import describe_error
from components.traffic.model import PolicyFile
from components.yaml_lines import _Lines, load_with_lines
from components.yaml_prefetch import prefetched

__all__ = ["TrafficPolicyError"]


class TrafficPolicyError(Exception):
    """Traffic-policy files that cannot become working policies; one message per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class _Source:
    """One file's document and line table, for messages that point into it."""

    label: str
    document: Any = None
    lines: _Lines = field(default_factory=_Lines)

    def place(self, loc: Sequence[Any]) -> str:
        """``file:line`` of a location (the nearest existing key or item)."""
        line = self.lines.line(self.document, loc) if self.document is not None else None
        return f"{self.label}:{line}" if line else self.label

    def at(self, loc: Sequence[Any], message: str) -> str:
        path = _loc_text(loc)
        return f"{self.place(loc)}: {path}: {message}" if path else f"{self.place(loc)}: {message}"


def _loc_text(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        text = (
            str(part) if len(str(part)) <= 60 else f"{str(part)[:45]}... ({len(str(part))} chars)"
        )
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + text)
    return out


def _split_field(text: str) -> list[Any]:
    parts: list[Any] = []
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", text):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    return parts


def _model_at(loc: Sequence[Any], root: type[BaseModel]) -> type[BaseModel] | None:
    """The model class whose field a location ends in (for "did you mean" on unknown keys)."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        found = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        model = next(_models(found.annotation), None) if found else None
    return model


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _models(arg)


def _aliases(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _message(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    def unknown_field(error: Mapping[str, Any]) -> str:
        loc = error["loc"]
        model = _model_at(loc, root)
        allowed = _aliases(model) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown field; {hint}allowed here: {', '.join(allowed)}"

    return describe_error(error, unknown_field)


def _as_written(document: Any, loc: Sequence[Any]) -> list[Any]:
    """``loc`` without list indices the user did not write (a single value where a list is
    accepted, e.g. ``method: GET``, is validated as item 0)."""
    out, node = [], document
    for part in loc:
        if isinstance(part, int) and not isinstance(node, list):
            continue
        out.append(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return out


def _validation_problems(
    source: _Source, exc: ValidationError, root: type[BaseModel] = PolicyFile
) -> list[str]:
    """One ``file:line: field: message`` per pydantic error; ``root`` is the file's model (the
    flows file reuses this with its own)."""
    problems = []
    for error in exc.errors():
        loc = _as_written(source.document, error["loc"])
        if error["type"] == "meshless_field":
            loc += _split_field((error.get("ctx") or {}).get("field", ""))
        problems.append(source.at(loc, _message(error, root)))
    return problems


def _repo_root(path: Path) -> Path | None:
    """The nearest folder above ``path`` with a Pulumi.yaml: the repository root."""
    return next((p for p in path.resolve().parents if (p / "Pulumi.yaml").is_file()), None)


def _display(path: Path, root: Path | None) -> str:
    """``path`` as users see it: relative to ``root`` (resolved) if inside it, else as is."""
    if root is not None:
        try:
            return path.resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def _read_source(path: Path, label: str) -> tuple[_Source, list[str], bool]:
    """A YAML file read with its line table, for traffic-policy and flows files alike: the
    source, its problems (unreadable, not YAML, duplicate keys) and whether it parsed."""
    source = _Source(label)
    with gc_paused():  # the node graph is large and acyclic (components/gc_pause.py)
        ready = prefetched(path)  # parsed by a helper process (components/yaml_prefetch.py)
        if ready is None:
            try:
                ready = load_with_lines(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                return source, [f"{label}: cannot read: {exc}"], False
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f"{label}:{mark.line + 1}" if mark else label
                reason = getattr(exc, "problem", None) or str(exc)
                return source, [f"{where}: not valid YAML: {reason}"], False
    source.document, source.lines = ready
    problems = [
        f"{label}:{line}: {key}: duplicate key (first at line {first}); merge the two"
        for line, key, first in source.lines.duplicates
    ]
    return source, problems, True
