"""The offline plan: run the real program under Pulumi's mocks and write what it would create.

No Pulumi CLI, no cloud credentials: the stack file is read the way the CLI reads it, the
config is validated by the same ``load`` the program uses, the same ``declare`` registers the
resources against a recording mock monitor, and the result is written as a
`pulumi stack export`-shaped file, one YAML per Kubernetes object, Helm values, a policy
report from the real policy pack, and a Markdown summary for pull requests.
"""

from __future__ import annotations

import base64
import graphlib
import heapq
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra import stack_file
from infra.engine_rules import EngineRuleError, check_engine_rules
from infra.export_format import (
    CLUSTER_TYPES,
    REDACTED,
    RESOURCE_REF_SIG,
    SECRET_SIG,
    SIG_KEY,
    UNKNOWN_SENTINEL,
    cluster_of,
    is_secret_envelope,
)
from infra.mocks import MeshlessMocks, RecordedResource, RecordingMonitor
from infra.program import REPO_ROOT, StackPlan, declare, load

__all__ = [
    "CLUSTER_TYPES",
    "PROJECT",
    "PlanInputError",
    "PlanResult",
    "cluster_of",
    "export_document",
    "read_stack_file",
    "record_program",
    "stack_file_locator",
    "write_plan",
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
    stack: str, stack_plan: StackPlan, values: dict[str, str]
) -> list[RecordedResource]:
    """Register every resource of the program against a recording mock monitor."""
    mocks = MeshlessMocks()
    monitor = RecordingMonitor(mocks)
    # A fresh runtime per plan, so several plans in one process (tests, benchmarks) each get
    # their own root Stack resource and no leftover outputs of the previous one.
    runtime_settings.ROOT.set(None)
    runtime_settings.SETTINGS.rpc_manager.clear()
    runtime_settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_all_config(values)
    pulumi_mocks.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)

    def program() -> None:
        declare(stack_plan)

    _sync_await(run_pulumi_func(program))
    if monitor.duplicates:
        raise PlanInputError(
            f"Duplicate resource URN '{monitor.duplicates[0]}'; try giving it a unique name "
            "(the Pulumi engine refuses two resources with one URN: two entries of the stack "
            "config produce the same resource name)"
        )
    return list(monitor.recorded.values())


def _json_value(value: Any) -> Any:
    """Mock-monitor values in `pulumi stack export` form (secrets redacted, unknowns marked)."""
    if isinstance(value, dict):
        if is_secret_envelope(value):
            return {SIG_KEY: SECRET_SIG, "ciphertext": REDACTED}
        if value.get(SIG_KEY) == RESOURCE_REF_SIG:
            return value.get("urn", "")
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        # The engine's wire format (protobuf Struct) has only doubles; exports show integers.
        return int(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if type(value).__name__ == "Unknown":
        return UNKNOWN_SENTINEL
    return str(value)


def _ordered(resources: list[RecordedResource]) -> list[RecordedResource]:
    """Resources in a stable order that, like a real export, lists every resource after its
    parent, provider and dependencies (registration order under mocks varies run to run):
    among those ready, the smallest URN first. A cycle raises graphlib.CycleError rather than
    silently dropping the resources on it."""
    by_urn = {res.urn: res for res in resources}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for res in resources:
        needs = {res.parent, res.provider.rsplit("::", 1)[0], *res.dependencies}
        sorter.add(res.urn, *(urn for urn in needs if urn in by_urn and urn != res.urn))
    sorter.prepare()
    ready = list(sorter.get_ready())
    heapq.heapify(ready)
    ordered: list[RecordedResource] = []
    while ready:
        urn = heapq.heappop(ready)
        ordered.append(by_urn[urn])
        sorter.done(urn)
        for now_ready in sorter.get_ready():
            heapq.heappush(ready, now_ready)
    return ordered


def export_document(stack: str, resources: list[RecordedResource]) -> dict[str, Any]:
    """The plan in the shape of `pulumi stack export` (deployment version 3)."""
    entries = []
    try:
        ordered = _ordered(resources)
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1]) if len(exc.args) > 1 else str(exc)
        raise PlanInputError(
            f"resources depend on each other in a cycle, so no deployment order exists: {cycle}"
        ) from None
    for res in ordered:
        entry: dict[str, Any] = {"urn": res.urn, "custom": res.custom, "type": res.type}
        if res.id:
            entry["id"] = res.id
        entry["inputs"] = _json_value(res.inputs)
        entry["outputs"] = _json_value(res.outputs)
        if res.parent:
            entry["parent"] = res.parent
        if res.provider:
            entry["provider"] = res.provider
        # As `pulumi stack export` writes them (apitype.ResourceV3): present only when true.
        if res.protect:
            entry["protect"] = True
        if res.retain_on_delete:
            entry["retainOnDelete"] = True
        entry["dependencies"] = sorted(set(res.dependencies))
        if res.property_dependencies:
            entry["propertyDependencies"] = {
                k: sorted(set(v)) for k, v in sorted(res.property_dependencies.items())
            }
        entries.append(entry)
    return {
        "version": 3,
        "deployment": {
            "manifest": {"time": "offline-plan", "magic": "", "version": "meshless-offline-plan"},
            "resources": entries,
        },
    }


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-").lower()


