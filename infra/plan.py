"""The offline plan: run the real program under Pulumi's mocks and write what it would create.

No Pulumi CLI, no cloud credentials: the stack file is read the way the CLI reads it, the
config is validated by the same ``load`` the program uses, the same ``declare`` registers the
resources against a recording mock monitor, and the result is written as a
`pulumi stack export`-shaped file, one YAML per Kubernetes object, Helm values, a policy
report from the real policy pack, and a Markdown summary for pull requests.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.gc_pause import gc_paused
from infra import stack_file
from infra.engine_rules import EngineRuleError, check_engine_rules
from infra.export_format import (
    ExportError,
    StackExport,
    dump_json,
    export_document,
    write_export,
)
from infra.manifest_stream import ManifestError, ManifestStream
from infra.mocks import RecordedResource, run_recorded
from infra.program import REPO_ROOT, StackPlan, declare, load

__all__ = [
    "PROJECT",
    "PlanInputError",
    "PlanResult",
    "plan_stack",
    "read_stack_file",
    "record_program",
    "run",
    "stack_file_locator",
]

PROJECT = "meshless"


class PlanInputError(Exception):
    """A stack file that cannot be read: the message names the file and the fix."""


@dataclass
class PlanResult:
    stack: str
    plan: StackPlan
    resources: list[RecordedResource]


def read_stack_file(path: Path) -> dict[str, str]:
    """Config values as the Pulumi CLI hands them to a program (infra/stack_file.py)."""
    try:
        return stack_file.read_stack_file(path)
    except stack_file.StackFileError as exc:
        raise PlanInputError(str(exc)) from None


def record_program(
    stack: str,
    stack_plan: StackPlan,
    values: dict[str, str],
    on_record: Callable[[RecordedResource], None] | None = None,
) -> list[RecordedResource]:
    """Register every resource of the program against a recording mock monitor;
    ``on_record`` sees each resource as it is recorded."""
    monitor = run_recorded(
        lambda: declare(stack_plan),
        project=PROJECT,
        stack=stack,
        config=values,
        on_record=on_record,
    )
    if monitor.duplicates:
        raise PlanInputError(
            f"Duplicate resource URN '{monitor.duplicates[0]}'; try giving it a unique name "
            "(the Pulumi engine refuses two resources with one URN: two entries of the stack "
            "config produce the same resource name)"
        )
    return list(monitor.recorded.values())


def default_stack_file(stack: str) -> Path:
    return REPO_ROOT / f"Pulumi.{stack}.yaml"


def plan_stack(stack: str, stack_file: Path | None = None) -> PlanResult:
    """Read, validate (ConfigError/PlanInputError on a mistake) and record one stack."""
    values = read_stack_file(stack_file or default_stack_file(stack))
    return _recorded(stack, load(values), values)


def _recorded(
    stack: str,
    stack_plan: StackPlan,
    values: dict[str, str],
    on_record: Callable[[RecordedResource], None] | None = None,
) -> PlanResult:
    resources = record_program(stack, stack_plan, values, on_record)
    try:
        check_engine_rules(resources)  # what the mocks accept but the engine refuses
    except EngineRuleError as exc:
        raise PlanInputError(
            f"{stack}: the Pulumi engine would refuse this program:\n" + "\n".join(exc.problems)
        ) from None
    return PlanResult(stack, stack_plan, resources)


def _policy_config_for(stack: str, given: Path | None) -> Path | None:
    if given is not None:
        if not given.is_file():
            raise PlanInputError(f"{given}: no such policy config file")
        return given
    default = REPO_ROOT / "policies" / "config" / f"{stack}.json"
    return default if default.is_file() else None


def stack_file_locator(stack_file: Path, export: StackExport) -> Any:
    """violation → the stack file line of the config key behind it, the file named relative
    to the repository (as GitHub annotations want it) when it lies inside."""
    from infra.stack_lines import StackFileIndex

    path = stack_file.resolve()
    display = str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
    index = StackFileIndex(path, display)

    def locate(violation: Any) -> Any:
        if violation.urn not in export.by_urn:
            return None
        return index.locate(export.cluster_of(violation.urn), violation.policy_name)

    return locate


@dataclass
class _Job:
    """One plan's recorded program and what its output steps need."""

    result: PlanResult
    early: Any  # infra/pack_early.py EarlyPack: the pack, started while the program recorded
    policy_file: Path | None
    compare: Path | None
    upgrade_base: StackExport | None  # what the version moves start from
    compare_base: StackExport | None  # --compare's resources.json, when read already
    helm: Path
    manifests: ManifestStream  # the manifests, written while the program recorded


