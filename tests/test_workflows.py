"""The GitHub Actions workflows: schema-valid, zizmor-clean, pinned, and wired as documented."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
BIN = Path(sys.executable).parent
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+(\.\d+){0,2}\s*$")
BLOCKING_SEVERITIES = {"medium", "high"}
# Any attempt to reach the network from the linters fails fast instead of hanging, and no
# GitHub token is handed to them: both must work offline, as in CI without secrets.
OFFLINE_ENV = {
    **{
        k: v
        for k, v in os.environ.items()
        if k not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN", "NO_PROXY", "no_proxy"}
    },
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
}


def tool(name: str) -> str:
    """The venv's copy of a tool, else one on PATH; skip only if it is truly absent."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed in this environment")
    return found


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(wf: dict[str, Any]) -> dict[str, Any]:
    """PyYAML reads the bare key `on` as boolean True."""
    on = wf.get("on", wf.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def workflow(name: str) -> dict[str, Any]:
    path = ROOT / ".github" / "workflows" / name
    assert path.exists(), f"{path} is missing"
    return load(path)


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(f"{action}@")]


def test_there_are_workflows() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"pr.yml", "deploy.yml", "drift.yml"} <= names


class TestLinters:
    """The issue's bar: the workflow schema and zizmor with nothing of medium severity or above."""

    def test_schema(self) -> None:
        exe = tool("check-jsonschema")
        proc = subprocess.run(
            [exe, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
            capture_output=True,
            text=True,
            env=OFFLINE_ENV,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def test_schema_rejects_a_broken_workflow(self, tmp_path: Path) -> None:
        """Guards the check itself: a workflow without `jobs` must fail validation."""
        exe = tool("check-jsonschema")
        bad = tmp_path / "bad.yml"
        bad.write_text("name: bad\non: push\n")
        proc = subprocess.run(
            [exe, "--builtin-schema", "vendor.github-workflows", str(bad)],
            capture_output=True,
            text=True,
            env=OFFLINE_ENV,
            timeout=120,
        )
        assert proc.returncode != 0

    def test_zizmor(self) -> None:
        blocking = blocking_zizmor_findings(WORKFLOWS)
        assert not blocking, json.dumps(blocking, indent=2, default=str)

    def test_zizmor_check_catches_an_unsafe_workflow(self, tmp_path: Path) -> None:
        """Guards the check itself: template injection and a tag pin must be reported."""
        unsafe = tmp_path / "unsafe.yml"
        unsafe.write_text(
            "name: unsafe\n"
            "on: pull_request\n"
            "permissions: {}\n"
            "jobs:\n"
            "  a:\n"
            "    runs-on: ubuntu-24.04\n"
            "    steps:\n"
            "      - uses: actions/checkout@v4\n"
            "        with:\n"
            "          persist-credentials: false\n"
            '      - run: echo "${{ github.event.pull_request.title }}"\n'
        )
        idents = {f["ident"] for f in blocking_zizmor_findings([unsafe])}
        assert {"template-injection", "unpinned-uses"} <= idents


def blocking_zizmor_findings(paths: list[Path]) -> list[dict[str, Any]]:
    """zizmor's findings of medium severity or above, offline, with every ignore disabled."""
    exe = tool("zizmor")
    proc = subprocess.run(
        [exe, "--offline", "--no-ignores", "--format", "json", *map(str, paths)],
        capture_output=True,
        text=True,
        env=OFFLINE_ENV,
        timeout=300,
    )
    # zizmor exits non-zero when it has findings; the JSON decides, not the exit code.
    assert proc.stdout.strip(), f"zizmor printed no JSON: {proc.stderr}"
    return [
        {
            "ident": f["ident"],
            "severity": f["determinations"]["severity"],
            "desc": f.get("desc"),
            "where": [
                (loc["symbolic"]["key"], loc["concrete"]["location"]["start_point"])
                for loc in f.get("locations", [])
            ],
        }
        for f in json.loads(proc.stdout)
        if f["determinations"]["severity"].lower() in BLOCKING_SEVERITIES
    ]


class TestPinning:
    """Every action is pinned by commit SHA with its version beside it, like our images."""

    @pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
    def test_uses_pinned_by_sha_with_version_comment(self, path: Path) -> None:
        problems = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
            if not m:
                continue
            ref, rest = m.groups()
            if ref.startswith("./"):
                continue
            if not SHA_PIN.match(ref):
                problems.append(f"{path.name}:{n}: {ref} is not pinned to a 40-hex commit")
            if not VERSION_COMMENT.search(rest):
                problems.append(f"{path.name}:{n}: {ref} lacks a trailing `# vX.Y.Z` comment")
        assert not problems, "\n".join(problems)

    def test_same_action_same_pin_everywhere(self) -> None:
        pins: dict[str, set[str]] = {}
        for path in WORKFLOWS:
            for ref in re.findall(r"uses:\s*(\S+@\S+)", path.read_text(encoding="utf-8")):
                action, sha = ref.split("@", 1)
                pins.setdefault(action, set()).add(sha)
        assert {a: s for a, s in pins.items() if len(s) > 1} == {}


class TestHardening:
    """Least privilege and no credential left behind."""

    @pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
    def test_workflow_permissions_read_only(self, path: Path) -> None:
        assert load(path).get("permissions") == {"contents": "read"}

    @pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
    def test_checkout_does_not_persist_credentials(self, path: Path) -> None:
        for name, job in load(path)["jobs"].items():
            for step in steps_using(job, "actions/checkout"):
                assert step.get("with", {}).get("persist-credentials") is False, name

    @pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
    def test_no_expressions_inside_run(self, path: Path) -> None:
        for name, job in load(path)["jobs"].items():
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), f"{name}: pass values through env"
                assert "${{" not in step.get("with", {}).get("script", ""), name

    @pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
    def test_no_privileged_triggers(self, path: Path) -> None:
        assert not {"pull_request_target", "workflow_run"} & set(triggers(load(path)))

    def test_id_token_only_where_credentials_are_used(self) -> None:
        for path in WORKFLOWS:
            for name, job in load(path)["jobs"].items():
                wants = job.get("permissions", {}).get("id-token") == "write"
                uses_oidc = bool(
                    steps_using(job, "aws-actions/configure-aws-credentials")
                    or steps_using(job, "google-github-actions/auth")
                )
                assert wants == uses_oidc, f"{path.name}:{name}"


class TestPullRequestFlow:
    """Offline plan per stack for everyone; comments and cloud preview only where safe."""

    def test_trigger(self) -> None:
        assert "pull_request" in triggers(workflow("pr.yml"))

    def test_offline_plan_needs_no_credentials(self) -> None:
        job = workflow("pr.yml")["jobs"]["plan"]
        assert job["strategy"]["matrix"]["stack"] == ["staging", "prod"]
        assert "permissions" not in job  # inherits contents: read
        text = yaml.safe_dump(job)
        assert "secrets." not in text and "id-token" not in text
        paths = [s.get("with", {}).get("path") for s in steps_using(job, "actions/checkout")]
        assert sorted(paths) == ["base", "head"]
        base = next(s for s in steps_using(job, "actions/checkout") if s["with"]["path"] == "base")
        assert base["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
        runs = "\n".join(s.get("run", "") for s in job["steps"])
        assert "--compare" in runs and "make plan" in runs

    def test_comment_job_is_the_only_writer_and_runs_no_pr_code(self) -> None:
        job = workflow("pr.yml")["jobs"]["comment"]
        assert job["permissions"] == {"pull-requests": "write"}
        assert job["needs"] == "plan"
        assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
        assert not steps_using(job, "actions/checkout")
        assert not any("run" in s for s in job["steps"])
        script = steps_using(job, "actions/github-script")[0]["with"]["script"]
        assert "meshless-plan:" in script and "updateComment" in script

    def test_cloud_preview_is_opt_in_and_not_for_forks(self) -> None:
        job = workflow("pr.yml")["jobs"]["cloud-preview"]
        assert "vars.PULUMI_CLOUD_PREVIEW == 'true'" in job["if"]
        assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
        assert job["permissions"]["id-token"] == "write"
        aws = steps_using(job, "aws-actions/configure-aws-credentials")[0]["with"]
        assert aws["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
        gcp = steps_using(job, "google-github-actions/auth")[0]["with"]
        assert "vars.GCP_WORKLOAD_IDENTITY_PROVIDER" in gcp["workload_identity_provider"]
        pulumi = steps_using(job, "pulumi/actions")[0]["with"]
        assert pulumi["command"] == "preview"
        assert pulumi["stack-name"] == "${{ matrix.stack }}"
        assert pulumi["policyPacks"] == "policies"
        assert pulumi["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
        assert pulumi["comment-on-pr"] is True
        assert job["concurrency"]["cancel-in-progress"] is False, "never kill a running preview"


class TestDeployFlow:
    """main deploys staging, then prod behind a reviewed environment, never overlapping."""

    def test_trigger_is_push_to_main(self) -> None:
        on = triggers(workflow("deploy.yml"))
        assert set(on) == {"push"} and on["push"]["branches"] == ["main"]

    def test_prod_needs_staging_and_the_prod_environment(self) -> None:
        jobs = workflow("deploy.yml")["jobs"]
        assert set(jobs) == {"staging", "prod"}
        assert jobs["prod"]["needs"] == "staging"
        assert jobs["prod"]["environment"] == "prod"
        assert jobs["staging"]["environment"] == "staging"

    @pytest.mark.parametrize("stack", ["staging", "prod"])
    def test_concurrency_per_stack_never_cancels(self, stack: str) -> None:
        job = workflow("deploy.yml")["jobs"][stack]
        assert job["concurrency"] == {
            "group": f"meshless-deploy-{stack}",
            "cancel-in-progress": False,
        }

    def test_deploy_groups_are_distinct_from_everything_else(self) -> None:
        groups = []
        for path in WORKFLOWS:
            wf = load(path)
            groups += [wf.get("concurrency", {}).get("group")]
            groups += [j.get("concurrency", {}).get("group") for j in wf["jobs"].values()]
        deploy = [g for g in groups if g and g.startswith("meshless-deploy-")]
        assert sorted(deploy) == ["meshless-deploy-prod", "meshless-deploy-staging"]

    @pytest.mark.parametrize("stack", ["staging", "prod"])
    def test_up_with_policy_pack_after_offline_gate(self, stack: str) -> None:
        job = workflow("deploy.yml")["jobs"][stack]
        names = [s.get("uses", s.get("run", "")) for s in job["steps"]]
        gate = next(i for i, n in enumerate(names) if n == f"make plan STACK={stack}")
        creds = next(i for i, n in enumerate(names) if "configure-aws-credentials" in n)
        assert gate < creds, "the offline gate runs before any credential is issued"
        pulumi = steps_using(job, "pulumi/actions")[0]["with"]
        assert pulumi["command"] == "up"
        assert pulumi["stack-name"] == stack
        assert pulumi["policyPacks"] == "policies"
        assert pulumi["policyPackConfigs"] == f"policies/config/{stack}.json"
        assert job["permissions"] == {"contents": "read", "id-token": "write"}


class TestDriftFlow:
    """A daily preview per stack finds hand-made changes and keeps one issue per stack."""

    def test_triggers_schedule_and_by_hand(self) -> None:
        on = triggers(workflow("drift.yml"))
        assert set(on) == {"schedule", "workflow_dispatch"}
        assert len(on["schedule"]) == 1 and on["schedule"][0]["cron"].count(" ") == 4

    def test_preview_per_stack_with_refresh_and_expect_no_changes(self) -> None:
        job = workflow("drift.yml")["jobs"]["preview"]
        assert job["strategy"]["matrix"]["stack"] == ["staging", "prod"]
        deploy = workflow("deploy.yml")["jobs"]
        runners = {i["stack"]: i["runner"] for i in job["strategy"]["matrix"]["include"]}
        assert job["runs-on"] == "${{ matrix.runner }}"
        assert runners == {s: deploy[s]["runs-on"] for s in ("staging", "prod")}
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        # read-only identities, no reviewer to wait for, no deployment record per run
        assert job["environment"] == {"name": "preview", "deployment": False}
        assert job["concurrency"] == {
            "group": "meshless-drift-${{ matrix.stack }}",
            "cancel-in-progress": False,
        }
        run = next(s for s in job["steps"] if s.get("id") == "preview")
        script = run["run"]
        assert '--stack "${STACK}" --refresh --expect-no-changes --diff' in script
        # drift (a proposed change) is told apart from an error of the run
        assert '"$rc" -eq 7' in script and "no changes were expected" in script
        assert 'exit "$rc"' in script
        assert run["env"]["STACK"] == "${{ matrix.stack }}"
        assert "pulumi-version" in steps_using(job, "pulumi/actions")[0]["with"]
        assert "command" not in steps_using(job, "pulumi/actions")[0]["with"]

    def test_same_cloud_credentials_as_deploy(self) -> None:
        job = workflow("drift.yml")["jobs"]["preview"]
        aws = steps_using(job, "aws-actions/configure-aws-credentials")[0]["with"]
        assert aws["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
        gcp = steps_using(job, "google-github-actions/auth")[0]["with"]
        assert gcp["workload_identity_provider"] == "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}"
        names = [s.get("uses", s.get("run", "")) for s in job["steps"]]
        creds = next(i for i, n in enumerate(names) if "configure-aws-credentials" in n)
        preview = next(i for i, s in enumerate(job["steps"]) if s.get("id") == "preview")
        assert creds < preview

    def test_report_is_the_only_issue_writer_and_runs_no_repo_code(self) -> None:
        jobs = workflow("drift.yml")["jobs"]
        report = jobs["report"]
        assert report["permissions"] == {"issues": "write"}
        assert report["needs"] == "preview"
        assert "!cancelled()" in report["if"]
        assert not steps_using(report, "actions/checkout")
        assert not any("run" in s for s in report["steps"])
        assert "issues" not in jobs["preview"]["permissions"]
        script = steps_using(report, "actions/github-script")[0]["with"]["script"]
        marker = "<!-- meshless-drift:${stack} -->"
        assert marker in script and "issues.create(" in script and "issues.update(" in script
        assert "state: 'closed'" in script  # a clean run closes the stack's issue


class TestDriftVerdict:
    """The preview step's shell, run as Actions runs it, against a stand-in `pulumi`."""

    def _run(self, tmp_path: Path, code: int, text: str) -> tuple[int, str]:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "pulumi"
        fake.write_text(
            f"#!/bin/sh\n[ \"$1\" = login ] && exit 0\nprintf '%s\\n' '{text}'\nexit {code}\n"
        )
        fake.chmod(0o755)
        job = workflow("drift.yml")["jobs"]["preview"]
        script = tmp_path / "step.sh"
        script.write_text(next(s for s in job["steps"] if s.get("id") == "preview")["run"])
        env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "STACK": "prod",
            "PULUMI_BACKEND_URL": "",
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        }
        # GitHub's default shell for `run` on Linux: bash --noprofile --norc -eo pipefail {0}
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        verdict = tmp_path / "drift" / "verdict"
        return proc.returncode, verdict.read_text().strip() if verdict.exists() else ""

    @pytest.mark.parametrize(
        ("code", "text", "exit_code", "verdict"),
        [
            (0, "Resources: 73 unchanged", 0, "clean"),
            (7, "~ aws:eks/nodeGroup:NodeGroup prod-eks-use1-general update", 0, "drift"),
            (255, "error: no changes were expected but changes were proposed", 0, "drift"),
            (255, "error: failed to load credentials", 255, ""),
        ],
        ids=["clean", "drift-exit-7", "drift-older-cli", "error"],
    )
    def test_verdict(
        self, tmp_path: Path, code: int, text: str, exit_code: int, verdict: str
    ) -> None:
        assert self._run(tmp_path, code, text) == (exit_code, verdict)
        if verdict:
            assert text in (tmp_path / "drift" / "preview.txt").read_text()


class TestDeployRunner:
    """`pulumi up` runs where meshless:deployer says, so the rehearsal judges the real route."""

    @pytest.mark.parametrize("stack", ["staging", "prod"])
    def test_runs_on_matches_the_stack_deployer(self, stack: str) -> None:
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        deployer = config["meshless:deployer"]
        job = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())["jobs"][
            stack
        ]
        labels = job["runs-on"] if isinstance(job["runs-on"], list) else [job["runs-on"]]
        assert deployer["runnerLabel"] in labels
        assert ("self-hosted" in labels) == (deployer["kind"] == "self-hosted")
        runs = " ".join(step.get("run", "") for step in job["steps"])
        assert "awscli==${AWSCLI_VERSION}" in runs
        (gcloud,) = [s for s in job["steps"] if "setup-gcloud" in s.get("uses", "")]
        assert gcloud["with"]["install_components"] == "gke-gcloud-auth-plugin"
        assert gcloud["with"]["version"] == "${{ env.GCLOUD_VERSION }}"
        workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
        assert re.fullmatch(r"\d+\.\d+\.\d+", workflow["env"]["GCLOUD_VERSION"])
