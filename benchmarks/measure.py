"""Plan, gate and floor of one stack file, side by side, as fresh processes in one run.

Shared by benchmarks/plan.py and benchmarks/plan_services.py. Each repeat runs the three in
turn (plan, then gate on the plan's resources.json, then the floor for the same resources), so
a machine that slows down mid-run slows all three alike; the figures are medians of the
repeats, and only their ratio compares across runs (absolute seconds drift by a third on a
shared machine).

- plan: `meshless plan` (program under mocks, writing, renders, the gate, flows, summary);
- gate: `meshless gate` on that plan's resources.json with the stack's policy config (its own
  interpreter start and imports included);
- floor: `benchmarks/floor.py N resources.json` (see there), the floor the ratio targets name;
- floor, GC paused: the same with `--gc-paused`, the collector treated as the plan treats it
  while it loads and records (components/gc_pause.py); its ratio (`plan/paused`) is the
  plan's own cost beyond the SDKs without the saving that pausing the collector brings;
- SDK with inputs: `--gc-paused --with-inputs`, the SDK alone registering each resource with
  the plan's own inputs (no program, gate, renders or files); its ratio (`plan/inputs`) is
  the plan's cost beyond what the SDK must spend on these properties, whoever declares them.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_PACK_MARK = "pulumi.policy"
_WRITER_MARK = "infra.manifest_stream"


@dataclass
class Run:
    seconds: float
    returncode: int
    # Peak resident set (VmHWM, MiB) of the process, of the policy pack and of the manifest
    # writer it started.
    peak_mib: float = 0.0
    pack_peak_mib: float = 0.0
    writer_peak_mib: float = 0.0
    stderr: str = ""
    # CPU seconds (user + system) of the whole process tree (exact: getrusage of the reaped
    # children), and of the pack and the writer alone (their last poll: up to 50 ms short).
    cpu_seconds: float = 0.0
    pack_cpu: float = 0.0
    writer_cpu: float = 0.0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text()
            found += [int(p) for p in text.split()]
    except OSError:
        pass
    return found


def _hwm_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (/proc/<pid>/stat fields 14 and 15), in seconds."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _tree_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _command_has(pid: int, mark: str) -> bool:
    try:
        return mark in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def run(command: list[str], *, rss: bool = False) -> Run:
    """Run ``command`` from the repository; with ``rss``, poll its, its policy pack's and its
    manifest writer's peak resident set (VmHWM only grows, so a poll every 50 ms misses at
    most the last 50 ms) and the CPU time of the pack and the writer."""
    start, cpu_before = time.perf_counter(), _tree_cpu()
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    peaks = {"plan": 0.0, "pack": 0.0, "writer": 0.0}
    cpu = {"pack": 0.0, "writer": 0.0}
    stop = threading.Event()

    roles: dict[int, str] = {}  # child pid -> "pack"/"writer", once its command shows it

    def role(child: int) -> str | None:
        # Only a match is remembered: just after fork a child still shows its parent's command.
        if child not in roles:
            for key, mark in (("pack", _PACK_MARK), ("writer", _WRITER_MARK)):
                if _command_has(child, mark):
                    roles[child] = key
        return roles.get(child)

    def poll() -> None:
        while not stop.is_set():
            peaks["plan"] = max(peaks["plan"], _hwm_mib(process.pid))
            for child in _children(process.pid):
                key = role(child)
                if key is not None:
                    peaks[key] = max(peaks[key], _hwm_mib(child))
                    cpu[key] = max(cpu[key], _cpu_seconds(child))
            stop.wait(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    if rss:
        poller.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    if rss:
        poller.join()
    return Run(
        seconds,
        process.returncode,
        peaks["plan"],
        peaks["pack"],
        peaks["writer"],
        stderr,
        cpu_seconds=_tree_cpu() - cpu_before,
        pack_cpu=cpu["pack"],
        writer_cpu=cpu["writer"],
    )


@dataclass
class SideBySide:
    resources: int
    plan: list[Run] = field(default_factory=list)
    gate: list[Run] = field(default_factory=list)
    floor: list[Run] = field(default_factory=list)
    paused: list[Run] = field(default_factory=list)
    inputs: list[Run] = field(default_factory=list)

    @staticmethod
    def median(runs: list[Run]) -> float:
        return statistics.median(r.seconds for r in runs)

    @property
    def ratio(self) -> float:
        return self.median(self.plan) / self.median(self.floor)

    @property
    def paused_ratio(self) -> float:
        return self.median(self.plan) / self.median(self.paused)

    @property
    def inputs_ratio(self) -> float:
        return self.median(self.plan) / self.median(self.inputs)

    def codes(self) -> list[int]:
        return sorted({r.returncode for r in self.plan})


HEADER = (
    f"{'plan':<14} {'resources':>9} {'plan s':>7} {'gate s':>7} {'floor s':>7} "
    f"{'plan/floor':>10} {'paused s':>8} {'plan/paused':>11} {'inputs s':>8} "
    f"{'plan/inputs':>11}  exit"
)


def row(label: str, result: SideBySide) -> str:
    return (
        f"{label:<14} {result.resources:>9} {result.median(result.plan):>7.2f} "
        f"{result.median(result.gate):>7.2f} {result.median(result.floor):>7.2f} "
        f"{result.ratio:>9.2f}x {result.median(result.paused):>8.2f} "
        f"{result.paused_ratio:>10.2f}x {result.median(result.inputs):>8.2f} "
        f"{result.inputs_ratio:>10.2f}x  {result.codes()}"
    )


def _succeeded(measured: Run, what: str) -> Run:
    """``measured``, if its process succeeded: the time of a run that failed part way is no
    floor to compare against."""
    if measured.returncode != 0:
        sys.stderr.write(measured.stderr[-3000:])
        raise SystemExit(f"the {what} run failed with exit {measured.returncode}")
    return measured


def side_by_side(
    stack: str, stack_file: Path | None, repeat: int, *, rss: bool = False
) -> SideBySide:
    """``repeat`` rounds of plan, gate and floor for one stack (file); medians via SideBySide."""
    python = sys.executable
    config = REPO / "policies" / "config" / f"{stack}.json"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "plan"
        plan = [python, "-m", "infra.cli", "plan", "--stack", stack, "--out", str(out)]
        if stack_file is not None:
            plan += ["--stack-file", str(stack_file)]
        result = SideBySide(resources=0)
        for _ in range(repeat):
            planned = run(plan, rss=rss)
            result.plan.append(planned)
            exported = out / "resources.json"
            if planned.returncode not in (0, 1) or not exported.exists():
                sys.stderr.write(planned.stderr[-3000:])
                raise SystemExit(f"plan of {stack} failed with exit {planned.returncode}")
            kept = Path(tmp) / "resources.json"
            kept.write_bytes(exported.read_bytes())
            result.resources = kept.read_text().count('"urn":')
            gate = [python, "-m", "infra.cli", "gate", str(kept)]
            if config.is_file():
                gate += ["--policy-config", str(config)]
            result.gate.append(run(gate))
            floor = [python, str(REPO / "benchmarks" / "floor.py"), str(result.resources)]
            result.floor.append(_succeeded(run([*floor, str(kept)]), "floor"))
            result.paused.append(_succeeded(run([*floor, "--gc-paused", str(kept)]), "paused"))
            inputs = run([*floor, "--gc-paused", "--with-inputs", str(kept)])
            result.inputs.append(_succeeded(inputs, "SDK with inputs"))
        return result


def peak_rss_line(result: SideBySide) -> str:
    plan = max(r.peak_mib for r in result.plan)
    pack = max(r.pack_peak_mib for r in result.plan)
    writer = max(r.writer_peak_mib for r in result.plan)
    return (
        f"peak RSS at {result.resources} resources: plan {plan:.0f} MiB, policy pack "
        f"{pack:.0f} MiB, manifest writer {writer:.0f} MiB"
    )


def cpu_line(result: SideBySide) -> str:
    """CPU seconds of the median plan round, whole tree and by process: beside its wall time
    it shows how much of the plan ran on both cores at once (a ratio near 2 is a full
    two-core machine, where a second process only helps by doing less work)."""
    runs = sorted(result.plan, key=lambda r: r.seconds)
    median = runs[len(runs) // 2]
    helpers = median.pack_cpu + median.writer_cpu
    return (
        f"CPU at {result.resources} resources (median round, {median.seconds:.2f} s wall): "
        f"{median.cpu_seconds:.2f} s in all = {median.cpu_seconds / median.seconds:.2f} cores; "
        f"policy pack {median.pack_cpu:.2f} s, manifest writer {median.writer_cpu:.2f} s, "
        f"plan process and Helm {median.cpu_seconds - helpers:.2f} s"
    )
