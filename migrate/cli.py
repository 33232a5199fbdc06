"""`meshless migrate istio PATH... --out DIR`.

Exit codes: 0 every object migrated fully; 1 something was unreadable, partly or not
migrated (see report.md); 2 a usage error (no such path, an --out folder we would clobber).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["migrate_app"]

migrate_app = typer.Typer(
    no_args_is_help=True, help="Move configuration from Istio to meshless and Cilium."
)
err = Console(stderr=True)
out = Console()


@migrate_app.command("istio")
def istio_command(
    paths: Annotated[list[Path], typer.Argument(help="Istio YAML files or folders")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (created or replaced)")],
    mutual_auth: Annotated[
        bool,
        typer.Option(
            help="The target cluster runs Cilium mutual authentication (cilium.mutualAuth): carry STRICT mTLS over as authentication: required"
        ),
    ] = False,
    root_namespace: Annotated[
        str, typer.Option(help="Istio's root namespace (mesh-wide policies)")
    ] = "istio-system",
) -> None:
    """Turn Istio objects into traffic-policy files, Gateway API objects and a report."""
    # Imported here: the converters load the vendored CRD schemas (jsonschema), which every
    # other `meshless` command would otherwise pay for at start-up.
    from migrate.run import OutputExistsError, check_traffic_folder, migrate, write_outputs

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        for path in missing:
            err.print(f"[bold red]error[/]: {path}: no such file or folder", highlight=False)
        raise typer.Exit(2)
    migration = migrate(paths, mutual_auth=mutual_auth, root_namespace=root_namespace)
    try:
        write_outputs(migration, out_dir)
    except OutputExistsError as exc:
        err.print(f"[bold red]error[/]: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    report = migration.report
    for bad in sorted(report.unreadable, key=lambda u: u.sort_key):
        err.print(f"[bold red]error[/]: {bad.message}", highlight=False, soft_wrap=True)
    problems = check_traffic_folder(out_dir)
    for problem in problems:  # a converter bug; shown rather than hidden
        err.print(
            f"[bold red]error[/]: generated traffic policy: {problem}",
            highlight=False,
            soft_wrap=True,
        )
    counts = report.counts
    out.print(
        f"{counts['input']} objects: {counts['fully']} fully migrated, {counts['partly']} partly, "
        f"{counts['not']} not, {counts['unreadable']} unreadable; see {out_dir / 'report.md'}",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(1 if problems else report.exit_code)
