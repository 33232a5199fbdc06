"""`meshless gate FILE`: exit 0 clean, 1 on a mandatory violation, 2 on input it cannot read.

These start the pack the engine's way once per gate run, as the CLI does; input errors are
found before the pack starts, so they cost nothing.
"""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from infra.findings_log import print_findings
from infra.gate import GateReport, Violation, gate_command, load_export, run_gate

CONFIG_DIR = Path(__file__).resolve().parents[2] / "policies" / "config"
EKS_RELEASE = "eks-main-cilium-release"


def _write(tmp_path: Path, name: str, content: object) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _exit_code(*args, **kwargs) -> int:
    with pytest.raises(typer.Exit) as exc:
        gate_command(*args, **kwargs)
    return exc.value.exit_code


def _break_three_ways(stack) -> None:
    """The issue's three staging mistakes: a tag-only image, the removed 'strict' mode, and a
    kube-proxy add-on."""
    stack.set(
        EKS_RELEASE, "values.image", {"repository": "quay.io/cilium/cilium", "tag": "v1.16.19"}
    )
    stack.set(EKS_RELEASE, "values.kubeProxyReplacement", "strict")
    stack.add(
        "aws:eks/addon:Addon",
        "eks-main-kube-proxy",
        {"addonName": "kube-proxy", "clusterName": "main"},
        parent=stack.urn_of("eks-main"),
        deps=[stack.urn_of("eks-main-cluster")],
    )


THREE_MISTAKES = [
    (
        "cilium-images-digest-pinned",
        "values.image",
        {"repository": "quay.io/cilium/cilium", "tag": "v1.16.19"},
        EKS_RELEASE,
    ),
    ("kube-proxy-replacement-strict", "values.kubeProxyReplacement", "strict", EKS_RELEASE),
    ("eks-no-conflicting-addons", "addonName", "kube-proxy", "eks-main-coredns"),
]


@pytest.mark.parametrize("mistake", THREE_MISTAKES, ids=lambda m: m[0])
def test_each_staging_mistake_is_mandatory_and_named(gate, stack, mistake) -> None:
    policy, path, value, resource = mistake
    stack.set(resource, path, value)
    findings = gate.run(stack, "staging")
    # Renaming the coredns add-on also removes the EKS readiness point (deploy-rehearsal).
    reported = {v.policy_name for v in findings.mandatory} - {"deploy-rehearsal"}
    assert reported == {policy}, findings.text


