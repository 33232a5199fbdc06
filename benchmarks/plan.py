"""Offline plan wall time per stack, next to the floor of merely importing the SDKs it uses.

Both are measured as fresh processes in the same run (median of --repeat runs), so the ratio
is comparable across machines even when the absolute seconds are not. Prints; asserts nothing.

    uv run python benchmarks/plan.py [--repeat 3] [--stacks staging prod]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# What the program imports before it registers anything: the SDK modules of every resource.
IMPORT_FLOOR = (
    "import pulumi, pulumi_aws.ec2, pulumi_aws.eks, pulumi_aws.iam, pulumi_aws.kms, "
    "pulumi_gcp.compute, pulumi_gcp.container, pulumi_gcp.kms, pulumi_kubernetes.helm.v3, "
    "pulumi_kubernetes.apiextensions, pydantic"
)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - start


def median_of(command: list[str], repeat: int) -> float:
    return statistics.median(timed(command) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stacks", nargs="+", default=["staging", "prod"])
    parser.add_argument("--stack-file", type=Path, help="plan this file for every stack instead")
    args = parser.parse_args()

    floor = median_of([sys.executable, "-c", IMPORT_FLOOR], args.repeat)
    print(f"import floor (SDKs only): {floor:6.2f} s  (median of {args.repeat})")
    print(f"{'stack':<10} {'plan s':>8} {'floor s':>8} {'ratio':>6}  resources")
    for stack in args.stacks:
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "infra.cli", "plan", "--stack", stack, "--out", tmp]
            if args.stack_file:
                command += ["--stack-file", str(args.stack_file)]
            seconds = median_of(command, args.repeat)
            resources = (Path(tmp) / "resources.json").read_text().count('"urn":')
        print(f"{stack:<10} {seconds:8.2f} {floor:8.2f} {seconds / floor:6.2f}  {resources}")


if __name__ == "__main__":
    main()
