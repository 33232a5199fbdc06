"""Offline plan time of a stack whose clusters carry N generated services' traffic policies.

    python benchmarks/plan_services.py [--stack prod] [--counts 127 1270] [--repeat 3] [--no-flows]

For each N: writes N services with benchmarks/generate_services.py into out/bench/services-N,
points every cluster of Pulumi.<stack>.yaml that has ``trafficPolicies`` at that folder (in
out/bench/Pulumi.<stack>-N.yaml), times loading + rendering the policies in this process,
times evaluating the generated flows.yaml against the rendered policies (loading and resolving
the flows, then the evaluator alone; --no-flows skips these), and times the whole offline plan
(`meshless plan`, a fresh process, gate and flow check included) next to the gate alone and
the floor (benchmarks/floor.py: load the SDK classes of the plan's resources and register as
many under mocks), in turn in one run (benchmarks/measure.py), with the ratio plan/floor.
Medians of --repeat rounds; at --rss-at services (1270) also the peak RSS of the plan, its
policy pack and its manifest writer, and the CPU seconds of the plan's process tree by
process. Prints a table; exits 1 if a plan does not pass (exit code other than 0) or a
generated flow is not what the policies do.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from generate_services import write
from measure import HEADER, cpu_line, peak_rss_line, row, side_by_side

from components.flows.check import check_flows
from components.flows.spec import load_flows
from components.network_policy import render_policies
from components.platform import Platform
from components.traffic import load_policy_folder

REPO = Path(__file__).resolve().parents[1]


def stack_file(stack: str, folder: str, target: Path) -> int:
    """Pulumi.<stack>.yaml with every trafficPolicies set to ``folder``; the count changed."""
    source = REPO / f"Pulumi.{stack}.yaml"
    if not source.is_file():
        raise SystemExit(f"{source.name}: no such stack file; pass --stack staging or prod")
    document = yaml.safe_load(source.read_text())
    clusters = document["config"]["meshless:clusters"]
    changed = 0
    for cluster in clusters:
        if "trafficPolicies" in cluster:
            cluster["trafficPolicies"] = folder
            changed += 1
    target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return changed


def services_stack(stack: str, count: int) -> tuple[Path, Path]:
    """``count`` generated services in out/bench/services-<count> and the stack file pointing
    ``stack``'s clusters at them (out/bench/Pulumi.<stack>-<count>.yaml): (folder, file)."""
    bench = REPO / "out" / "bench"
    folder = bench / f"services-{count}"
    write(count, folder, force=True)
    file = bench / f"Pulumi.{stack}-{count}.yaml"
    stack_file(stack, folder.relative_to(REPO).as_posix(), file)
    return folder, file


def median_seconds(run: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    parser.add_argument(
        "--rss-at",
        type=int,
        default=1270,
        help="print peak RSS and CPU seconds of plan, pack and writer at this count",
    )
    parser.add_argument("--no-flows", action="store_true", help="skip the in-process flow timings")
    args = parser.parse_args()

    print(f"medians of {args.repeat} rounds of plan, gate, floor (fresh processes, one run)")
    failed = False
    results = []
    for count in args.counts:
        folder, file = services_stack(args.stack, count)
        if not args.no_flows:
            in_process = median_seconds(
                lambda f=folder: render_policies(load_policy_folder(f)), args.repeat
            )
            flows, flows_load, flows_eval, flow_failures = flow_times(folder, args.repeat)
            failed |= flow_failures > 0
            print(
                f"{count} services: load+render {in_process:.2f} s, {flows} flows: load "
                f"{flows_load:.2f} s, evaluate {flows_eval:.2f} s, {flow_failures} not as expected",
                flush=True,
            )
        result = side_by_side(args.stack, file, args.repeat, rss=count == args.rss_at)
        failed |= result.codes() != [0]
        results.append((count, result))
        print(HEADER)
        print(row(f"{args.stack}+{count}", result), flush=True)
        if count == args.rss_at:
            print(peak_rss_line(result), flush=True)
            print(cpu_line(result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