class TestExitCodes:
    """Exit codes are the CI contract: 1 blocks the merge, 2 means 'fix the input'."""

    def test_clean_stack_exits_0(self, tmp_path, stack, capsys) -> None:
        path = _write(tmp_path, "export.json", stack.export())
        assert _exit_code(path, policy_config=CONFIG_DIR / "prod.json") == 0
        assert "no violations" in capsys.readouterr().out

    def test_mandatory_violation_exits_1_with_table_and_report(
        self, tmp_path, stack, capsys
    ) -> None:
        _break_three_ways(stack)
        path = _write(tmp_path, "export.json", stack.export())
        report = tmp_path / "out" / "policy-report.json"
        code = _exit_code(path, policy_config=CONFIG_DIR / "staging.json", report=report)
        out = capsys.readouterr().out
        assert code == 1
        for policy in (
            "cilium-images-digest-pinned",
            "kube-proxy-replacement-strict",
            "eks-no-conflicting-addons",
        ):
            assert policy in out
        data = json.loads(report.read_text())
        assert data["pack"]["name"] == "meshless-guardrails"
        assert data["stack"] == "prod" and data["policyConfig"].endswith("staging.json")
        assert data["mandatory"] == sum(v["enforcement"] == "mandatory" for v in data["violations"])
        assert data["mandatory"] >= 3
        assert set(data["violations"][0]) == {"policy", "enforcement", "urn", "message"}

    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            ("{not json", "not valid JSON (line 1"),
            ({"resources": []}, "not a stack export"),
            ({"version": 2, "deployment": {"resources": []}}, "version is 2"),
            ({"version": 3, "deployment": {"resources": {}}}, "deployment.resources is not a list"),
            (
                {"version": 3, "deployment": {"resources": [{"type": "x"}]}},
                "deployment.resources[0] has no 'urn' string",
            ),
            (
                {
                    "version": 3,
                    "deployment": {"resources": [{"urn": "u", "type": "t", "inputs": []}]},
                },
                "deployment.resources[0].inputs is not an object",
            ),
        ],
        ids=[
            "malformed-json",
            "wrong-shape",
            "old-version",
            "resources-not-list",
            "resource-without-urn",
            "inputs-not-object",
        ],
    )
    def test_malformed_file_exits_2_naming_file_and_problem(
        self, tmp_path, capsys, content, expected
    ) -> None:
        path = _write(tmp_path, "export.json", content)
        assert _exit_code(path) == 2
        err = capsys.readouterr().err
        assert str(path) in err.replace("\n", "") and expected in err.replace("\n", "")
        assert "Traceback" not in err

    def test_missing_file_exits_2(self, tmp_path, capsys) -> None:
        assert _exit_code(tmp_path / "nope.json") == 2
        assert "stack export not found" in capsys.readouterr().err

    def test_missing_stack_file_exits_2(self, tmp_path, stack, capsys) -> None:
        path = _write(tmp_path, "export.json", stack.export())
        assert _exit_code(path, stack_file=tmp_path / "Pulumi.nope.yaml") == 2
        assert "Pulumi.nope.yaml: no such stack file (--stack-file)" in capsys.readouterr().err

    def test_piped_log_and_annotations_name_the_stack_file_line(
        self, tmp_path, stack, capsys, monkeypatch
    ) -> None:
        """In CI (no TTY, GITHUB_ACTIONS=true): blocks and ::error lines, no table."""
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        stack.set(EKS_RELEASE, "values.kubeProxyReplacement", "strict")
        path = _write(tmp_path, "export.json", stack.export())
        stack_file = _write(
            tmp_path,
            "Pulumi.prod.yaml",
            "config:\n  meshless:clusters:\n    - name: eks-main\n      cloud: eks\n"
            "      cilium:\n        kubeProxyReplacement: strict\n",
        )
        code = _exit_code(path, policy_config=CONFIG_DIR / "prod.json", stack_file=stack_file)
        out = capsys.readouterr().out
        assert code == 1 and "┃" not in out
        assert f"  config:   {stack_file}:6 meshless:clusters[0].cilium.kubeProxyReplacement" in out
        assert re.search(
            r"^::error file=[^,]*Pulumi.prod.yaml,line=6,title=kube-proxy-replacement-strict",
            out,
            re.M,
        )

    def test_missing_policy_config_exits_2(self, tmp_path, stack, capsys) -> None:
        path = _write(tmp_path, "export.json", stack.export())
        assert _exit_code(path, policy_config=tmp_path / "none.json") == 2
        assert "policy config not found" in capsys.readouterr().err

    def test_bad_policy_config_exits_2_listing_every_problem(self, tmp_path, stack, capsys) -> None:
        path = _write(tmp_path, "export.json", stack.export())
        bad = _write(
            tmp_path,
            "bad.json",
            {
                "no-such-policy": "mandatory",
                "helm-release-fails-safely": "blocking",
                "cluster-deletion-protection": {"environment": "qa"},
                "cilium-digests-match-catalog": {"allowedDigests": "sha256:x"},
                "gke-private-nodes": {"colour": "red"},
            },
        )
        assert _exit_code(path, policy_config=bad) == 2
        err = " ".join(capsys.readouterr().err.split())
        for words in (
            "'no-such-policy' is not a policy of meshless-guardrails",
            'helm-release-fails-safely.enforcementLevel must be one of ["advisory", '
            '"mandatory", "remediate", "disabled"], got "blocking"',
            'cluster-deletion-protection.environment must be one of ["staging", "prod"]',
            "cilium-digests-match-catalog.allowedDigests: 'sha256:x' is not of type 'array'",
            "unknown property 'colour'",
        ):
            assert words in err

    def test_policy_config_patterns_hold_offline(self, tmp_path, stack, capsys) -> None:
        """The pack's schema patterns hold before Configure, as the engine would hold them."""
        path = _write(tmp_path, "export.json", stack.export())
        good = "sha256:" + "0" * 64
        bad = _write(
            tmp_path,
            "bad.json",
            {
                "cilium-digests-match-catalog": {"allowedDigests": [good, "sha256:abc"]},
                "cilium-image-registries": {"allowedRegistries": ["https://quay.io/cilium"]},
            },
        )
        assert _exit_code(path, policy_config=bad) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "cilium-digests-match-catalog.allowedDigests[1]: 'sha256:abc' does not match" in err
        assert "cilium-image-registries.allowedRegistries[0]: 'https://quay.io/cilium'" in err
        assert good not in err
        fine = _write(
            tmp_path, "ok.json", {"cilium-digests-match-catalog": {"allowedDigests": [good]}}
        )
        assert _exit_code(path, policy_config=fine) == 0


