"""``meshless gate``: the offline policy gate on a stack export, from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from infra.findings_log import emit_annotations, print_findings
from infra.gate.inputs import load_export
from infra.gate.report import GateError, GateInputError
from infra.gate.run import run_gate, stack_of

__all__ = ["gate_command"]


def gate_command(
    file: Annotated[
        Path, typer.Argument(help="A `pulumi stack export` file or the plan's resources.json.")
    ],
    policy_config: Annotated[
        Path | None,
        typer.Option("--policy-config", help="Policy config, e.g. policies/config/prod.json."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the report as JSON here.")
    ] = None,
    stack_file: Annotated[
        Path | None,
        typer.Option(
            "--stack-file",
            help="The stack's Pulumi.<stack>.yaml: findings then name the config key's line.",
        ),
    ] = None,
) -> None:
    """Run the meshless-guardrails policy pack on a stack's resources, offline."""
    console, errors = Console(), Console(stderr=True)
    try:
        if stack_file is not None and not stack_file.is_file():
            raise GateInputError(f"{stack_file}: no such stack file (--stack-file)")
        export = load_export(file)
        # The pack judges what the stack holds after the update, as a preview's analysis does:
        # not the old half of a replacement, which the engine deletes.
        stack, project = stack_of(export.live)
        result = run_gate(export.live, policy_config=policy_config, stack=stack, project=project)
    except GateError as exc:
        errors.print(f"[bold red]gate:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    locate = None
    if stack_file is not None:
        from infra.plan import stack_file_locator  # the cloud SDKs: only when asked

        locate = stack_file_locator(stack_file, export)
    print_findings(result, console, locate=locate)
    emit_annotations(result.violations, sys.stdout, locate)
    for line in result.logs:  # the pack's own log output (pulumi.log), rarely anything
        errors.print(f"[dim]policy pack log: {escape(line)}[/]", highlight=False)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    raise typer.Exit(1 if result.mandatory else 0)