# libyaml's emitter is an order of magnitude faster; at 1270 services writing the manifests
# was a quarter of the plan with the pure-Python one.
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump_yaml(data: Any, *, sort_keys: bool) -> str:
    return yaml.dump(data, Dumper=_YAML_DUMPER, sort_keys=sort_keys)


LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def write_manifests(resources: list[dict[str, Any]], directory: Path) -> int:
    """One YAML per Kubernetes object, one values file per Helm release and one user-data file
    per EC2 launch template; returns the count."""
    by_urn = {res["urn"]: res for res in resources}
    written = 0
    for res in resources:
        typ = res["type"]
        cluster = cluster_of(res, by_urn) or "_stack"
        inputs = res.get("inputs", {})
        if typ == LAUNCH_TEMPLATE and isinstance(inputs.get("userData"), str):
            # The node's user data as EC2 will hand it to cloud-init (MIME multi-part).
            name = f"launch-template-{_slug(res['urn'].rsplit('::', 1)[-1])}-user-data.mime"
            body = base64.b64decode(inputs["userData"]).decode("utf-8", errors="replace")
        elif not res["custom"] or not typ.startswith("kubernetes:"):
            continue
        elif typ == "kubernetes:helm.sh/v3:Release":
            name = f"helm-{_slug(inputs.get('name', 'release'))}-values.yaml"
            header = (
                f"# Helm release {inputs.get('name')} in {inputs.get('namespace')}: chart "
                f"{inputs.get('chart')} {inputs.get('version')} from "
                f"{(inputs.get('repositoryOpts') or {}).get('repo') or 'a local archive'}\n"
            )
            body = header + _dump_yaml(inputs.get("values", {}), sort_keys=True)
        elif "kind" in inputs and "metadata" in inputs:
            meta = inputs.get("metadata") or {}
            name = f"{_slug(inputs['kind'])}-{_slug(meta.get('namespace', 'cluster'))}-{_slug(meta.get('name', 'unnamed'))}.yaml"
            body = _dump_yaml(
                {
                    k: inputs[k]
                    for k in ("apiVersion", "kind", "metadata", "spec", "data")
                    if k in inputs
                },
                sort_keys=False,
            )
        else:
            continue
        target = directory / _slug(cluster) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
        written += 1
    return written


