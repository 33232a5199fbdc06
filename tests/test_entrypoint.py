"""The Pulumi entry point (infra/__main__.py) as the CLI runs it: config from the engine,
validation before any resource, the same program the offline plan records."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.mocks import MeshlessMocks, RecordingMonitor
from infra.plan import read_stack_file

REPO = Path(__file__).resolve().parents[1]
ENTRY = REPO / "infra" / "__main__.py"


def run_entrypoint(
    values: dict[str, str], monkeypatch: pytest.MonkeyPatch, monitor: RecordingMonitor | None = None
) -> RecordingMonitor:
    """Run infra/__main__.py with config passed the way the engine passes it (PULUMI_CONFIG)."""
    mocks = MeshlessMocks()
    monitor = monitor or RecordingMonitor(mocks)
    runtime_settings.ROOT.set(None)
    runtime_settings.SETTINGS.rpc_manager.clear()
    pulumi.runtime.set_all_config({})
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(values))
    pulumi_mocks.set_mocks(
        mocks, project="meshless", stack="staging", preview=False, monitor=monitor
    )
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(ENTRY), run_name="__main__")))
    return monitor


def custom_types(monitor: RecordingMonitor) -> list[str]:
    return [r.type for r in monitor.recorded.values() if r.custom]


class TestEntryPoint:
    """`pulumi up` runs exactly the program the offline plan shows."""

    def test_staging_registers_both_clusters(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monitor = run_entrypoint(read_stack_file(REPO / "Pulumi.staging.yaml"), monkeypatch)
        types = custom_types(monitor)
        assert types.count("kubernetes:helm.sh/v3:Release") == 2
        assert "aws:eks/cluster:Cluster" in types and "gcp:container/cluster:Cluster" in types

    def test_bad_config_stops_before_any_resource(self, monkeypatch: pytest.MonkeyPatch) -> None:
        document: dict[str, Any] = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
        document["config"]["meshless:clusters"][1]["nodePools"][0]["minSize"] = 9
        values = {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in document["config"].items()
        }
        monitor = RecordingMonitor(MeshlessMocks())
        with pytest.raises(pulumi.RunError, match="invalid stack config: 1 problem"):
            run_entrypoint(values, monkeypatch, monitor)
        assert custom_types(monitor) == []
