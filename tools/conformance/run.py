"""`make conformance`: the program, the policy pack and the plan held against the real Pulumi
CLI and engine (see README, "Conformance").

Runs in a throw-away work folder (the CLI writes `encryptionsalt` into stack files and state
into the backend, neither of which may touch the repository):
  1. `pulumi preview` of staging and prod with the policy pack and each environment's
     policy config, the real Kubernetes provider (when built) and the stand-in aws/gcp;
  2. a staging stack with a mandatory violation: the real preview must fail naming the policy;
  3. `pulumi up` of both stacks with the stand-in providers (Kubernetes too: no API server),
     `pulumi stack export`, compared with `meshless plan`'s resources.json, and
     `meshless gate` on the export must give the plan's verdict.
Exit 0 when every check held, 1 otherwise; each step's output is kept in the work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conformance.compare import KNOWN_DIFFERENCES, compare_exports
from conformance.events import read_events, rehearsal_order_problems
from conformance.stand_in_provider import VERSIONS as STAND_INS

REPO = Path(__file__).resolve().parents[2]
STACKS = ("staging", "prod")
#: A staging config that breaks a mandatory policy, and the policy the preview must name.
VIOLATION = ("kubeProxyReplacement", "strict", "kube-proxy-replacement-strict")
PASSPHRASE = "meshless-conformance-only"
MESHLESS = str(Path(sys.executable).parent / "meshless")  # the project's console script


@dataclass
class Run:
    work: Path
    bin_dir: Path
    kubernetes_dir: Path | None
    uv: str = "uv"
    failures: list[str] = field(default_factory=list)
    passed: int = 0
    timings: list[tuple[str, float]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PULUMI_HOME": str(self.work / "pulumi-home"),
            "PULUMI_BACKEND_URL": f"file://{self.work / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Nothing is downloaded: a plugin not provided here is an error, not a fetch.
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            # `--event-log` is registered only with debug commands on (cmd/pulumi/operations/up.go).
            "PULUMI_DEBUG_COMMANDS": "true",
            "PYTHONPATH": str(REPO / "tools"),
            "NO_COLOR": "1",
        }

    def pulumi(self, label: str, *args: str) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = subprocess.run(
            [str(self.bin_dir / "pulumi"), *args, "--non-interactive", "--color", "never"],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.monotonic() - started
        self.timings.append((label, elapsed))
        log = self.work / "logs" / f"{label}.log"
        log.write_text(
            f"$ pulumi {' '.join(args)}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
        print(f"  {label}: exit {proc.returncode} in {elapsed:.1f} s (log: {log})", flush=True)
        return proc

    def check(self, ok: bool, what: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)


def _wrapper(path: Path, command: str) -> None:
    """A plugin executable that runs one of our stand-ins with the project's locked packages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n# meshless conformance stand-in (test only; see tools/conformance)\n"
        f'PYTHONPATH="{REPO / "tools"}${{PYTHONPATH:+:$PYTHONPATH}}" exec {command} "$@"\n'
    )
    path.chmod(0o755)


def write_plugins(run: Run) -> None:
    plugins = run.work / "plugins"
    # Pulumi.yaml says `toolchain: uv`: the program runs under `uv run` in the project.
    _wrapper(
        plugins / "python" / "pulumi-language-python",
        f'"{run.uv}" run --frozen --project "{REPO}" python -m conformance.language_host',
    )
    for package in STAND_INS:
        _wrapper(
            plugins / f"{package}-stand-in" / f"pulumi-resource-{package}",
            f'"{sys.executable}" -m conformance.stand_in_provider {package}',
        )


def write_project(run: Run, kubernetes: str) -> None:
    """Pulumi.yaml as in the repository plus a `plugins:` section naming this run's plugins.
    kubernetes: "real" (the provider built by `make tools`) or "stand-in"."""
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    plugins = run.work / "plugins"
    k8s_dir = run.kubernetes_dir if kubernetes == "real" else plugins / "kubernetes-stand-in"
    project["plugins"] = {
        "languages": [{"name": "python", "path": str(plugins / "python")}],
        "providers": [
            *(
                {"name": package, "path": str(plugins / f"{package}-stand-in")}
                for package in STAND_INS
                if package != "kubernetes"
            ),
            {"name": "kubernetes", "path": str(k8s_dir)},
        ],
    }
    (run.work / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))


