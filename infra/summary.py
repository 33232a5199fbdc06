"""The plan's Markdown summary, written to read well as a GitHub pull-request comment:
the verdict first, then one table per cluster, then violations with their fix, the plan diff
and the Mermaid picture, long lists folded into <details>."""

from __future__ import annotations

from collections import Counter
from typing import Any

from components.catalog import DEFAULT_CHART_VERSION
from infra.config import StackConfig

__all__ = ["render_summary"]

_FOLD_AFTER = 10


def _verdict(stack: str, total: int, report: dict[str, Any] | None) -> str:
    if report is None:
        return f"⚪ **meshless plan `{stack}`**: {total} resources; policy gate not run"
    mandatory, advisory = report.get("mandatory", 0), report.get("advisory", 0)
    if mandatory:
        return (
            f"❌ **meshless plan `{stack}`: blocked** by {mandatory} mandatory policy "
            f"violation(s) ({advisory} advisory); {total} resources planned"
        )
    return (
        f"✅ **meshless plan `{stack}`: passes the policy gate** ({advisory} advisory "
        f"finding(s)); {total} resources planned"
    )


def _fold(title: str, lines: list[str], count: int) -> list[str]:
    if count <= _FOLD_AFTER:
        return [f"**{title}**", "", *lines, ""]
    return ["<details>", f"<summary><b>{title}</b></summary>", "", *lines, "", "</details>", ""]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _cluster_notes(config: StackConfig) -> dict[str, list[str]]:
    notes: dict[str, list[str]] = {}
    for cluster in config.clusters:
        lines = []
        settings = cluster.cilium_settings
        if cluster.cloud == "eks":
            lines.append(
                "EKS without bootstrap add-ons: no kube-proxy, no VPC CNI; Cilium in ENI mode "
                "replaces both, CoreDNS is added after Cilium is ready."
            )
        elif cluster.mode == "cilium":
            lines.append(
                "GKE mode `cilium`: GKE keeps its own kube-proxy on every node and it cannot be "
                "removed; Cilium's kube-proxy replacement handles Service traffic, so "
                "kube-proxy's rules go unused."
            )
        else:
            lines.append(
                "GKE mode `dataplane-v2`: Google runs Cilium without kube-proxy; no Cilium "
                "release, CiliumNetworkPolicy, L7 rule or Envoy of ours on this cluster."
            )
        if settings is not None:
            lines.append(
                f"Cilium chart {settings.version}, profile `{settings.profile}`"
                + (
                    "; 1.16 gets no upstream patches any more, move to 1.17.18 when ready."
                    if settings.version.startswith("1.16")
                    else "."
                )
            )
            if settings.hubble.relay:
                lines.append(
                    "Hubble relay and UI on; Hubble's flow visibility costs agent CPU and memory "
                    "in proportion to traffic (metrics set per environment)."
                )
        notes[cluster.name] = lines
    return notes


def _cluster_tables(
    resources: list[dict[str, Any]], cluster_of: dict[str, str | None], config: StackConfig
) -> list[str]:
    lines: list[str] = []
    by_cluster: dict[str, Counter[str]] = {}
    for res in resources:
        owner = cluster_of.get(res["urn"]) or "(stack)"
        by_cluster.setdefault(owner, Counter())[res["type"]] += 1
    notes = _cluster_notes(config)
    for cluster in [c.name for c in config.clusters] + ["(stack)"]:
        counts = by_cluster.get(cluster)
        # The stack itself is always one pulumi:pulumi:Stack resource: not worth a table.
        if not counts or (cluster == "(stack)" and sum(counts.values()) == 1):
            continue
        kind = next((f"{c.cloud}" for c in config.clusters if c.name == cluster), "stack")
        lines += [f"### {cluster} ({kind}): {sum(counts.values())} resources", ""]
        lines += [f"- {note}" for note in notes.get(cluster, [])]
        if notes.get(cluster):
            lines.append("")
        rows = ["| resource type | count |", "| --- | ---: |"]
        rows += [f"| `{typ}` | {n} |" for typ, n in sorted(counts.items())]
        lines += _fold(f"Resources of {cluster} by type", rows, len(counts))
    return lines


def _violations(report: dict[str, Any] | None) -> list[str]:
    if not report or not report.get("violations"):
        return []
    rows = ["| policy | level | resource | message and fix |", "| --- | --- | --- | --- |"]
    for v in report["violations"]:
        rows.append(
            f"| `{_cell(v.get('policy'))}` | {_cell(v.get('enforcement'))} | "
            f"`{_cell(str(v.get('urn', '')).rsplit('::', 1)[-1])}` | {_cell(v.get('message'))} |"
        )
    return ["## Policy findings", "", *_fold("Violations", rows, len(report["violations"]))]


def render_summary(
    *,
    stack: str,
    config: StackConfig,
    resources: list[dict[str, Any]],
    cluster_of: dict[str, str | None],
    report: dict[str, Any] | None,
    warnings: list[str],
    diff_markdown: str | None,
    mermaid: str | None,
    manifests: int,
    releases_markdown: str = "",
    release_problems: int = 0,
) -> str:
    verdict = _verdict(stack, len(resources), report)
    if release_problems and not (report or {}).get("mandatory"):
        verdict = (
            f"⛔ **meshless plan `{stack}`: blocked** by {release_problems} Cilium release "
            "check(s): see the rendered releases and version changes below"
        )
    lines = [verdict, ""]
    lines.append(
        f"Offline plan of stack `{stack}` ({config.environment}) under Pulumi mocks: what "
        f"`pulumi up --stack {stack}` would create. {manifests} Kubernetes objects and Helm "
        f"values files in `out/{stack}/manifests/`. Default Cilium chart: {DEFAULT_CHART_VERSION}."
    )
    lines.append("")
    lines += _violations(report)
    if warnings:
        items = [f"- {_cell(w)}" for w in warnings]
        lines += ["## Traffic-policy warnings", "", *_fold("Warnings", items, len(items))]
    if diff_markdown:
        lines += ["## Change against the base plan", "", diff_markdown.strip(), ""]
    if releases_markdown:
        lines += [releases_markdown.strip(), ""]
    lines += ["## Clusters", ""]
    lines += _cluster_tables(resources, cluster_of, config)
    if mermaid:
        lines += [
            "<details>",
            "<summary><b>Graph: clusters → Cilium release → policies</b></summary>",
            "",
            "```mermaid",
            mermaid.strip(),
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"