def run(
    stack: str,
    *,
    stack_file: Path | None = None,
    out_dir: Path | None = None,
    policy_config: Path | None = None,
    compare: Path | None = None,
    upgrade_from: Path | None = None,
    console: Any = None,
) -> int:
    """The whole offline plan of one stack. Returns the exit code (0 clean, 1 blocked by a
    mandatory violation or an expected flow the policies do not honour);
    raises ConfigError / PlanInputError for bad input (exit 2), before writing anything."""
    from infra.chart_render import RenderError, find_helm
    from infra.gate import GateError, load_policy_config
    from infra.pack_early import EarlyPack
    from infra.release_checks import upgrade_base

    check_stack_name(stack)
    policy_file = _policy_config_for(stack, policy_config)
    try:
        if policy_file is not None:
            load_policy_config(policy_file)  # unreadable config: fail before writing anything
    except GateError as exc:
        raise PlanInputError(str(exc)) from None
    try:
        helm = find_helm()  # before anything is written: no half plan without renders
    except RenderError as exc:
        raise PlanInputError(str(exc)) from None
    try:  # an explicit --upgrade-from that cannot be read fails before anything is written
        base = upgrade_base(upgrade_from or compare, required=upgrade_from is not None)
    except ExportError as exc:
        raise PlanInputError(str(exc)) from None
    target = out_dir or (REPO_ROOT / "out" / stack)
    values = read_stack_file(stack_file or default_stack_file(stack))
    stack_plan = load(values)  # a config mistake stops here: nothing written, no pack started
    _check_target(target)
    # The pack starts after the load, which has the second core parse the flows files
    # (components/yaml_prefetch.py); it is needed only once the program has recorded.
    with EarlyPack(policy_file, stack=stack, project=PROJECT) as early, _staged(target) as staging:
        with ManifestStream(staging / "manifests") as manifests:
            result = _recorded(stack, stack_plan, values, on_record=manifests.send)
            # Without --upgrade-from the upgrade base is --compare's plan: read it once.
            compare_base = base if upgrade_from is None else None
            job = _Job(result, early, policy_file, compare, base, compare_base, helm, manifests)
            # What the outputs build (flow verdicts, the gate's requests, the export's
            # indexes) mostly lives until the plan ends: with the collector on, the flow
            # check of 1270 services took 2.6 s instead of 1.5 (components/gc_pause.py).
            with gc_paused():
                done = _write_all(job, staging)
        _replace(staging, target)
    return _report(stack, stack_file, target, done, console)