class TestReplacement:
    """A real export may hold a resource twice during a replacement: the old one marked
    `delete: true`. The gate judges what the stack holds after the update."""

    def _replacing(self, stack, old_kpr: object, new_kpr: object) -> dict:
        document = stack.export()
        resources = document["deployment"]["resources"]
        index = next(i for i, r in enumerate(resources) if r["urn"] == stack.urn_of(EKS_RELEASE))
        old = copy.deepcopy(resources[index])
        old["delete"] = True
        old["inputs"]["values"]["kubeProxyReplacement"] = old_kpr
        resources[index]["inputs"]["values"]["kubeProxyReplacement"] = new_kpr
        resources.insert(index, old)
        return document

    def test_the_old_half_does_not_block(self, tmp_path, stack) -> None:
        path = _write(tmp_path, "export.json", self._replacing(stack, "strict", True))
        assert _exit_code(path, policy_config=CONFIG_DIR / "prod.json") == 0

    def test_the_live_half_does(self, tmp_path, stack, capsys) -> None:
        path = _write(tmp_path, "export.json", self._replacing(stack, True, "strict"))
        assert _exit_code(path, policy_config=CONFIG_DIR / "prod.json") == 1
        assert "kube-proxy-replacement-strict" in capsys.readouterr().out


class TestLibraryApi:
    """The offline plan calls run_gate directly with the resources it just recorded."""

    def test_run_gate_report(self, tmp_path, stack) -> None:
        stack.set(EKS_RELEASE, "values.hubble.relay.enabled", False)
        path = _write(tmp_path, "export.json", stack.export())
        report = run_gate(load_export(path).resources, policy_config=None, stack="prod")
        assert isinstance(report, GateReport)
        assert (report.pack_name, report.pack_version) == ("meshless-guardrails", "0.1.0")
        assert report.mandatory == 1 and report.advisory == 0
        violation = report.violations[0]
        assert violation.policy_name == "hubble-relay-enabled"
        assert violation.urn == stack.urn_of(EKS_RELEASE)
        assert report.to_json()["policyConfig"] is None


def test_typer_registration_parses_options(tmp_path) -> None:
    """infra/cli.py registers gate_command as `meshless gate`; its options must parse."""
    app = typer.Typer()
    app.command("gate")(gate_command)
    app.command("noop")(lambda: None)  # a second command keeps `gate` a subcommand
    runner = CliRunner()
    help_text = runner.invoke(app, ["gate", "--help"]).output
    assert "--policy-config" in help_text and "--report" in help_text
    result = runner.invoke(
        app,
        [
            "gate",
            str(tmp_path / "x.json"),
            "--policy-config",
            str(CONFIG_DIR / "prod.json"),
            "--report",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 2


def test_table_prints_messages_verbatim() -> None:
    """Messages quote values like resourceLabels[meshless-gke-mode]: not rich markup."""
    urn = "urn:pulumi:prod::meshless::meshless:gcp:GkeCluster$gcp:container/cluster:Cluster::c"
    report = GateReport(
        "meshless-guardrails",
        "0.1.0",
        "prod",
        None,
        resources=1,
        violations=[
            Violation(
                "gke-mode-stated", "mandatory", urn, "resourceLabels[meshless-gke-mode] is [b]x"
            )
        ],
    )
    out = io.StringIO()
    print_findings(report, Console(file=out, width=200))
    text = out.getvalue()
    assert "resourceLabels[meshless-gke-mode] is [b]x" in text
    assert "gcp:container/cluster:Cluster::c" in text and "1 mandatory" in text
