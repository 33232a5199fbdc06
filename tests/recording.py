"""Unit tests' way into the plan's one mock harness (infra/mocks.py).

A test runs a small program (one component, a few resources) under the same ``MeshlessMocks``
and ``RecordingMonitor`` that ``make plan`` uses, so a component test sees the provider
outputs, URNs, parents and dependencies the offline plan and the policy pack see. The
``record`` fixture in tests/conftest.py hands ``record_program`` to tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pulumi.runtime import mocks as pulumi_mocks

from infra.export_format import is_secret_envelope
from infra.mocks import MeshlessMocks, RecordedResource, RecordingMonitor, run_recorded

__all__ = ["Recording", "UnitTestMonitor", "is_secret", "record_program", "reveal"]

PROJECT = "meshless"


class UnitTestMonitor(RecordingMonitor):
    """The plan's monitor, plus the one resource option a unit test asserts on that the
    engine's state (and so RecordedResource) does not keep: ``ignoreChanges``."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.ignore_changes: dict[str, list[str]] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.ignore_changes.setdefault(response.urn, list(request.ignoreChanges))
        return response


@dataclass
class Recording:
    """Every resource a program registered, in registration order (which is not config
    order: registration is asynchronous)."""

    resources: list[RecordedResource]
    ignore_changes: dict[str, list[str]]

    def of_type(self, typ: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str) -> RecordedResource:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, got {[r.urn for r in found]}"
        return found[0]

    def named(self, typ: str, name: str) -> RecordedResource:
        """The resource of ``typ`` whose Pulumi name is ``name``."""
        (found,) = [r for r in self.of_type(typ) if r.name == name]
        return found

    def by_urn(self, urn: str) -> RecordedResource:
        (found,) = [r for r in self.resources if r.urn == urn]
        return found


def is_secret(value: Any) -> bool:
    return is_secret_envelope(value)


def reveal(value: Any) -> Any:
    """A secret's plain value (tests may look; the export never shows it)."""
    return value["value"] if is_secret_envelope(value) else value


def record_program(
    program: Callable[[], Any],
    *,
    stack: str = "staging",
    config: dict[str, str] | None = None,
    monitor: UnitTestMonitor | None = None,
) -> Recording:
    """Run ``program`` under the plan's mocks, the way infra/plan.py runs the whole program
    (infra/mocks.py ``run_recorded``: a fresh runtime, ``config`` as the engine passes it),
    and refuse a duplicate URN as the engine does. An exception of the program propagates;
    pass ``monitor`` to look at what was registered before it."""
    monitor = monitor or UnitTestMonitor(MeshlessMocks())
    run_recorded(program, project=PROJECT, stack=stack, config=config or {}, monitor=monitor)
    assert not monitor.duplicates, f"the engine refuses duplicate URNs: {monitor.duplicates}"
    return Recording(list(monitor.recorded.values()), monitor.ignore_changes)
