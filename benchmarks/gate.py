"""How long the policy gate takes on the prod stack's real plan at 127 and 1270 services.

For each N: writes N generated services' traffic policies (benchmarks/generate_services.py),
points prod's clusters at them (as benchmarks/plan_services.py does), records the real
program under mocks once, then times the gate on those resources the way `meshless gate` runs
it (one pack process per run, started the engine's way). Prints total time and time per
resource next to the baseline: starting the pack until its port is known. A script that
prints figures, not a test: `make bench` or
`uv run python benchmarks/gate.py [--runs 3] [--services 127 1270]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from plan_services import services_stack

from infra.export_format import export_document
from infra.gate import PolicyPackSession, run_gate
from infra.plan import plan_stack

REPO = Path(__file__).resolve().parents[1]
STACK = "prod"
POLICY_CONFIG = REPO / "policies" / "config" / f"{STACK}.json"


def prod_plan(services: int) -> list[dict[str, Any]]:
    """The resources of prod's offline plan with ``services`` generated services."""
    _folder, file = services_stack(STACK, services)
    result = plan_stack(STACK, file)
    return export_document(STACK, result.resources)["deployment"]["resources"]


def time_to_port(runs: int) -> float:
    samples = []
    for _ in range(runs):
        with PolicyPackSession() as pack:
            samples.append(pack.startup_seconds)
    return statistics.median(samples)


def time_gate(resources: list[dict[str, Any]], runs: int) -> tuple[float, int, int]:
    samples, mandatory, advisory = [], 0, 0
    for _ in range(runs):
        began = time.perf_counter()
        report = run_gate(resources, policy_config=POLICY_CONFIG, stack=STACK)
        samples.append(time.perf_counter() - began)
        mandatory, advisory = report.mandatory, report.advisory
    return statistics.median(samples), mandatory, advisory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--services", type=int, nargs="+", default=[127, 1270])
    args = parser.parse_args()

    baseline = time_to_port(args.runs)
    print(f"policy gate benchmark (median of {args.runs} runs, Python {sys.version.split()[0]})")
    print(f"baseline: pack start to port (python -u -m pulumi.policy)  {baseline * 1000:8.0f} ms")
    print(
        f"{'services':>8} {'resources':>9} {'analyzed':>8} {'total':>9} {'minus start':>11} "
        f"{'per resource':>12} {'violations':>10}"
    )
    for services in args.services:
        resources = prod_plan(services)
        analyzed = sum(1 for r in resources if r["custom"])
        total, mandatory, advisory = time_gate(resources, args.runs)
        work = total - baseline
        print(
            f"{services:>8} {len(resources):>9} {analyzed:>8} {total * 1000:>7.0f}ms "
            f"{work * 1000:>9.0f}ms {work / len(resources) * 1000:>10.2f}ms "
            f"{mandatory:>4}M/{advisory}A"
        )


if __name__ == "__main__":
    main()
