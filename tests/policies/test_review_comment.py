"""A blocked plan's pull-request comment, read the way GitHub shows it (rendered, sanitised):
every placeholder of every finding survives."""

from __future__ import annotations

from pathlib import Path

from infra.export_format import StackExport
from infra.gate import GateReport
from infra.plan import read_stack_file
from infra.program import load
from infra.render import PLACEHOLDER
from infra.summary import SummaryInputs, render_summary

REPO = Path(__file__).resolve().parents[2]


def test_blocked_comment_keeps_every_placeholder(gate, stack, github_text) -> None:
    web = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
    }
    stack.add(
        "kubernetes:apps/v1:Deployment",
        "shop-web",
        web,
        parent=stack.urn_of("eks-main"),
    )
    stack.delete("gke-main-cluster", "workloadIdentityConfig")
    findings = gate.run(stack, "prod")
    report = GateReport("meshless-guardrails", "0.1.0", "prod", None, list(findings), 1)
    placeholders = {p for v in findings for p in PLACEHOLDER.findall(v.message)}
    assert {"<digest>", "<image>", "<project>"} <= placeholders, findings.text
    assert report.mandatory

    config = load(read_stack_file(REPO / "Pulumi.staging.yaml")).config
    summary = render_summary(
        SummaryInputs(
            stack="prod",
            config=config,
            export=StackExport(stack.resources),
            report=report.to_json(),
            warnings=["caller <team> in a namespace without policies"],
            diff=None,
            diff_error=None,
            mermaid=None,
            manifests=0,
        )
    )
    assert summary.startswith("❌")
    shown = github_text(summary)
    for placeholder in placeholders | {"<team>"}:
        assert placeholder in shown, placeholder
    assert not PLACEHOLDER.search(github_text(summary, drop_code=True))
