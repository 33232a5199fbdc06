"""Where one offline plan spends its time: the phases of `meshless plan`, in wall and CPU seconds.

    python benchmarks/plan_phases.py [--stack prod] [--services 1270]

Writes N generated services (benchmarks/generate_services.py, as plan_services.py does; 0 plans
the stack as it is), then runs one `meshless plan` in a fresh process whose phases are wrapped
with clocks: the imports, loading the config, recording the program, and each step after it
(the export, the flow check, the manifest writer's finish, the Helm renders, the gate, the
folder swap). Prints each phase's start and end since the process began, its wall seconds and
the plan process's CPU seconds over that span (all its threads: the gate and the renders run
beside the flow check). One run: compare figures within it, not across runs.
"""

from __future__ import annotations

import argparse
import functools
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_BEGAN = time.perf_counter()  # before any import of the plan's own modules (in _child)

REPO = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Clock:
    """Phases as (name, start, end, CPU seconds over the span), in the order they end."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, float, float, float]] = []

    def span(self, name: str, start: float, cpu: float) -> None:
        self.phases.append((name, start, time.perf_counter() - _BEGAN, _cpu() - cpu))

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        inner: Callable[..., Any] = getattr(owner, attribute)

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter() - _BEGAN, _cpu()
            try:
                return inner(*args, **kwargs)
            finally:
                self.span(name, start, cpu)

        setattr(owner, attribute, timed)

    def table(self) -> str:
        lines = [f"{'phase':34} {'start s':>8} {'end s':>8} {'wall s':>8} {'CPU s':>8}"]
        for name, start, end, cpu in sorted(self.phases, key=lambda p: p[1]):
            lines.append(f"{name:34} {start:8.2f} {end:8.2f} {end - start:8.2f} {cpu:8.2f}")
        return "\n".join(lines)


def _child(stack: str, stack_file: Path, out: Path) -> int:
    """The plan itself, in this process, with its phases wrapped."""
    # This folder's migrate.py would shadow the repository's migrate package.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    clock = _Clock()
    cpu = _cpu()
    import infra.cli as cli
    import infra.flows
    import infra.manifest_stream
    import infra.plan
    import infra.release_checks

    clock.span("imports (CLI, SDK, components)", 0.0, cpu)
    for owner, attribute, name in [
        (infra.plan, "load", "config load (traffic, flows)"),
        (infra.plan, "_recorded", "recording (program under mocks)"),
        (infra.plan, "_write_all", "everything after the recording"),
        (infra.plan, "export_document", "  export document"),
        (infra.plan, "write_export", "  resources.json"),
        (infra.flows, "check_plan_flows", "  flow check"),
        (infra.manifest_stream.ManifestStream, "finish", "  manifest writer finish"),
        (infra.release_checks, "release_checks", "  Helm renders (thread)"),
        (infra.plan, "_gate", "  gate (thread)"),
        (infra.plan, "_replace", "folder swap"),
    ]:
        clock.wrap(owner, attribute, name)
    start, cpu = time.perf_counter() - _BEGAN, _cpu()
    argv = ["plan", "--stack", stack, "--stack-file", str(stack_file), "--out", str(out)]
    try:
        cli.app(argv, prog_name="meshless")
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    clock.span("whole plan after the imports", start, cpu)
    print(clock.table())
    print(f"exit {code}; {time.perf_counter() - _BEGAN:.2f} s in all, {_cpu():.2f} s of CPU")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--services", type=int, default=1270)
    parser.add_argument("--child", nargs=2, metavar=("STACK_FILE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.stack, Path(args.child[0]), Path(args.child[1]))
    sys.path.insert(0, str(Path(__file__).parent))
    from plan_services import services_stack

    target = REPO / f"Pulumi.{args.stack}.yaml"
    if args.services:
        _folder, target = services_stack(args.stack, args.services)
    out = REPO / "out" / "bench" / f"phases-{args.stack}-{args.services}"
    print(f"meshless plan --stack {args.stack} --stack-file {target.relative_to(REPO)}")
    command = [sys.executable, __file__, "--stack", args.stack, "--child", str(target), str(out)]
    return subprocess.run(command, cwd=REPO, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
