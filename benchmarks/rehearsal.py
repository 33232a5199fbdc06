"""How long the deploy rehearsal takes on prod's plan grown to N CiliumNetworkPolicies.

Plans prod once (under mocks), copies its policies N times per cluster, and times
`Rehearsal(...).findings()` and `.phases()` the way the pack and the summary call them.
A script that prints figures, not a test: `uv run python benchmarks/rehearsal.py [--copies 100 1000]`.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any

from infra.export_format import export_document
from infra.plan import plan_stack
from infra.rehearsal import load_rehearsal

REPO = Path(__file__).resolve().parents[1]


def grown(resources: list[dict[str, Any]], copies: int) -> list[dict[str, Any]]:
    policies = [r for r in resources if r["type"].startswith("kubernetes:cilium.io/")]
    extra = []
    for i in range(copies):
        for policy in policies:
            clone = copy.deepcopy(policy)
            clone["urn"] += f"-{i}"
            extra.append(clone)
    return resources + extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args()
    module = load_rehearsal()
    result = plan_stack("prod", REPO / "Pulumi.prod.yaml")
    base = export_document("prod", result.resources)["deployment"]["resources"]
    for copies in args.copies:
        resources = grown(base, copies)
        nodes = [
            module.Node(
                r["urn"],
                r["type"],
                r["urn"].rsplit("::", 1)[-1],
                r.get("inputs") or {},
                r["provider"].rsplit("::", 1)[0] if r.get("provider") else None,
                tuple(r.get("dependencies") or ()),
            )
            for r in resources
        ]
        start = time.perf_counter()
        rehearsal = module.Rehearsal(nodes)
        findings = rehearsal.findings()
        rehearsal.phases()
        took = time.perf_counter() - start
        print(
            f"{len(nodes):>6} resources: rehearsal {took * 1000:8.1f} ms "
            f"({took / len(nodes) * 1e6:.1f} µs per resource), {len(findings)} finding(s)"
        )


if __name__ == "__main__":
    main()
