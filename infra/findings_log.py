"""The gate's findings on a terminal: a table on a TTY, grep-able blocks in a CI log, and
GitHub annotations under GitHub Actions.

Piped into a log (no TTY), a table is fixed at 80 columns and splits URNs and paths mid-word.
There each finding is a block of at most six lines, each line written whole (a log viewer
wraps long lines for display; the text stays one line to grep and copy)::

    ✖ mandatory  kube-proxy-replacement-strict
      resource: kubernetes:helm.sh/v3:Release::stg-eks-usw2-cilium-release
      message:  kubeProxyReplacement is "strict": Cilium 1.16 removed ...
      fix:      Set kubeProxyReplacement: true
      config:   Pulumi.staging.yaml:10 meshless:clusters[0].cilium.kubeProxyReplacement

With ``GITHUB_ACTIONS=true`` each finding is also an ``::error``/``::warning`` workflow command
(GitHub docs, "Workflow commands for GitHub Actions": ``::error file=,line=,title=::message``),
pointing at the stack file line of the config key when one is known, so the pull request shows
it on that line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from infra.render import gh_data, gh_property, split_finding, term_text

if TYPE_CHECKING:
    from infra.gate import GateReport, Violation
    from infra.stack_lines import Location

__all__ = [
    "Locator",
    "annotation_lines",
    "finding_blocks",
    "print_findings",
    "short_urn",
]

#: violation → where in the stack file it comes from (None: nowhere known).
Locator = Callable[["Violation"], "Location | None"]

_LEVEL_STYLE = {"mandatory": "bold red", "advisory": "yellow", "remediate": "magenta"}
_LEVEL_MARK = {"mandatory": "✖", "advisory": "▲", "remediate": "◆"}


def short_urn(urn: str) -> str:
    """``<type>::<name>`` of a URN, without stack, project and parent types (the report file
    keeps the full URN)."""
    parts = urn.split("::")
    if len(parts) < 4:
        return urn or "(stack)"
    return f"{parts[2].rsplit('$', 1)[-1]}::{'::'.join(parts[3:])}"


def _title(report: GateReport) -> str:
    return f"{report.pack_name} v{report.pack_version} on stack {report.stack}"


def _tally(report: GateReport) -> str:
    return (
        f"{report.mandatory} mandatory, {report.advisory} advisory violation(s) "
        f"in {report.resources} resources" + ("; blocked" if report.mandatory else "")
    )


def finding_blocks(violations: Sequence[Violation], locate: Locator | None = None) -> list[str]:
    """The CI-log lines: one block per finding, at most six lines, none wrapped."""
    lines: list[str] = []
    for v in violations:
        text = split_finding(v.message, v.urn)
        mark = _LEVEL_MARK.get(v.enforcement_level, "•")
        lines.append(f"{mark} {term_text(v.enforcement_level)}  {term_text(v.policy_name)}")
        lines.append(f"  resource: {term_text(short_urn(v.urn))}")
        lines.append(f"  message:  {term_text(text.message)}")
        if text.fix:
            lines.append(f"  fix:      {term_text(text.fix)}")
        where = locate(v) if locate else None
        if where is not None:
            lines.append(f"  config:   {term_text(where.file)}:{where.line} {term_text(where.key)}")
    return lines


def _table(report: GateReport, console: Console) -> None:
    table = Table(title=_title(report), show_lines=True, expand=True)
    table.add_column("Policy", no_wrap=True)
    table.add_column("Level", no_wrap=True)
    table.add_column("Resource (type::name)", overflow="fold", ratio=1)
    table.add_column("Message and fix", ratio=2)
    for v in report.violations:
        text = split_finding(v.message, v.urn)
        body = Text(term_text(text.message))
        if text.fix:
            body.append("\nfix: ", style="bold").append(term_text(text.fix))
        # Text, not markup: messages quote values such as "resourceLabels[meshless-gke-mode]".
        table.add_row(
            Text(v.policy_name),
            Text(v.enforcement_level, style=_LEVEL_STYLE.get(v.enforcement_level, "")),
            Text(short_urn(v.urn)),
            body,
        )
    console.print(table)


def print_findings(report: GateReport, console: Console, *, locate: Locator | None = None) -> None:
    """The report for a person: a table on a terminal, blocks in a log."""
    if not report.violations:
        console.print(
            f"{_title(report)}: no violations ({report.resources} resources)",
            style="green",
            highlight=False,
            soft_wrap=True,
        )
        return
    if console.is_terminal:
        _table(report, console)
    else:
        console.print(_title(report), highlight=False, soft_wrap=True)
        for line in finding_blocks(report.violations, locate):
            console.print(Text(line), highlight=False, soft_wrap=True)
    console.print(_tally(report), highlight=False, soft_wrap=True)


def annotation_lines(violations: Sequence[Violation], locate: Locator | None = None) -> list[str]:
    """One ``::error``/``::warning`` workflow command per finding."""
    out = []
    for v in violations:
        command = "error" if v.enforcement_level == "mandatory" else "warning"
        text = split_finding(v.message, v.urn)
        props = [f"title={gh_property(f'{v.policy_name} ({v.enforcement_level})')}"]
        where = locate(v) if locate else None
        if where is not None:
            props = [f"file={gh_property(where.file)}", f"line={where.line}", *props]
        body = f"{short_urn(v.urn)}: {text.message}" + (f" Fix: {text.fix}" if text.fix else "")
        out.append(f"::{command} {','.join(props)}::{gh_data(body)}")
    return out


def emit_annotations(
    violations: Sequence[Violation], stream: IO[str], locate: Locator | None = None
) -> None:
    """Write the annotations when running under GitHub Actions (``GITHUB_ACTIONS=true``),
    unless ``MESHLESS_ANNOTATIONS=off`` (the PR workflow's base-branch plan: its findings are
    not the pull request's, and its line numbers are the base's)."""
    if (
        os.environ.get("GITHUB_ACTIONS") != "true"
        or os.environ.get("MESHLESS_ANNOTATIONS") == "off"
    ):
        return
    for line in annotation_lines(violations, locate):
        stream.write(line + "\n")
    stream.flush()