def write_plan(result: PlanResult, out_dir: Path) -> tuple[dict[str, Any], int]:
    """Write resources.json and manifests/ into a fresh out_dir; return the export document
    and how many manifest files were written."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "manifests").mkdir(parents=True)
    return _write_into(result, out_dir)


def _write_into(
    result: PlanResult,
    out_dir: Path,
    exported: Callable[[list[dict[str, Any]]], None] | None = None,
) -> tuple[dict[str, Any], int]:
    (out_dir / "manifests").mkdir(parents=True, exist_ok=True)
    document = export_document(result.stack, result.resources)
    if exported is not None:  # the gate starts on the resources while the files are written
        exported(document["deployment"]["resources"])
    (out_dir / "resources.json").write_text(
        json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    manifests = write_manifests(document["deployment"]["resources"], out_dir / "manifests")
    return document, manifests


def default_stack_file(stack: str) -> Path:
    return REPO_ROOT / f"Pulumi.{stack}.yaml"


def plan_stack(stack: str, stack_file: Path | None = None) -> PlanResult:
    """Read, validate (ConfigError/PlanInputError on a mistake) and record one stack."""
    values = read_stack_file(stack_file or default_stack_file(stack))
    stack_plan = load(values)
    resources = record_program(stack, stack_plan, values)
    try:
        check_engine_rules(resources)  # what the mocks accept but the engine refuses
    except EngineRuleError as exc:
        raise PlanInputError(
            f"{stack}: the Pulumi engine would refuse this program:\n" + "\n".join(exc.problems)
        ) from None
    return PlanResult(stack, stack_plan, resources)


@dataclass
class ReleaseChecks:
    """What the rendered releases or the version moves block on, and their summary section."""

    problems: list[str]
    markdown: str
    objects: int = 0


def render_releases(
    resources: list[dict[str, Any]],
    owners: dict[str, str | None],
    helm: Path,
    manifests: Path,
) -> ReleaseChecks:
    """Render every Cilium release (infra/chart_render.py), write its objects, check them."""
    from infra.chart_render import check_rendered, render_plan, write_rendered

    releases = render_plan(resources, owners, helm)
    written = write_rendered(releases, manifests)
    problems = [p for release in releases for p in check_rendered(release)]
    lines = ["## Rendered Cilium releases", ""]
    for release in releases:
        lines.append(
            f"- `{release.folder}`: chart {release.version}, {len(release.objects)} objects "
            f"rendered by Helm into `manifests/{release.folder}/`"
        )
    lines += [f"- ⛔ {problem}" for problem in problems]
    if releases and not problems:
        lines.append(
            "- every container image is a catalog digest, cilium-config has "
            'kube-proxy-replacement "true", no kube-proxy object'
        )
    return ReleaseChecks(problems, "\n".join(lines) + "\n\n", written)


def check_upgrades(
    base: list[dict[str, Any]] | None, head: list[dict[str, Any]], config: Any
) -> ReleaseChecks:
    """Version moves of the Cilium releases against a base plan (infra/upgrade.py)."""
    from infra.upgrade import upgrade_steps, upgrades_markdown

    if base is None:
        return ReleaseChecks([], "")
    reasons = {
        f"{c.name}-cilium-release": c.cilium_settings.downgrade_reason
        for c in config.clusters
        if c.cilium_settings.downgrade_reason
    }
    steps = upgrade_steps(base, head, reasons)
    return ReleaseChecks([p for s in steps for p in s.problems], upgrades_markdown(steps))


def release_checks(
    resources: list[dict[str, Any]],
    owners: dict[str, str | None],
    helm: Path,
    target: Path,
    base_dir: Path | None,
    config: Any,
) -> ReleaseChecks:
    """The releases rendered and checked, and their version moves against the base plan."""
    from infra.chart_render import RenderError

    try:
        rendered = render_releases(resources, owners, helm, target / "manifests")
    except RenderError as exc:
        raise PlanInputError(str(exc)) from None
    base = _base_resources(base_dir) if base_dir is not None else None
    upgrades = check_upgrades(base, resources, config)
    return ReleaseChecks(
        rendered.problems + upgrades.problems,
        rendered.markdown + upgrades.markdown,
        rendered.objects,
    )


@dataclass
class Comparison:
    """The plan against a base plan (`--compare`): resources, rendered objects, or why not."""

    diff: Any = None
    error: str | None = None
    base_resources: list[dict[str, Any]] | None = None
    objects_markdown: str = ""


def compare_with(base_dir: Path | None, target: Path) -> Comparison:
    from infra.diff import DiffInputError, compare_plans, load_plan
    from infra.objdiff import diff_rendered, objects_markdown

    if base_dir is None:
        return Comparison()
    try:
        return Comparison(
            diff=compare_plans(base_dir, target),
            base_resources=list(load_plan(base_dir, "base").resources.values()),
            objects_markdown=objects_markdown(diff_rendered(base_dir, target)),
        )
    except DiffInputError as exc:
        return Comparison(error=str(exc))


def _base_resources(base_dir: Path) -> list[dict[str, Any]] | None:
    """The base plan's resources for the upgrade rules; None when it has none to read (the
    comparison itself reports that)."""
    path = base_dir / "resources.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return list(document["deployment"]["resources"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _policy_config_for(stack: str, given: Path | None) -> Path | None:
    if given is not None:
        if not given.is_file():
            raise PlanInputError(f"{given}: no such policy config file")
        return given
    default = REPO_ROOT / "policies" / "config" / f"{stack}.json"
    return default if default.is_file() else None


def stack_file_locator(stack_file: Path, by_urn: dict[str, dict[str, Any]]) -> Any:
    """violation → the stack file line of the config key behind it, the file named relative
    to the repository (as GitHub annotations want it) when it lies inside."""
    from infra.stack_lines import StackFileIndex

    path = stack_file.resolve()
    display = str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
    index = StackFileIndex(path, display)

    def locate(violation: Any) -> Any:
        res = by_urn.get(violation.urn)
        return index.locate(cluster_of(res, by_urn), violation.policy_name) if res else None

    return locate


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
    target = out_dir or (REPO_ROOT / "out" / stack)
    with EarlyPack(policy_file, stack=stack, project=PROJECT) as early:
        result = plan_stack(stack, stack_file)
        _check_target(target)
        done = _write_staged(result, target, early, policy_file, compare, upgrade_from, helm)
    return _report(stack, stack_file, target, done, console)


def _write_staged(
    result: PlanResult,
    target: Path,
    early: Any,
    policy_file: Path | None,
    compare: Path | None,
    upgrade_from: Path | None,
    helm: Any,
) -> _Written:
    # Everything is written into a fresh folder beside the target and moved into place only
    # once every step (renders, gate, flows) has run: an error leaves the old plan untouched.
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise PlanInputError(f"{target}: cannot write the plan there ({exc.strerror})") from None
    try:
        done = _write_all(
            result, staging, early, policy_file, compare, upgrade_from or compare, helm
        )
        _replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return done


def _report(stack: str, stack_file: Path | None, target: Path, done: _Written, console: Any) -> int:
    """The console's account of a written plan, and the exit code."""
    from infra.findings_log import emit_annotations, print_findings
    from infra.summary import verdict_line

    failed_flows = [r for r in done.flows if not r.ok]
    if console is not None:
        console.print(
            verdict_line(done.inputs, markdown=False), highlight=False, soft_wrap=True, markup=False
        )
        locate = stack_file_locator(stack_file or default_stack_file(stack), done.by_urn)
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
    by_urn: dict[str, dict[str, Any]]
    flows: list[Any]
    blocking: list[str]


