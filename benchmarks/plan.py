"""Offline plan wall time per stack, next to its gate and its floor (see benchmarks/floor.py).

Plan, gate and floor are fresh processes measured in turn in the same run (medians of
--repeat rounds, see benchmarks/measure.py), so the ratio plan/floor compares across runs
and machines even when the absolute seconds do not. Prints; asserts nothing.

    uv run python benchmarks/plan.py [--repeat 3] [--stacks staging prod]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from measure import HEADER, row, side_by_side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stacks", nargs="+", default=["staging", "prod"])
    parser.add_argument("--stack-file", type=Path, help="plan this file for every stack instead")
    args = parser.parse_args()

    print(f"medians of {args.repeat} rounds of plan, gate, floor (fresh processes, one run)")
    print(HEADER)
    for stack in args.stacks:
        print(row(stack, side_by_side(stack, args.stack_file, args.repeat)), flush=True)


if __name__ == "__main__":
    main()