@contextmanager
def _staged(target: Path) -> Iterator[Path]:
    # Everything is written into a fresh folder beside the target and moved into place only
    # once every step (recording, renders, gate, flows) has run: an error leaves the old plan
    # untouched and no half-written folder.
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise PlanInputError(f"{target}: cannot write the plan there ({exc.strerror})") from None
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _report(stack: str, stack_file: Path | None, target: Path, done: _Written, console: Any) -> int:
    """The console's account of a written plan, and the exit code."""
    from infra.findings_log import emit_annotations, print_findings
    from infra.summary import verdict_line

    failed_flows = [r for r in done.flows if not r.ok]
    if console is not None:
        console.print(
            verdict_line(done.inputs, markdown=False), highlight=False, soft_wrap=True, markup=False
        )
        locate = stack_file_locator(stack_file or default_stack_file(stack), done.export)
        if done.report.violations:
            print_findings(done.report, console, locate=locate)
        emit_annotations(done.report.violations, console.file, locate)
        if done.flows:
            console.print(
                f"expected flows: {len(done.flows)} checked, {len(failed_flows)} not as expected",
                highlight=False,
                markup=False,
            )
        for failed in failed_flows:
            console.print(f"flow: {failed.message}", highlight=False, soft_wrap=True, markup=False)
        console.print(
            f"wrote {target}/: resources.json, manifests/, policy-report.json, flows-report.json, summary.md, graph.mmd",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        for problem in done.blocking:
            console.print(f"blocked: {problem}", highlight=False, markup=False, soft_wrap=True)
    return 1 if done.report.mandatory or failed_flows or done.blocking else 0


_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def check_stack_name(stack: str) -> None:
    """A stack name as Pulumi allows it (letters, digits, - _ .): it also names files and the
    out/<stack> folder, so nothing like ../ may reach a path."""
    if not _STACK_NAME.match(stack) or stack in (".", ".."):
        raise PlanInputError(
            f"--stack {stack[:80]!r} is not a stack name; use letters, digits, '-', '_' and "
            "'.' (e.g. staging, prod)"
        )


def _check_target(target: Path) -> None:
    """The plan replaces its output folder whole, so it only ever replaces a previous plan."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise PlanInputError(f"{target}: exists and is not a folder; pick another --out")
    if target.is_dir() and any(target.iterdir()) and not (target / "resources.json").is_file():
        raise PlanInputError(
            f"{target}: a folder that is not a previous plan (no resources.json); the plan "
            "replaces its output folder whole, so pick an empty or new --out"
        )


def _replace(staging: Path, target: Path) -> None:
    """Move the finished plan into place (rename on the same file system)."""
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    staging.rename(target)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


@dataclass
class _Written:
    """What the console needs from a plan written into its staging folder."""

    report: Any
    inputs: Any
    export: StackExport
    flows: list[Any]
    blocking: list[str]


def _dump(path: Path, data: Any) -> None:
    path.write_bytes(dump_json(data))


def _gate(job: _Job, export: StackExport) -> Any:
    """The policy pack's report on the plan (the pack was started while the program recorded)."""
    from infra.gate import GateError, run_gate

    try:
        pack = job.early.session()  # infra/pack_early.py
        return run_gate(
            export.resources,
            policy_config=job.policy_file,
            stack=job.result.stack,
            project=PROJECT,
            pack=pack,
        )
    except GateError as exc:
        raise PlanInputError(str(exc)) from None


def _write_all(job: _Job, target: Path) -> _Written:
    """Every output file of the plan into ``target`` (the staging folder)."""
    # Imported here: the gate starts the policy pack, the diff and graph are only for output.
    from components.flows.check import flows_markdown
    from infra.chart_render import RenderError
    from infra.compare import compare_with
    from infra.diff import plan_in_memory
    from infra.flows import check_plan_flows
    from infra.graph import render_mermaid
    from infra.release_checks import release_checks
    from infra.summary import SummaryInputs, render_summary

    result, stack = job.result, job.result.stack
    try:
        document = export_document(stack, result.resources)
    except ExportError as exc:
        raise PlanInputError(str(exc)) from None
    export = StackExport(document["deployment"]["resources"])
    # The gate (mostly the pack's process on the second core, this thread waiting on gRPC) and
    # the Helm renders (subprocesses) run beside the writing below; each result is awaited
    # where it is first needed, and every thread has ended before this function returns.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="plan") as pool:
        gate = pool.submit(_gate, job, export)
        renders = pool.submit(
            release_checks, export, job.helm, target, job.upgrade_base, result.plan.config
        )
        write_export(target / "resources.json", document)
        flow_results = check_plan_flows(result.plan, export)
        try:
            manifests = job.manifests.finish(export)
        except ManifestError as exc:
            raise PlanInputError(str(exc)) from None
        try:
            releases = renders.result()
        except RenderError as exc:
            raise PlanInputError(str(exc)) from None
        manifests += releases.objects
        report = gate.result()
    report_json = report.to_json()
    _dump(target / "policy-report.json", report_json)

    head = plan_in_memory(export, report_json, target)
    comparison = compare_with(job.compare, head, target, job.compare_base)
    names = [c.name for c in result.plan.config.clusters]
    mermaid = render_mermaid(export, base=comparison.base, clusters=names)
    (target / "graph.mmd").write_text(mermaid.rstrip() + "\n", encoding="utf-8")
    inputs = SummaryInputs(
        stack=stack,
        config=result.plan.config,
        export=export,
        report=report_json,
        warnings=result.plan.warnings,
        diff=comparison.diff,
        diff_error=comparison.error,
        mermaid=mermaid,
        manifests=manifests,
        releases_markdown=comparison.objects_markdown + releases.markdown,
        release_problems=len(releases.problems),
    )
    summary = render_summary(inputs)
    failed_flows = [r for r in flow_results if not r.ok]
    _dump(
        target / "flows-report.json",
        [{"ok": r.ok, "cluster": r.cluster, "message": r.message} for r in flow_results],
    )
    summary += "\n" + flows_markdown(flow_results) if flow_results else ""
    if failed_flows:
        verdict, _, rest = summary.partition("\n")
        summary = (
            f"{verdict}\n\n❌ **{len(failed_flows)} expected flow(s) not as expected**: "
            f"see Expected flows below.\n{rest}"
        )
    (target / "summary.md").write_text(summary, encoding="utf-8")
    return _Written(report, inputs, export, flow_results, list(releases.problems))
