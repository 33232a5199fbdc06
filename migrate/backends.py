"""Gateway API backends for Istio destinations: Services by name and port, mirrors, and the
ReferenceGrants a route needs to reach a Service in another namespace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migrate.gateway_api import ConvertedGateway
from migrate.reader import IstioObject
from migrate.report import ObjectReport

__all__ = ["RouteContext", "backends", "mirrors", "reference_grants"]

_NO_PERCENT = (
    "Gateway API v1.1 mirrors every request (no percentage)",
    "none; every request is mirrored",
)


@dataclass
class RouteContext:
    gateways: dict[tuple[str, str], ConvertedGateway]
    service_ports: dict[tuple[str, str], list[int]]
    # (Service namespace, route namespace) -> route kinds and Service names crossing over
    grants: dict[tuple[str, str], tuple[set[str], set[str]]] = field(default_factory=dict)
    kind: str = "HTTPRoute"  # the kind of the route being converted


def _backend(
    obj: IstioObject, rep: ObjectReport, ctx: RouteContext, dest: dict[str, Any], at: str
) -> dict[str, Any] | None:
    host = str(dest.get("host") or "")
    found = _service_of(host, obj.namespace)
    if found is None:
        rep.gap(
            f"{at}.host",
            f"{host!r} is not a Kubernetes Service of this cluster; Gateway API backends are Services",
            "a Service of type ExternalName, or route to it outside Gateway API",
        )
        return None
    name, namespace = found
    port = (dest.get("port") or {}).get("number")
    if port is None:
        known = ctx.service_ports.get((namespace, name), [])
        if len(known) != 1:
            rep.gap(
                f"{at}.port",
                f"no port given and {'several' if known else 'no'} ports known for Service {namespace}/{name}; Gateway API needs one",
                "give destination.port.number",
            )
            return None
        port = known[0]
    if dest.get("subset"):
        rep.gap(
            f"{at}.subset",
            f"subset {dest['subset']!r} (DestinationRule labels) cannot be a backend; traffic goes to the whole Service {namespace}/{name}",
            "one Kubernetes Service per subset, selecting the subset's labels",
        )
    ref: dict[str, Any] = {"name": name, "port": int(port)}
    if namespace != obj.namespace:
        ref["namespace"] = namespace
        kinds, names = ctx.grants.setdefault((namespace, obj.namespace), (set(), set()))
        kinds.add(ctx.kind)
        names.add(name)
    return ref


def _service_of(host: str, namespace: str) -> tuple[str, str] | None:
    """(name, namespace) of a Service host: name, name.ns, name.ns.svc, name.ns.svc.cluster.local."""
    parts = host.split(".")
    if not all(parts):
        return None
    if len(parts) == 1:
        return parts[0], namespace
    if len(parts) == 2 or (len(parts) == 3 and parts[2] == "svc"):
        return parts[0], parts[1]
    if len(parts) == 5 and parts[2:] == ["svc", "cluster", "local"]:
        return parts[0], parts[1]
    return None


def backends(
    obj: IstioObject, rep: ObjectReport, ctx: RouteContext, dests: list[dict[str, Any]], at: str
) -> list[dict[str, Any]]:
    out = []
    for k, entry in enumerate(dests):
        ref = _backend(obj, rep, ctx, entry.get("destination") or {}, f"{at}[{k}].destination")
        if entry.get("headers"):
            rep.gap(
                f"{at}[{k}].headers",
                "per-destination header changes are not carried",
                "rule-level header modifiers",
            )
        if ref is None:
            continue
        if "weight" in entry:
            ref["weight"] = int(entry["weight"])
        out.append(ref)
    return out


def mirrors(
    obj: IstioObject, rep: ObjectReport, ctx: RouteContext, route: dict[str, Any], at: str
) -> list[dict[str, Any]]:
    targets = [(f"{at}.mirror", route["mirror"])] if route.get("mirror") else []
    for k, mirror in enumerate(route.get("mirrors") or []):
        targets.append((f"{at}.mirrors[{k}].destination", mirror.get("destination") or {}))
        if mirror.get("percentage"):
            rep.gap(f"{at}.mirrors[{k}].percentage", *_NO_PERCENT)
    out = []
    for where, dest in targets:
        ref = _backend(obj, rep, ctx, dest, where)
        if ref is not None:
            out.append({"type": "RequestMirror", "requestMirror": {"backendRef": ref}})
    return out


def reference_grants(ctx: RouteContext) -> list[dict[str, Any]]:
    """One ReferenceGrant per (Service namespace, route namespace): routes may reach those
    Services across namespaces only when the Services' namespace allows it."""
    out = []
    for (to_ns, from_ns), (kinds, names) in sorted(ctx.grants.items()):
        out.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1beta1",
                "kind": "ReferenceGrant",
                "metadata": {"name": f"allow-routes-from-{from_ns}"[:63], "namespace": to_ns},
                "spec": {
                    "from": [
                        {"group": "gateway.networking.k8s.io", "kind": k, "namespace": from_ns}
                        for k in sorted(kinds)
                    ],
                    "to": [{"group": "", "kind": "Service", "name": n} for n in sorted(names)],
                },
            }
        )
    return out
