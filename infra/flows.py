"""Expected flows in the offline plan, and the `meshless flows` command.

``check_plan_flows`` evaluates every cluster's expected flows (its policy folder's flows.yaml)
against the CiliumNetworkPolicy objects the plan recorded for that cluster: the very inputs
written to ``out/<stack>/manifests/<cluster>/``. ``flows_command`` answers one question the
same way, like a dry-run ``cilium policy trace`` that also reads L7 rules.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape

from components.flows.check import FlowResult, check_flows
from components.flows.evaluate import PolicyIndex
from components.flows.spec import resolve_one
from components.network_policy import render_policies
from components.platform import platform_for
from components.traffic import TrafficPolicyError
from infra.export_format import CNP_TYPE, StackExport
from infra.program import StackPlan

__all__ = ["check_plan_flows", "cnps_by_cluster", "flows_command"]


def cnps_by_cluster(
    resources: StackExport | list[dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """The CiliumNetworkPolicy objects of a plan (apiVersion, kind, metadata, spec), by cluster."""
    return StackExport.of(resources).by_cluster(CNP_TYPE)


def check_plan_flows(
    plan: StackPlan, resources: StackExport | list[dict[str, Any]]
) -> list[FlowResult]:
    """Every cluster's expected flows against the policies recorded for it."""
    objects = cnps_by_cluster(resources)
    results: list[FlowResult] = []
    for cluster, flows in plan.flows.items():
        results += check_flows(cluster, objects.get(cluster, []), flows)
    return results


# -- the command -----------------------------------------------------------------------------

err = Console(stderr=True)
out = Console()


def _end(text: str, where: str) -> dict[str, Any]:
    """``service`` / ``ns/service`` / ``entity:host`` / ``ip:1.2.3.4`` / ``fqdn:api.x.com`` /
    ``labels:ns/k=v,k2=v2`` / ``platform:cloud-identity`` as a flows-file end."""
    kind, sep, value = text.partition(":")
    if sep and kind in ("entity", "ip", "fqdn", "platform"):
        return {kind: value}
    if sep and kind == "labels":
        namespace, _, pairs = value.rpartition("/")
        labels = dict(p.split("=", 1) for p in pairs.split(",") if "=" in p)
        return {"labels": labels, **({"namespace": namespace} if namespace else {})}
    if sep:
        raise typer.BadParameter(
            f"{where} {text!r}: use service, ns/service, entity:NAME, ip:ADDR, fqdn:NAME, "
            "labels:ns/k=v or platform:cloud-identity"
        )
    namespace, _, name = text.rpartition("/")
    return {"service": name, **({"namespace": namespace} if namespace else {})}


def flows_command(
    source: Annotated[
        str,
        typer.Option(
            "--from", help="service, ns/service, entity:ingress, ip:203.0.113.9, labels:ns/k=v"
        ),
    ],
    destination: Annotated[
        str,
        typer.Option(
            "--to",
            help="service, ns/service, fqdn:api.stripe.com, ip:ADDR, entity:kube-apiserver, "
            "platform:cloud-identity",
        ),
    ],
    stack: Annotated[str, typer.Option(help="Stack: reads Pulumi.<stack>.yaml")] = "staging",
    port: Annotated[
        str | None, typer.Option(help="Port number or the destination's port name")
    ] = None,
    protocol: Annotated[Literal["TCP", "UDP", "SCTP"], typer.Option()] = "TCP",
    method: Annotated[str | None, typer.Option(help="HTTP method (with --path)")] = None,
    path: Annotated[str | None, typer.Option(help="HTTP path, query string included")] = None,
    header: Annotated[list[str] | None, typer.Option(help="Header as Name=value (repeat)")] = None,
    grpc: Annotated[str | None, typer.Option(help="gRPC call as package.Service/Method")] = None,
    namespace: Annotated[str, typer.Option(help="Namespace of bare service names")] = "shop",
    cluster: Annotated[
        str | None, typer.Option(help="Only this cluster (default: every cluster with policies)")
    ] = None,
) -> None:
    """Would the stack's generated policies allow this flow? Prints the deciding rule per side.

    Exit 0 allowed on every cluster asked, 1 denied on at least one, 2 bad input.
    """
    from infra.config import ConfigError
    from infra.plan import PlanInputError, default_stack_file, read_stack_file
    from infra.program import load

    try:
        plan = load(read_stack_file(default_stack_file(stack)))
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[bold red]error[/]: {escape(problem)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except PlanInputError as exc:
        err.print(f"[bold red]error[/]: {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    spec = _spec(source, destination, port, protocol, method, path, header, grpc)
    clusters = [c for c in plan.policies if cluster in (None, c)]
    if not clusters:
        err.print(
            f"[bold red]error[/]: no cluster {escape(repr(cluster))} with traffic policies in stack "
            f"{escape(stack)}"
        )
        raise typer.Exit(2)
    denied = False
    for name in clusters:
        config = next(c for c in plan.config.clusters if c.name == name)
        try:
            flows = resolve_one(spec, namespace, plan.policies[name], platform_for(config))
        except TrafficPolicyError as exc:
            for problem in exc.problems:
                err.print(f"[bold red]error[/]: {escape(problem)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        index = PolicyIndex(render_policies(plan.policies[name], platform_for(config)))
        for expected in flows:
            verdict = index.evaluate(expected.flow)
            denied |= not verdict.allowed
            out.print(
                f"[bold]{name}[/] ({config.cloud}): {verdict.explain()}",
                highlight=False,
                soft_wrap=True,
            )
    raise typer.Exit(1 if denied else 0)


def _spec(
    source: str,
    destination: str,
    port: str | None,
    protocol: str,
    method: str | None,
    path: str | None,
    header: list[str] | None,
    grpc: str | None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "from": _end(source, "--from"),
        "to": _end(destination, "--to"),
        "protocol": protocol,
        "expect": "allow",
    }
    if port is not None:
        spec["port"] = int(port) if port.isdigit() else port
    if path or method:
        headers = dict(h.split("=", 1) for h in header or [] if "=" in h)
        spec["http"] = {"method": method or "GET", "path": path or "/", "headers": headers}
    if grpc:
        service, _, call = grpc.rpartition("/")
        spec["grpc"] = {"service": service, "method": call}
    return spec
