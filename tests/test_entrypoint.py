"""The Pulumi entry point (infra/__main__.py) as the CLI runs it: config from the engine,
validation before any resource, the same program the offline plan records."""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra.mocks import MeshlessMocks
from infra.plan import read_stack_file
from tests.recording import Recording, UnitTestMonitor

REPO = Path(__file__).resolve().parents[1]
ENTRY = REPO / "infra" / "__main__.py"


def run_entrypoint(
    record: Callable[..., Recording],
    values: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    monitor: UnitTestMonitor | None = None,
) -> Recording:
    """Run infra/__main__.py under the plan's mocks, with config passed the way the engine
    passes it (PULUMI_CONFIG)."""
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(values))
    return record(lambda: runpy.run_path(str(ENTRY), run_name="__main__"), monitor=monitor)


def custom_types(resources: list[Any]) -> list[str]:
    return [r.type for r in resources if r.custom]


class TestEntryPoint:
    """`pulumi up` runs exactly the program the offline plan shows."""

    def test_staging_registers_both_clusters(
        self, record: Callable[..., Recording], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        values = read_stack_file(REPO / "Pulumi.staging.yaml")
        types = custom_types(run_entrypoint(record, values, monkeypatch).resources)
        assert types.count("kubernetes:helm.sh/v3:Release") == 2
        assert "aws:eks/cluster:Cluster" in types and "gcp:container/cluster:Cluster" in types

    def test_bad_config_stops_before_any_resource(
        self, record: Callable[..., Recording], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        document: dict[str, Any] = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
        document["config"]["meshless:clusters"][1]["nodePools"][0]["minSize"] = 9
        values = {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in document["config"].items()
        }
        monitor = UnitTestMonitor(MeshlessMocks())
        with pytest.raises(pulumi.RunError, match="invalid stack config: 1 problem"):
            run_entrypoint(record, values, monkeypatch, monitor)
        assert custom_types(list(monitor.recorded.values())) == []
