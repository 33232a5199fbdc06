"""The plan's Markdown summary, written to read well as a GitHub pull-request comment.

Order: the verdict with counts that add up, what changes against the base plan, the policy
findings once (new ones marked, resolved ones struck), traffic-policy warnings, the Cilium
end-of-patches warning once, the clusters (in stack-file order, internal types apart), and the
call graph. Each section is a small function returning lines, and ``render_summary`` lists
them in order, so a new section is one function and one line.

Every piece of text from elsewhere (policy messages, names, warnings) goes through
``infra.render.md_text``/``md_code``: placeholders such as ``<project>`` stay visible after
GitHub's sanitiser because they sit in code spans, and code spans are never entity-escaped.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from components.catalog import DEFAULT_CHART_VERSION, next_minor
from infra.config import StackConfig
from infra.export_format import StackExport
from infra.findings_log import short_urn
from infra.rehearsal import creation_phases
from infra.render import md_code, md_text, split_finding

if TYPE_CHECKING:
    from infra.diff import PlanDiff

__all__ = [
    "SummaryInputs",
    "artifact_link",
    "is_internal_type",
    "render_summary",
    "verdict_line",
]

_FOLD_AFTER = 10
# A comment holds 65,536 characters; past this many findings the rest are counted, not listed
# (policy-report.json in the artifact has them all).
_MAX_FINDINGS = 100
_STACK = "(stack)"


@dataclass(frozen=True)
class SummaryInputs:
    """Everything the summary is made from."""

    stack: str
    config: StackConfig
    export: StackExport
    report: dict[str, Any] | None
    warnings: list[str]
    diff: PlanDiff | None
    diff_error: str | None
    mermaid: str | None
    manifests: int
    # The rendered Cilium releases, their object diff and version moves (infra/chart_render.py,
    # infra/objdiff.py, infra/upgrade.py), and how many of their checks block the plan.
    releases_markdown: str = ""
    release_problems: int = 0

    @property
    def resources(self) -> list[dict[str, Any]]:
        return self.export.resources

    @property
    def cluster_of(self) -> Mapping[str, str | None]:
        return self.export.owners


def is_internal_type(type_token: str) -> bool:
    """Our own component resources, providers and the stack: structure, not cloud objects."""
    return type_token.startswith(("meshless:", "pulumi:providers:", "pulumi:pulumi:"))


def artifact_link(stack: str, env: Mapping[str, str] | None = None) -> str:
    """Where a reviewer finds the whole plan: the workflow run's artifact on GitHub Actions
    (GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_RUN_ID), else the local folder."""
    env = os.environ if env is None else env
    server, repo, run = (
        env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    if server and repo and run:
        url = f"{server.rstrip('/')}/{repo}/actions/runs/{run}#artifacts"
        return f"the [{md_code(f'plan-{stack}', table=False)} artifact]({url}) of this run"
    return f"{md_code(f'out/{stack}/', table=False)} (`resources.json`, `manifests/`)"


def _fold(title: str, lines: list[str], count: int) -> list[str]:
    if count <= _FOLD_AFTER:
        return [*lines, ""]
    return ["<details>", f"<summary><b>{title}</b></summary>", "", *lines, "", "</details>", ""]


# --- sections ------------------------------------------------------------------------------


def _owners(s: SummaryInputs) -> Counter[str]:
    return Counter(s.cluster_of.get(r["urn"]) or _STACK for r in s.resources)


def verdict_line(s: SummaryInputs, *, markdown: bool = True) -> str:
    """The verdict and the counts, for the comment (Markdown) or a terminal (plain)."""

    def code(text: str) -> str:
        return md_code(text, table=False) if markdown else text

    def bold(text: str) -> str:
        return f"**{text}**" if markdown else text

    owners = _owners(s)
    parts = [f"{owners[c.name]} in {code(c.name)}" for c in s.config.clusters]
    outside = Counter(r["type"] for r in s.resources if not s.cluster_of.get(r["urn"]))
    if outside:
        kinds = ", ".join(code(t) for t in sorted(outside))
        parts.append(f"{sum(outside.values())} outside the clusters ({kinds})")
    counts = f"{len(s.resources)} resources: " + ", ".join(parts) + "."
    name = f"meshless plan {code(s.stack)}"
    if s.report is None:
        return f"⚪ {bold(f'{name}: policy gate not run.')} {counts}"
    mandatory, advisory = s.report.get("mandatory", 0), s.report.get("advisory", 0)
    if mandatory:
        head = (
            f"❌ {bold(f'{name}: blocked')} by {mandatory} mandatory policy finding(s) "
            f"({advisory} advisory)."
        )
    elif s.release_problems:
        head = (
            f"⛔ {bold(f'{name}: blocked')} by {s.release_problems} Cilium release check(s): "
            "see the rendered releases and version changes."
        )
    else:
        head = f"✅ {bold(f'{name}: passes the policy gate')} ({advisory} advisory finding(s))."
    return f"{head} {counts}"


def _verdict(s: SummaryInputs) -> list[str]:
    return [verdict_line(s), ""]


def _intro(s: SummaryInputs) -> list[str]:
    return [
        f"Offline plan of stack `{s.stack}` ({md_text(s.config.environment, table=False)}) under "
        f"Pulumi mocks: what `pulumi up --stack {s.stack}` would create. {s.manifests} Kubernetes "
        f"objects and Helm values files are in {artifact_link(s.stack)}. Default Cilium chart: "
        f"{DEFAULT_CHART_VERSION}.",
        "",
    ]


def _changes(s: SummaryInputs) -> list[str]:
    if s.diff is None and s.diff_error is None:
        return []
    lines = ["## What changes", ""]
    if s.diff_error is not None:
        return [*lines, f"_No comparison: {md_text(s.diff_error, table=False)}_", ""]
    assert s.diff is not None
    return [*lines, s.diff.to_markdown(title=None, violations=False).strip(), ""]


def _finding_row(v: Mapping[str, Any], mark: str, struck: bool) -> str:
    urn = str(v.get("urn") or "")
    text = split_finding(str(v.get("message", "")), urn)
    cells = [
        str(v.get("enforcement") or ""),
        md_code(str(v.get("policy", ""))),
        md_code(short_urn(urn)) if urn else "(stack)",
        md_text(text.message),
        md_text(text.fix) if text.fix else "",
    ]
    if struck:
        cells = [f"~~{c}~~" if c else c for c in cells]
    return f"| {mark} | " + " | ".join(cells) + " |"


def _findings(s: SummaryInputs) -> list[str]:
    current = list((s.report or {}).get("violations") or [])
    resolved = list(s.diff.resolved_violations) if s.diff is not None else []
    if not current and not resolved:
        return []
    new = {(v.policy, v.urn, v.message) for v in s.diff.new_violations} if s.diff else set()
    rows = [
        "| | level | policy | resource | message | fix |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for v in current[:_MAX_FINDINGS]:
        is_new = (v.get("policy"), v.get("urn") or "", v.get("message")) in new
        rows.append(_finding_row(v, "🆕 new" if is_new else "", struck=False))
    for r in resolved[:_MAX_FINDINGS]:
        rows.append(
            _finding_row(
                {
                    "policy": r.policy,
                    "urn": r.urn,
                    "message": r.message,
                    "enforcement": r.enforcement,
                },
                "✔️ resolved",
                struck=True,
            )
        )
    title = (
        f"## Policy findings ({len(current)}"
        + (f", {len(resolved)} resolved" if resolved else "")
        + ")"
    )
    hidden = max(0, len(current) - _MAX_FINDINGS) + max(0, len(resolved) - _MAX_FINDINGS)
    more = [f"_…and {hidden} more in `policy-report.json`._", ""] if hidden else []
    return [title, "", *_fold("Findings", rows, len(rows) - 2), *more]


def _warnings(s: SummaryInputs) -> list[str]:
    if not s.warnings:
        return []
    items = [f"- {md_text(w, table=False)}" for w in s.warnings]
    return [f"## Traffic-policy warnings ({len(items)})", "", *_fold("Warnings", items, len(items))]


def _end_of_patches(s: SummaryInputs) -> list[str]:
    old = [
        (c.name, c.cilium_settings.version)
        for c in s.config.clusters
        if c.cilium_settings is not None and c.cilium_settings.version.startswith("1.16")
    ]
    if not old:
        return []
    which = ", ".join(f"{md_code(name, table=False)} ({version})" for name, version in old)
    target = next_minor(old[0][1])
    move = (
        f"change, `cilium.version: {target}`, when ready."
        if target
        else "change when ready (add the next minor to the catalog first: `meshless digests`)."
    )
    return [
        "> [!WARNING]",
        f"> Cilium 1.16 gets no upstream patches any more: {which}. Move with one reviewed {move}",
        "",
    ]


def _cluster_notes(cluster: Any) -> list[str]:
    notes = []
    if cluster.cloud == "eks":
        notes.append(
            "EKS without bootstrap add-ons: no kube-proxy, no VPC CNI; Cilium in ENI mode "
            "replaces both, CoreDNS is added after Cilium is ready."
        )
    elif cluster.mode == "cilium":
        notes.append(
            "GKE mode `cilium`: GKE keeps its own kube-proxy on every node and it cannot be "
            "removed; Cilium's kube-proxy replacement handles Service traffic, so kube-proxy's "
            "rules go unused."
        )
    else:
        notes.append(
            "GKE mode `dataplane-v2`: Google runs Cilium without kube-proxy; no Cilium release, "
            "CiliumNetworkPolicy, L7 rule or Envoy of ours on this cluster."
        )
    settings = cluster.cilium_settings
    if settings is not None:
        notes.append(f"Cilium chart {settings.version}, profile `{settings.profile}`.")
        if settings.image_mirror is not None:
            mirrors = ", ".join(sorted(settings.image_mirror.registries.values()))
            notes.append(
                f"Images pulled from the mirror ({mirrors}) by the catalog's digests; "
                "`uv run meshless images` lists what must be copied there first."
            )
        if settings.hubble.relay:
            notes.append(
                "Hubble relay and UI on; Hubble's flow visibility costs agent CPU and memory in "
                "proportion to traffic (metrics set per environment)."
            )
    return notes


def _type_table(name: str, counts: Counter[str]) -> list[str]:
    cloud = {t: n for t, n in counts.items() if not is_internal_type(t)}
    internal = {t: n for t, n in counts.items() if is_internal_type(t)}
    rows = ["| resource type | count |", "| --- | ---: |"]
    rows += [f"| {md_code(t)} | {n} |" for t, n in sorted(cloud.items())]
    lines = (
        _fold(f"{sum(cloud.values())} resources of {name} by type", rows, len(cloud))
        if cloud
        else []
    )
    if internal:
        listed = ", ".join(f"{md_code(t, table=False)} x{n}" for t, n in sorted(internal.items()))
        lines += [
            f"Plus {sum(internal.values())} internal (components and providers): {listed}.",
            "",
        ]
    return lines


def _clusters(s: SummaryInputs) -> list[str]:
    by_cluster: dict[str, Counter[str]] = {}
    for res in s.resources:
        owner = s.cluster_of.get(res["urn"]) or _STACK
        by_cluster.setdefault(owner, Counter())[res["type"]] += 1
    lines = ["## Clusters", ""]
    for cluster in s.config.clusters:
        counts = by_cluster.get(cluster.name, Counter())
        lines += [
            f"### {md_text(cluster.name, table=False)} ({cluster.cloud}): {sum(counts.values())} resources",
            "",
        ]
        lines += [f"- {note}" for note in _cluster_notes(cluster)] + [""]
        lines += _type_table(cluster.name, counts)
    return lines


def _creation_phases(s: SummaryInputs) -> list[str]:
    """The deploy rehearsal's creation phases per cluster (policies/rules/rehearsal.py)."""
    lines = [
        "## Creation order (deploy rehearsal)",
        "",
        "What `pulumi up` starts together, phase by phase; the `deploy-rehearsal` policy checks "
        "every wait in this order.",
        "",
    ]
    if not any(r["type"] == "meshless:deploy:Deployer" for r in s.resources):
        lines += [
            "No `meshless:deployer` in the stack: whether the deploy runner can reach each API "
            "endpoint was not checked.",
            "",
        ]
    for cluster, phases in creation_phases(s.resources).items():
        lines += [f"**{md_text(cluster, table=False)}**", ""]
        lines += [
            f"{i}. {', '.join(md_code(p) for p in phase)}" for i, phase in enumerate(phases, 1)
        ]
        lines.append("")
    return lines


def _releases(s: SummaryInputs) -> list[str]:
    return [s.releases_markdown.strip(), ""] if s.releases_markdown.strip() else []


def _graph(s: SummaryInputs) -> list[str]:
    if not s.mermaid:
        return []
    return [
        "## Who may call whom",
        "",
        "From the traffic policies as planned: callers → callees with ports and L7 rules, "
        "FQDN/CIDR egress, and the entities that may call in. With a base plan, green arrows "
        "are added and red dashed ones removed.",
        "",
        "```mermaid",
        s.mermaid.strip(),
        "```",
        "",
    ]


SECTIONS = (
    _verdict,
    _intro,
    _changes,
    _releases,
    _findings,
    _warnings,
    _end_of_patches,
    _clusters,
    _creation_phases,
    _graph,
)


def render_summary(inputs: SummaryInputs) -> str:
    lines: list[str] = []
    for section in SECTIONS:
        lines += section(inputs)
    return "\n".join(lines).rstrip() + "\n"
