"""The pull-request comment's structure: every finding once, new ones marked, resolved ones
struck, counts that add up, the end-of-patches warning once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.catalog import known_versions, next_minor
from infra.diff import PlanDiff, Violation
from infra.export_format import StackExport
from infra.plan import read_stack_file
from infra.program import load
from infra.summary import SummaryInputs, render_summary, verdict_line

REPO = Path(__file__).resolve().parents[1]
CLUSTER = "urn:pulumi:staging::meshless::meshless:aws:EksCluster::stg-eks-usw2"
URN = "urn:pulumi:staging::meshless::meshless:aws:EksCluster$kubernetes:helm.sh/v3:Release::rel"
OLD = "kubernetes:helm.sh/v3:Release 'rel': hubble is off. Set hubble.relay.enabled: true"
NEW = "kubernetes:helm.sh/v3:Release 'rel': kubeProxyReplacement is \"strict\". Set kubeProxyReplacement: true"
KEPT = "kubernetes:helm.sh/v3:Release 'rel': atomic is off. Set atomic: true"


@pytest.fixture(scope="module")
def config() -> Any:
    return load(read_stack_file(REPO / "Pulumi.staging.yaml")).config


def inputs(config: Any, **changes: Any) -> SummaryInputs:
    resources = [
        {
            "urn": "urn:pulumi:staging::meshless::pulumi:pulumi:Stack::s",
            "type": "pulumi:pulumi:Stack",
        },
        {"urn": CLUSTER, "type": "meshless:aws:EksCluster"},
        {"urn": URN, "type": "kubernetes:helm.sh/v3:Release", "parent": URN + "-c"},
        {"urn": URN + "-c", "type": "meshless:cilium:CiliumRelease", "parent": CLUSTER},
    ]
    base: dict[str, Any] = {
        "stack": "staging",
        "config": config,
        "export": StackExport(resources),
        "report": {"mandatory": 0, "advisory": 0, "violations": []},
        "warnings": [],
        "diff": None,
        "diff_error": None,
        "mermaid": None,
        "manifests": 0,
    }
    return SummaryInputs(**(base | changes))


def test_findings_once_new_marked_resolved_struck(config: Any) -> None:
    report = {
        "mandatory": 2,
        "advisory": 0,
        "violations": [
            {
                "policy": "kube-proxy-replacement-strict",
                "enforcement": "mandatory",
                "urn": URN,
                "message": NEW,
            },
            {
                "policy": "helm-release-atomic",
                "enforcement": "mandatory",
                "urn": URN,
                "message": KEPT,
            },
        ],
    }
    diff = PlanDiff(
        changed=[],
        new_violations=[Violation("kube-proxy-replacement-strict", URN, NEW, "mandatory")],
        resolved_violations=[Violation("hubble-relay-enabled", URN, OLD, "mandatory")],
    )
    summary = render_summary(inputs(config, report=report, diff=diff))
    assert summary.count("kube-proxy-replacement-strict") == 1  # not again under the changes
    rows = {
        line.split("|")[1].strip(): line
        for line in summary.splitlines()
        if "`kube-proxy" in line or "~~" in line or "`helm-release" in line
    }
    assert "🆕 new" in rows and "Set `kubeProxyReplacement: true`" in rows["🆕 new"]
    assert "✔️ resolved" in rows and "~~`hubble-relay-enabled`~~" in rows["✔️ resolved"]
    assert "" in rows and "helm-release-atomic" in rows[""]
    assert "'rel'" not in summary  # the resource column already names it
    assert (
        summary.index("## What changes")
        < summary.index("## Policy findings")
        < summary.index("## Clusters")
    )
    assert "## Policy findings (2, 1 resolved)" in summary


def test_counts_and_warning(config: Any) -> None:
    line = verdict_line(inputs(config), markdown=False)
    assert line.startswith("✅ meshless plan staging: passes the policy gate")
    assert (
        "4 resources: 3 in stg-eks-usw2, 0 in stg-gke-usc1, 1 outside the clusters (pulumi:pulumi:Stack)."
        in line
    )
    summary = render_summary(inputs(config))
    assert summary.count("> [!WARNING]") == 1 and summary.count("no upstream patches") == 1
    # The suggested target is the catalog's newest patch of the next minor, not a literal.
    newest_next = [v for v in known_versions() if v.startswith("1.17.")][-1]
    assert f"`cilium.version: {newest_next}`" in summary
    assert "| `kubernetes:helm.sh/v3:Release` | 1 |" in summary
    assert (
        "### stg-gke-usc1 (gke): 0 resources\n" in summary and summary.count("| resource type") == 1
    )
    assert (
        "Plus 2 internal (components and providers): `meshless:aws:EksCluster` x1, "
        "`meshless:cilium:CiliumRelease` x1." in summary
    )


def test_many_findings_stay_inside_a_comment(config: Any) -> None:
    many = [
        {
            "policy": "helm-release-atomic",
            "enforcement": "mandatory",
            "urn": f"{URN}{i}",
            "message": KEPT,
        }
        for i in range(300)
    ]
    report = {"mandatory": 300, "advisory": 0, "violations": many}
    summary = render_summary(inputs(config, report=report))
    assert len(summary) < 65_000 and "…and 200 more in `policy-report.json`" in summary


def test_next_minor_from_the_catalog() -> None:
    versions = known_versions()
    newest_117 = [v for v in versions if v.startswith("1.17.")][-1]
    assert next_minor("1.16.5") == next_minor("1.16.19") == newest_117
    assert next_minor(versions[-1]) is None
