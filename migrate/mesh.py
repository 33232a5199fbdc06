"""PeerAuthentication (mutual TLS) and ServiceEntry (external hosts) on the workloads.

- STRICT mTLS becomes ``authentication: required`` on the workload's ingress rules, but only
  with ``--mutual-auth`` (the cluster runs Cilium mutual authentication, ``cilium.mutualAuth``)
  and only on rules whose callers are workloads (Cilium authenticates identities, not CIDRs).
  Cilium's mutual authentication checks identities; encryption on the wire is WireGuard or
  IPsec, a cluster setting (https://docs.cilium.io/en/v1.16/network/servicemesh/mutual-authentication/mutual-authentication/).
- A MESH_EXTERNAL ServiceEntry's hosts become FQDN egress on its ports for every workload of
  the namespaces it is exported to (our namespaces deny all other egress).
"""

from __future__ import annotations

import re
from typing import Any

from migrate.authz import WorkloadSet, selector_of
from migrate.reader import IstioObject
from migrate.report import ObjectReport

__all__ = ["apply_peer_authentication", "apply_service_entry"]

_FQDN = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def apply_peer_authentication(
    obj: IstioObject, rep: ObjectReport, workloads: WorkloadSet, mutual_auth: bool, root: str
) -> None:
    mode = str((obj.spec.get("mtls") or {}).get("mode") or "UNSET")
    if obj.spec.get("portLevelMtls"):
        rep.gap(
            "portLevelMtls",
            "per-port mTLS modes: Cilium mutual authentication is set per rule, not per port; not carried over",
            "authentication: required on the rules of those ports, by hand",
        )
    if mode != "STRICT":
        rep.carried = True
        rep.note(
            f"mtls.mode {mode}: nothing to enforce; without mutual authentication Cilium accepts plaintext as Istio's {mode} does"
        )
        return
    if not mutual_auth:
        rep.gap(
            "mtls.mode",
            "STRICT needs Cilium mutual authentication on the cluster; rerun with --mutual-auth once cilium.mutualAuth is on",
            "Cilium mutual authentication (SPIRE, beta in 1.16) plus WireGuard or IPsec encryption",
        )
        return
    selector = selector_of(obj)
    targets = [
        w
        for (ns, _s), w in sorted(workloads.workloads.items())
        if (obj.namespace == root or ns == obj.namespace) and w.compatible(selector)
    ]
    if not targets:
        rep.gap(
            "selector",
            "no workload with a traffic policy is selected; nothing to require authentication on",
            "authentication: required on the rules, once they exist",
        )
        return
    rep.carried = True
    for target in targets:
        for rule in target.rules:
            if _workload_only(rule.peers):
                rule.authentication = True
            else:
                rep.gap(
                    f"mtls.mode (for {target.namespace}/{target.name or dict(target.selector)})",
                    f"the rule from {rule.origin.obj.ref} {rule.at} admits callers that are not workloads (any source or CIDRs); Cilium can only authenticate workload identities, so it stays without authentication",
                    "restrict those callers to workloads, then add authentication: required",
                )


def _workload_only(peers: Any) -> bool:
    return all(any(k in ("namespace", "labels") for k, _v in peer) for peer in peers)


def apply_service_entry(obj: IstioObject, rep: ObjectReport, workloads: WorkloadSet) -> None:
    spec = obj.spec
    location = spec.get("location") or "MESH_EXTERNAL"
    if location != "MESH_EXTERNAL":
        rep.gap(
            "location",
            "MESH_INTERNAL entries add services to the mesh registry; Cilium has no registry",
            "a Kubernetes Service (with manual Endpoints/EndpointSlices) for the workloads",
        )
        return
    for key, why in (
        ("addresses", "virtual IPs for the hosts; Cilium resolves names through DNS"),
        ("endpoints", "static endpoints; Cilium needs DNS names or CIDRs"),
        ("workloadSelector", "VM/workload entries are not migrated"),
        ("subjectAltNames", "TLS origination checks are Istio's"),
    ):
        if spec.get(key):
            rep.gap(
                key,
                why,
                "egress to the addresses as CIDRs, by hand"
                if key in ("addresses", "endpoints")
                else "none",
            )
    peers, ports = _egress_peers(obj, rep)
    if not peers:
        return
    exported = spec.get("exportTo") or ["*"]
    namespaces = {obj.namespace if n == "." else n for n in exported}
    targets = [
        w
        for (ns, _s), w in sorted(workloads.workloads.items())
        if "*" in namespaces or ns in namespaces
    ]
    if not targets:
        rep.gap(
            "hosts",
            f"no workload with a traffic policy in the namespaces it is exported to ({', '.join(sorted(namespaces))}); nothing carries the egress",
            "egress: [{to: [{fqdn: ...}], ports: [...]}] on the workloads that call it",
        )
        return
    rep.carried = True
    rule: dict[str, Any] = {"to": peers, "ports": ports}
    for target in targets:
        target.sources.add(rep.obj.ref)
        if rule not in target.egress:
            target.egress.append(rule)


def _egress_peers(obj: IstioObject, rep: ObjectReport) -> tuple[list[dict[str, str]], list[str]]:
    peers = []
    for host in sorted(set(obj.spec.get("hosts") or [])):
        host = host.lower()
        if host.startswith("*.") and _FQDN.fullmatch(host[2:]):
            peers.append({"fqdnPattern": host})
        elif _FQDN.fullmatch(host):
            peers.append({"fqdn": host})
        else:
            rep.gap(
                "hosts",
                f"{host!r} is not a DNS name Cilium can match",
                "a DNS name or *.domain pattern",
            )
    ports = []
    for port in obj.spec.get("ports") or []:
        number = port.get("number")
        proto = "udp" if str(port.get("protocol", "")).upper() == "UDP" else "tcp"
        ports.append(f"{number}/{proto}")
    if not ports:
        rep.gap("ports", "no ports: the egress would open every port", "list the ports")
        return [], []
    return peers, sorted(set(ports))
