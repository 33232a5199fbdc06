"""Reading a traffic-policy folder: every ``*.yaml``/``*.yml`` file parsed with lines,
validated against the format, then cross-checked as a set by the linter (lint.py).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import (
    ValidationError,
)

from components.traffic.fields import FLOWS_FILES
from components.traffic.lint import _Checker
from components.traffic.model import PolicyFile, ServicePolicy
from components.traffic.policy_set import PolicySet
from components.traffic.source import (
    TrafficPolicyError,
    _display,
    _read_source,
    _repo_root,
    _Source,
    _validation_problems,
)

__all__ = ["load_policy_folder"]


def _read(path: Path, label: str) -> tuple[_Source, list[ServicePolicy], list[str]]:
    source, problems, parsed_yaml = _read_source(path, label)
    if not parsed_yaml:
        return source, [], problems
    if source.document is None:
        return (
            source,
            [],
            [f"{label}: empty file; add `services:` with at least one service, or delete it"],
        )
    try:
        # Fields exactly as documented (camelCase): `path_prefix` is an unknown field.
        parsed = PolicyFile.model_validate(source.document, by_alias=True, by_name=False)
    except ValidationError as exc:
        return source, [], problems + _validation_problems(source, exc)
    return source, list(parsed.services), problems


def load_policy_folder(folder: Path, root: Path | None = None) -> PolicySet:
    """Parse, validate and cross-check every ``*.yaml``/``*.yml`` under ``folder``.

    Raises TrafficPolicyError with every problem (``file:line: field: message; fix``); file
    names are shown relative to ``root`` (default: the folder holding Pulumi.yaml).
    """
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix in (".yaml", ".yml")
        and p.is_file()
        # The expected-flows file sits beside the policies (components/flows/spec.py).
        and p.name not in FLOWS_FILES
        # Hidden files and folders (.git, editor backups) are not policies.
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    root = root.resolve() if root is not None else _repo_root(folder)
    label = _display(folder, root)
    if not files:
        raise TrafficPolicyError(
            [
                f"{label}: no *.yaml or *.yml policy files in this folder; add one or fix trafficPolicies"
            ]
        )
    problems: list[str] = []
    loaded: list[tuple[ServicePolicy, _Source, int]] = []
    for path in files:
        source, services, found = _read(path, _display(path, root))
        problems += found
        loaded += [(service, source, index) for index, service in enumerate(services)]
    if problems:
        raise TrafficPolicyError(problems)
    return _Checker(label, loaded).run()
