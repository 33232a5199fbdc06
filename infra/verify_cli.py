"""The `meshless verify` command: where the cluster and its expectations come from, and output.

Exit codes: 0 every check passes (or is skipped as not enabled), 1 any check fails, 2 the
cluster cannot be asked (no connection, timeout, 401/403, a kubeconfig that does not load,
no Pulumi CLI for --stack) or the command line / stack config is wrong. A progress line per
check goes to stderr while it runs; the table (or --json) to stdout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from components.catalog import DEFAULT_CHART_VERSION, known_versions
from infra.config import ConfigError
from infra.verify import CheckResult, ClusterExpectations, catalog_digests, run_checks

__all__ = ["expectations_from_stack", "verify_command"]

err = Console(stderr=True, highlight=False, soft_wrap=True)
_STYLE = {"pass": "green", "fail": "bold red", "skip": "dim"}


class UsageError(Exception):
    """A wrong command line or stack config for verify (exit 2)."""


def expectations_from_stack(
    stack: str, cluster: str | None, root: Path
) -> tuple[str, ClusterExpectations]:
    """The named cluster of Pulumi.<stack>.yaml, as verify should find it running."""
    from components.cilium import IMAGE_OVERRIDE_PATHS
    from components.network_policy import MANAGED_LABELS, render_policies
    from infra.plan import PlanInputError, read_stack_file
    from infra.program import load

    try:
        plan = load(read_stack_file(root / f"Pulumi.{stack}.yaml"), root)
    except PlanInputError as exc:
        raise UsageError(str(exc)) from None
    except ConfigError as exc:
        raise UsageError(
            f"invalid stack config for {stack!r}: " + "; ".join(exc.problems)
        ) from None
    names = [c.name for c in plan.config.clusters]
    if cluster is None and len(names) > 1:
        raise UsageError(
            f"stack {stack} has {len(names)} clusters ({', '.join(names)}); pick one with --cluster"
        )
    chosen = next((c for c in plan.config.clusters if c.name == (cluster or names[0])), None)
    if chosen is None:
        raise UsageError(f"stack {stack} has no cluster {cluster!r}; clusters: {', '.join(names)}")
    settings = chosen.cilium_settings
    if settings is None:
        raise UsageError(
            f"{chosen.name} runs GKE Dataplane V2: Google runs Cilium there, not our release; "
            "verify checks clusters in mode cilium and EKS clusters"
        )
    overrides = {
        IMAGE_OVERRIDE_PATHS[component]: (image.repository, image.digest)
        for component, image in settings.image_overrides.items()
        if image.digest is not None
    }
    policy_set = plan.policies.get(chosen.name)
    policies = tuple(
        (obj["metadata"]["namespace"], obj["metadata"]["name"])
        for obj in (render_policies(policy_set) if policy_set else [])
    )
    return chosen.name, ClusterExpectations(
        cloud=chosen.cloud,
        chart_version=settings.version,
        envoy=settings.envoy,
        hubble_relay=settings.hubble.relay,
        hubble_ui=settings.hubble.ui,
        policies=policies,
        policy_labels=dict(MANAGED_LABELS),
        digests=catalog_digests(settings.version, chosen.cloud, overrides),
        source=f"Pulumi.{stack}.yaml",
    )


def _expectations(
    stack: str | None, cluster: str | None, cloud: str | None, chart_version: str | None
) -> tuple[str, ClusterExpectations]:
    from components.network_policy import MANAGED_LABELS
    from infra.program import REPO_ROOT

    if stack is not None:
        if cloud is not None or chart_version is not None:
            raise UsageError("--cloud and --chart-version are read from the stack with --stack")
        return expectations_from_stack(stack, cluster, REPO_ROOT)
    if cloud not in ("eks", "gke"):
        raise UsageError("without --stack, say which cloud the cluster runs on: --cloud eks|gke")
    version = chart_version or DEFAULT_CHART_VERSION
    if version not in known_versions():
        raise UsageError(
            f"--chart-version {version!r} is not in the digest catalog ({', '.join(known_versions())})"
        )
    return cluster or "cluster", ClusterExpectations(
        cloud=cloud,  # type: ignore[arg-type]
        chart_version=version,
        policy_labels=dict(MANAGED_LABELS),
        source="command line (no stack: every CNP labelled as ours is checked)",
    )


def _progress(index: int, total: int, result: CheckResult) -> None:
    style = _STYLE[result.status]
    err.print(f"[{index:>2}/{total}] {result.id:<17} [{style}]{result.status}[/]")


def _render(console: Console, name: str, server: str, results: list[CheckResult]) -> None:
    failed = sum(r.status == "fail" for r in results)
    table = Table(title=f"meshless verify: {name} ({server})", show_lines=False)
    table.add_column("Check", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("Evidence", overflow="fold")
    for result in results:
        style = _STYLE[result.status]
        table.add_row(
            f"{result.id}\n[dim]{escape(result.title)}[/]",
            f"[{style}]{result.status.upper()}[/]",
            escape(result.evidence),
        )
    console.print(table)
    verdict = "[bold red]FAILED[/]" if failed else "[green]PASSED[/]"
    console.print(f"{verdict}: {failed} of {len(results)} check(s) failed", highlight=False)


def verify_command(
    stack: Annotated[
        str | None,
        typer.Option(
            help="Stack: expectations from Pulumi.<stack>.yaml, kubeconfig from its outputs"
        ),
    ] = None,
    cluster: Annotated[
        str | None, typer.Option(help="Cluster of the stack (needed when it has several)")
    ] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="Kubeconfig file instead of the stack's output")
    ] = None,
    context: Annotated[str | None, typer.Option(help="Context in the kubeconfig")] = None,
    cloud: Annotated[str | None, typer.Option(help="Without --stack: eks or gke")] = None,
    chart_version: Annotated[
        str | None,
        typer.Option(help=f"Without --stack: Cilium chart version ({DEFAULT_CHART_VERSION})"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per API call", min=0.1)] = 10.0,
) -> None:
    """Check a live cluster: kube-proxy, Cilium rollout, kube-proxy replacement, digests,
    policies, Istio leftovers. Exit 0 pass, 1 fail, 2 cannot connect or bad input."""
    # The kubernetes client takes most of a second to import: only for this command.
    from infra.kube_access import (
        AccessError,
        ApiReader,
        client_from_kubeconfig,
        kubeconfig_from_file,
        kubeconfig_from_stack,
    )

    try:
        if stack is None and kubeconfig is None:
            raise UsageError(
                "say where the cluster is: --stack S (and --cluster) or --kubeconfig FILE"
            )
        name, want = _expectations(stack, cluster, cloud, chart_version)
        from infra.program import REPO_ROOT

        if kubeconfig is not None:
            document, source = kubeconfig_from_file(kubeconfig), str(kubeconfig)
        else:
            assert stack is not None
            document = kubeconfig_from_stack(stack, name, REPO_ROOT)
            source = f"stack {stack} output {name}-kubeconfig"
        api = client_from_kubeconfig(document, context, source)
        reader = ApiReader(api, timeout)
        err.print(escape(f"verify {name} at {reader.server} (expectations: {want.source})"))
        reader.get("namespaces", "kube-system")  # can we ask at all? 401/403/timeouts stop here
        results = run_checks(reader, want, _progress)
    except (UsageError, AccessError) as exc:
        err.print(f"[bold red]error[/]: {escape(str(exc))}")
        raise typer.Exit(2) from None
    failed = any(r.status == "fail" for r in results)
    if as_json:
        document = {
            "cluster": name,
            "server": reader.server,
            "expectations": want.source,
            "passed": not failed,
            "checks": [r.to_json() for r in results],
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        _render(Console(highlight=False), name, reader.server, results)
    raise typer.Exit(1 if failed else 0)
