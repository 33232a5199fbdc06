"""The rehearsal's chart facts (policies/rules/rehearsal.json, chartHooks) are what the real
chart renders: values that meet a row's conditions give its hook Job, our values give none."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from components.catalog import known_versions
from components.cilium import CiliumSettings, build_values
from infra.rehearsal import load_rehearsal
from tests.test_cilium import facts, render

rehearsal = load_rehearsal()


def _hooks(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {
        o["metadata"]["name"]: o["metadata"]["annotations"]["helm.sh/hook"]
        for o in objects
        if (o["metadata"].get("annotations") or {}).get("helm.sh/hook")
    }


def _inputs(values: dict[str, Any], version: str) -> dict[str, Any]:
    return {"chart": "cilium", "version": version, "values": values}


@pytest.mark.parametrize("version", known_versions())
def test_chart_hooks_match_the_table(version: str, tmp_path: Path) -> None:
    ours = build_values(
        CiliumSettings(version=version, cluster_mesh=True, cluster_id=7), facts("eks")
    )
    ours["clustermesh"]["apiserver"]["tls"] = {
        "auto": {
            "enabled": True,
            "method": "certmanager",
            "certManagerIssuerRef": {
                "group": "cert-manager.io",
                "kind": "ClusterIssuer",
                "name": "ca",
            },
        }
    }
    assert _hooks(render(ours, version, tmp_path)) == {}
    assert rehearsal.hook_jobs(_inputs(ours, version)) == []

    hooked = copy.deepcopy(ours)
    hooked["hubble"]["tls"]["auto"] = {"enabled": True, "method": "cronJob"}
    hooked["clustermesh"]["apiserver"]["tls"] = {"auto": {"enabled": True, "method": "cronJob"}}
    rendered = _hooks(render(hooked, version, tmp_path))
    rows = rehearsal.hook_jobs(_inputs(hooked, version))
    assert rendered == {row["job"]: row["hook"] for row in rows}
    assert len(rows) == 2


@pytest.mark.parametrize("cloud", ["eks", "gke"])
def test_our_default_values_render_no_hook(cloud: str, tmp_path: Path) -> None:
    """What the program installs renders no hook Job: nothing in it waits for a node."""
    values = build_values(CiliumSettings(), facts(cloud))
    objects = render(values, CiliumSettings().version, tmp_path)
    assert _hooks(objects) == {}
    assert not [o for o in objects if o["kind"] == "Job"]