def _write_all(
    result: PlanResult,
    target: Path,
    early: Any,
    policy_file: Path | None,
    compare: Path | None,
    upgrade_from: Path | None,
    helm: Any,
) -> _Written:
    """Every output file of the plan into ``target`` (the staging folder)."""
    # Imported here: the gate starts the policy pack, the diff and graph are only for output.
    from components.flows.check import flows_markdown
    from infra.flows import check_plan_flows
    from infra.gate import GateError
    from infra.graph import render_mermaid
    from infra.summary import SummaryInputs, render_summary

    stack = result.stack
    document, manifests = _write_into(result, target, early.start_gate)
    resources = document["deployment"]["resources"]
    by_urn = {res["urn"]: res for res in resources}
    owners = {res["urn"]: cluster_of(res, by_urn) for res in resources}
    releases = release_checks(resources, owners, helm, target, upgrade_from, result.plan.config)
    manifests += releases.objects

    try:
        report = early.gate_report()  # analyzed while the files were written (pack_early.py)
    except GateError as exc:
        raise PlanInputError(str(exc)) from None
    report_json = report.to_json()
    (target / "policy-report.json").write_text(
        json.dumps(report_json, indent=2) + "\n", encoding="utf-8"
    )

    comparison = compare_with(compare, target)
    names = [c.name for c in result.plan.config.clusters]
    mermaid = render_mermaid(resources, base=comparison.base_resources, clusters=names)
    (target / "graph.mmd").write_text(mermaid.rstrip() + "\n", encoding="utf-8")
    inputs = SummaryInputs(
        stack=stack,
        config=result.plan.config,
        resources=resources,
        cluster_of=owners,
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
    # Expected flows (flows.yaml beside each cluster's policies) against the recorded CNPs.
    flow_results = check_plan_flows(result.plan, resources)
    failed_flows = [r for r in flow_results if not r.ok]
    (target / "flows-report.json").write_text(
        json.dumps(
            [{"ok": r.ok, "cluster": r.cluster, "message": r.message} for r in flow_results],
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    summary += "\n" + flows_markdown(flow_results) if flow_results else ""
    if failed_flows:
        verdict, _, rest = summary.partition("\n")
        summary = (
            f"{verdict}\n\n❌ **{len(failed_flows)} expected flow(s) not as expected**: "
            f"see Expected flows below.\n{rest}"
        )
    (target / "summary.md").write_text(summary, encoding="utf-8")
    return _Written(report, inputs, by_urn, flow_results, list(releases.problems))
