"""`meshless` command line: the offline plan, the policy gate, the digest catalog, verify.

Exit codes everywhere: 0 clean, 1 a mandatory policy violation, 2 bad config or bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from components.catalog import (
    DEFAULT_CHART_VERSION,
    check_version,
    known_versions,
    load_catalog,
    pins_for,
)
from infra.chart_pull import chart_app
from infra.config import ConfigError
from infra.flows import flows_command
from infra.gate import gate_command
from infra.images import images_command
from infra.verify_cli import verify_command
from migrate.cli import migrate_app

__all__ = ["app"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Plan, gate and inspect the meshless Pulumi program without a cloud account.",
)
err = Console(stderr=True)
out = Console()


def _say(prefix: str, text: str) -> None:
    """One message, printed as text: messages quote patterns like ``^[a-z]...$`` and values
    like ``[/]`` that Rich markup would eat or choke on."""
    err.print(Text.assemble((prefix, "bold red"), text), highlight=False, soft_wrap=True)


def _fail(problems: list[str], code: int = 2) -> typer.Exit:
    for problem in problems:
        _say("error", f": {problem}")
    return typer.Exit(code)


@app.command()
def plan(
    stack: Annotated[
        str, typer.Option(help="Stack to plan: reads Pulumi.<stack>.yaml")
    ] = "staging",
    stack_file: Annotated[
        Path | None, typer.Option(help="Plan this stack file instead of Pulumi.<stack>.yaml")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default out/<stack>)")
    ] = None,
    policy_config: Annotated[
        Path | None,
        typer.Option(
            help="Policy pack config (default policies/config/<stack>.json when it exists)"
        ),
    ] = None,
    compare: Annotated[
        Path | None, typer.Option(help="Another plan's output folder to diff against (e.g. main's)")
    ] = None,
    upgrade_from: Annotated[
        Path | None,
        typer.Option(
            help="A plan of what runs now (its output folder): check the Cilium version moves "
            "(also done by --compare)"
        ),
    ] = None,
) -> None:
    """Run the program under mocks, write out/<stack>/, and gate it with the policy pack."""
    from infra import plan as offline  # heavy imports (cloud SDKs) only for this command

    try:
        code = offline.run(
            stack,
            stack_file=stack_file,
            out_dir=out_dir,
            policy_config=policy_config,
            compare=compare,
            upgrade_from=upgrade_from,
            console=out,
        )
    except ConfigError as exc:
        _say("invalid stack config", f" for stack {stack!r}:")
        raise _fail(exc.problems) from None
    except offline.PlanInputError as exc:
        raise _fail([str(exc)]) from None
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:  # never a traceback: say what failed and that nothing was written
        raise _fail(
            [
                f"the plan of stack {stack!r} stopped: {type(exc).__name__}: "
                f"{str(exc)[:500]}. Nothing was written. If the stack file is valid, this is a "
                "bug in meshless; report it with the stack file"
            ]
        ) from None
    raise typer.Exit(code)


@app.command()
def digests(
    version: Annotated[str | None, typer.Option(help="Chart version (default: all)")] = None,
) -> None:
    """Print the Cilium digest catalog and check that entries are complete and well formed."""
    if version is not None and version not in load_catalog():
        raise _fail(
            [f"unknown Cilium chart version {version!r}; known: {', '.join(known_versions())}"]
        )
    versions = [version] if version else known_versions()
    for v in versions:
        default = " (default)" if v == DEFAULT_CHART_VERSION else ""
        table = Table(title=f"Cilium chart {v}{default}")
        table.add_column("values path", overflow="fold")
        table.add_column("image (repository:tag)", overflow="fold")
        table.add_column("digest", no_wrap=True)
        eks, gke = pins_for(v, "eks"), pins_for(v, "gke")
        for path, pin in sorted(eks.items()):
            if path == "operator.image":
                # The chart picks the operator's cloud variant; both are pinned.
                for cloud, variant in (("eks", pin), ("gke", gke[path])):
                    table.add_row(
                        f"{path} ({cloud})", f"{variant.repository}:{variant.tag}", variant.digest
                    )
            else:
                table.add_row(path, f"{pin.repository}:{pin.tag}", pin.digest)
        out.print(table)
    problems = [p for v in versions for p in check_version(v)]
    if problems:
        raise _fail([f"{p.version} {p.path}: {p.problem}" for p in problems])
    out.print(f"catalog OK: {len(versions)} version(s) complete and well formed")


app.command("gate", help="Run the policy pack on a stack export or a plan's resources.json.")(
    gate_command
)
app.command("images")(images_command)
app.add_typer(chart_app, name="chart")

app.command(
    "flows", help="Would the stack's policies allow this flow? A dry-run policy trace with L7."
)(flows_command)
app.command("verify", help="Check a live cluster through the Kubernetes API (exit 0/1/2).")(
    verify_command
)
app.add_typer(migrate_app, name="migrate")


if __name__ == "__main__":  # pragma: no cover - `python -m infra.cli`, as the benchmarks run it
    app()