def policy_venv(cache: Path) -> Path:
    """policies/venv as `pulumi install` makes it for a pip policy pack (python -m venv, then
    pip install -r requirements.txt), built once per requirements.txt content."""
    requirements = REPO / "policies" / "requirements.txt"
    import hashlib

    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    venv = cache / f"policy-venv-{digest}"
    if not (venv / ".complete").is_file():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(requirements),
            ],
            check=True,
        )
        (venv / ".complete").write_text(digest)
    return venv


def prepare(run: Run, cache: Path) -> None:
    (run.work / "logs").mkdir(parents=True)
    (run.work / "state").mkdir()
    for name in ("infra", "components", "traffic"):
        (run.work / name).symlink_to(REPO / name)
    shutil.copytree(
        REPO / "policies",
        run.work / "policies",
        ignore=shutil.ignore_patterns("venv", "__pycache__"),
    )
    (run.work / "policies" / "venv").symlink_to(policy_venv(cache))
    for stack in STACKS:
        shutil.copy(REPO / f"Pulumi.{stack}.yaml", run.work / f"Pulumi.{stack}.yaml")
    document = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
    document["config"]["meshless:clusters"][0]["cilium"][VIOLATION[0]] = VIOLATION[1]
    (run.work / "Pulumi.violation.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    write_plugins(run)
    write_project(run, "stand-in")


def policy_args(stack: str) -> list[str]:
    env = "staging" if stack == "violation" else stack
    return ["--policy-pack", "policies", "--policy-pack-config", f"policies/config/{env}.json"]


def previews(run: Run) -> None:
    kubernetes = "real" if run.kubernetes_dir else "stand-in"
    print(f"preview (Kubernetes provider: {kubernetes})", flush=True)
    write_project(run, kubernetes)
    for stack in STACKS:
        proc = run.pulumi(f"preview-{stack}", "preview", "--stack", stack, *policy_args(stack))
        run.check(
            proc.returncode == 0, f"pulumi preview --stack {stack} with the policy pack exits 0"
        )
        run.check(
            "meshless-guardrails" in proc.stdout + proc.stderr,
            f"preview of {stack} ran the meshless-guardrails pack",
        )
    proc = run.pulumi(
        "preview-violation", "preview", "--stack", "violation", *policy_args("violation")
    )
    output = proc.stdout + proc.stderr
    run.check(proc.returncode != 0, "preview of a stack with a mandatory violation fails")
    run.check(
        VIOLATION[2] in output and "mandatory" in output,
        f"the failed preview names the mandatory policy {VIOLATION[2]}",
    )


def plan(run: Run, stack: str) -> Path:
    out = run.work / "plan" / stack
    subprocess.run(
        [MESHLESS, "plan", "--stack", stack, "--out", str(out)],
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        check=False,
    )
    return out


def gate_verdict(run: Run, export: Path, stack: str) -> tuple[int, set[tuple[str, str]]]:
    report = run.work / "logs" / f"gate-{stack}.json"
    proc = subprocess.run(
        [
            MESHLESS,
            "gate",
            str(export),
            "--policy-config",
            str(REPO / "policies" / "config" / f"{stack}.json"),
            "--report",
            str(report),
        ],
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    violations = json.loads(report.read_text()).get("violations", []) if report.is_file() else []
    return proc.returncode, {(v["policy"], v["enforcement"]) for v in violations}


def ups(run: Run) -> None:
    print(f"up (stand-in providers for {', '.join(STAND_INS)})", flush=True)
    write_project(run, "stand-in")
    for stack in STACKS:
        events = run.work / "logs" / f"up-{stack}-events.jsonl"
        proc = run.pulumi(
            f"up-{stack}",
            "up",
            "--yes",
            "--skip-preview",
            "--stack",
            stack,
            *policy_args(stack),
            "--event-log",
            str(events),
        )
        run.check(proc.returncode == 0, f"pulumi up --stack {stack} exits 0")
        export = run.work / f"export-{stack}.json"
        proc = run.pulumi(
            f"export-{stack}", "stack", "export", "--stack", stack, "--file", str(export)
        )
        if proc.returncode != 0 or not export.is_file():
            run.check(False, f"pulumi stack export --stack {stack}")
            continue
        planned = plan(run, stack)
        plan_doc = json.loads((planned / "resources.json").read_text())
        export_doc = json.loads(export.read_text())
        problems = compare_exports(plan_doc, export_doc)
        (run.work / "logs" / f"compare-{stack}.txt").write_text("\n".join(problems) + "\n")
        for problem in problems[:20]:
            print(f"    {problem}", flush=True)
        count = len(plan_doc["deployment"]["resources"])
        run.check(
            not problems,
            f"{stack}: export matches the plan's resources.json ({count} resources; {len(problems)} differences)",
        )
        started, finished = read_events(events)
        order = rehearsal_order_problems(export_doc["deployment"]["resources"], started, finished)
        for problem in order[:10]:
            print(f"    {problem}", flush=True)
        run.check(
            bool(started) and not order,
            f"{stack}: the engine created every resource after what the deploy rehearsal says "
            f"it waits for ({len(started)} creates in the event log, {len(order)} out of order)",
        )
        code, verdict = gate_verdict(run, export, stack)
        plan_report = json.loads((planned / "policy-report.json").read_text())
        plan_verdict = {(v["policy"], v["enforcement"]) for v in plan_report.get("violations", [])}
        plan_code = 1 if plan_report.get("mandatory", 0) else 0
        run.check(
            (code, verdict) == (plan_code, plan_verdict),
            f"{stack}: meshless gate on the export gives the plan's verdict (exit {code}, {len(verdict)} violations)",
        )


def init_stacks(run: Run) -> None:
    for stack in (*STACKS, "violation"):
        proc = run.pulumi(
            f"init-{stack}", "stack", "init", stack, "--secrets-provider", "passphrase"
        )
        run.check(proc.returncode == 0, f"pulumi stack init {stack}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", type=Path, required=True, help="folder with the pulumi CLI")
    parser.add_argument(
        "--kubernetes-dir", type=Path, help="folder with pulumi-resource-kubernetes"
    )
    parser.add_argument("--cache", type=Path, required=True, help="folder for the policy pack venv")
    parser.add_argument("--uv", default=shutil.which("uv") or "uv", help="uv executable")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--only", choices=("preview", "up"), help="run one half (while working on it)"
    )
    args = parser.parse_args()
    if not (args.bin_dir / "pulumi").is_file():
        print(
            f"conformance: no pulumi CLI in {args.bin_dir}; run `make tools` first", file=sys.stderr
        )
        return 2
    if args.kubernetes_dir and not (args.kubernetes_dir / "pulumi-resource-kubernetes").is_file():
        print(
            f"conformance: no pulumi-resource-kubernetes in {args.kubernetes_dir}; run `make tools`",
            file=sys.stderr,
        )
        return 2
    work = Path(tempfile.mkdtemp(prefix="meshless-conformance-"))
    k8s = args.kubernetes_dir.resolve() if args.kubernetes_dir else None
    run = Run(work, args.bin_dir.resolve(), k8s, uv=str(Path(args.uv).resolve()))
    started = time.monotonic()
    print(f"conformance work folder: {work}", flush=True)
    try:
        prepare(run, args.cache.resolve())
    except subprocess.CalledProcessError as exc:
        print(
            f"conformance: making the policy pack's venv failed ({exc}); PyPI must be reachable",
            file=sys.stderr,
        )
        return 2
    run.pulumi("version", "version")
    login = run.pulumi("login", "login", f"file://{work / 'state'}")
    run.check(login.returncode == 0, "pulumi login to a local file backend")
    init_stacks(run)
    if args.only != "up":
        previews(run)
    if args.only != "preview":
        ups(run)
    print("fields not compared, by construction:")
    for name, why in KNOWN_DIFFERENCES.items():
        print(f"  - {name}: {why}")
    print(
        f"conformance: {sum(1 for _ in run.timings)} pulumi commands, {time.monotonic() - started:.0f} s"
    )
    for label, seconds in run.timings:
        print(f"  {label:24} {seconds:6.1f} s")
    if run.failures:
        print(f"conformance FAILED (work folder kept: {work}):")
        for what in run.failures:
            print(f"  - {what}")
    elif not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{run.passed} passed, {len(run.failures)} failed")
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
