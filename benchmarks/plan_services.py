"""Offline plan time of a stack whose clusters carry N generated services' traffic policies.

    python benchmarks/plan_services.py [--stack prod] [--counts 127 1270] [--repeat 3]

For each N: writes N services with benchmarks/generate_services.py into out/bench/services-N,
points every cluster of Pulumi.<stack>.yaml that has ``trafficPolicies`` at that folder (in
out/bench/Pulumi.<stack>-N.yaml), times loading + rendering the policies in this process,
times evaluating the generated flows.yaml against the rendered policies (loading and resolving
the flows, then the evaluator alone), and times the whole offline plan (`meshless plan`, a
fresh process, gate and flow check included) next to the floor of importing the SDKs the
program uses. Medians of --repeat runs. Prints a table; exits 1 if a plan does not pass (exit
code other than 0) or a generated flow is not what the policies do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from generate_services import write

from components.flows.check import check_flows
from components.flows.spec import load_flows
from components.network_policy import render_policies
from components.platform import Platform
from components.traffic import load_policy_folder

REPO = Path(__file__).resolve().parents[1]

# What the program imports before it registers anything (as benchmarks/plan.py measures it).
IMPORT_FLOOR = (
    "import pulumi, pulumi_aws.ec2, pulumi_aws.eks, pulumi_aws.iam, pulumi_aws.kms, "
    "pulumi_gcp.compute, pulumi_gcp.container, pulumi_gcp.kms, pulumi_kubernetes.helm.v3, "
    "pulumi_kubernetes.apiextensions, pydantic"
)
CNP_TYPE = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"


def stack_file(stack: str, folder: str, target: Path) -> int:
    """Pulumi.<stack>.yaml with every trafficPolicies set to ``folder``; the count changed."""
    document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    clusters = document["config"]["meshless:clusters"]
    changed = 0
    for cluster in clusters:
        if "trafficPolicies" in cluster:
            cluster["trafficPolicies"] = folder
            changed += 1
    target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return changed


def median_seconds(run: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def plan_once(stack: str, file: Path) -> tuple[float, int, int]:
    """One offline plan in a fresh process: seconds, exit code, CNPs in resources.json."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "infra.cli", "plan", "--stack", stack]
        command += ["--stack-file", str(file), "--out", out]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        resources_file = Path(out) / "resources.json"
        if done.returncode not in (0, 1) or not resources_file.exists():
            print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
            return seconds, done.returncode, 0
        document = json.loads(resources_file.read_text())
        resources = document.get("deployment", document).get("resources", [])
        return seconds, done.returncode, sum(1 for r in resources if r.get("type") == CNP_TYPE)


def flow_times(folder: Path, repeat: int) -> tuple[int, float, float, int]:
    """Flows count, seconds to load + resolve them, seconds to evaluate them, failures."""
    policies = load_policy_folder(folder)
    platform = Platform("gke", "us-central1")
    objects = render_policies(policies, platform)
    loaded = median_seconds(lambda: load_flows(folder / "flows.yaml", policies, platform), repeat)
    flows = load_flows(folder / "flows.yaml", policies, platform)
    evaluated = median_seconds(lambda: check_flows("bench", objects, flows), repeat)
    failures = sum(not r.ok for r in check_flows("bench", objects, flows))
    return len(flows), loaded, evaluated, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--counts", type=int, nargs="+", default=[127, 1270])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench = REPO / "out" / "bench"
    bench.mkdir(parents=True, exist_ok=True)

    floor = median_seconds(
        lambda: subprocess.run([sys.executable, "-c", IMPORT_FLOOR], check=True), args.repeat
    )
    print(f"import floor (SDKs only): {floor:.2f} s (median of {args.repeat})")
    print(
        f"{'services':>8} {'clusters':>8} {'CNPs':>6} {'load+render s':>13} {'flows':>6} "
        f"{'flows load s':>12} {'eval s':>7} {'plan s':>7} {'ratio':>6}  exit"
    )
    failed = False
    for count in args.counts:
        folder = bench / f"services-{count}"
        write(count, folder, force=True)
        file = bench / f"Pulumi.{args.stack}-{count}.yaml"
        clusters = stack_file(args.stack, folder.relative_to(REPO).as_posix(), file)
        in_process = median_seconds(
            lambda f=folder: render_policies(load_policy_folder(f)), args.repeat
        )
        flows, flows_load, flows_eval, flow_failures = flow_times(folder, args.repeat)
        failed |= flow_failures > 0
        runs = [plan_once(args.stack, file) for _ in range(args.repeat)]
        seconds = statistics.median(r[0] for r in runs)
        codes = sorted({r[1] for r in runs})
        cnps = runs[-1][2]
        failed |= codes != [0]
        print(
            f"{count:>8} {clusters:>8} {cnps:>6} {in_process:>13.2f} {flows:>6} "
            f"{flows_load:>12.2f} {flows_eval:>7.2f} {seconds:>7.2f} {seconds / floor:>6.2f}  {codes}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
