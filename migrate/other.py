"""Kinds reported, not converted: DestinationRule, Sidecar, RequestAuthentication, and every
kind this command does not read (listed with what Cilium offers instead)."""

from __future__ import annotations

from migrate.reader import IstioObject
from migrate.report import ObjectReport

__all__ = [
    "report_destination_rule",
    "report_other",
    "report_request_authentication",
    "report_sidecar",
]

_CEC = "Envoy cluster settings through CiliumEnvoyConfig, not generated"
_DR_FIELDS = {
    "loadBalancer": (
        "load-balancing policy per service",
        "Cilium's Maglev or random service load balancing (cluster-wide setting), or " + _CEC,
    ),
    "connectionPool": ("connection pool limits", _CEC),
    "outlierDetection": ("outlier detection (ejecting failing endpoints)", _CEC),
    "tls": (
        "client TLS settings (ISTIO_MUTUAL: the mesh's mTLS)",
        "Cilium mutual authentication plus WireGuard/IPsec encryption; TLS origination: " + _CEC,
    ),
    "portLevelSettings": ("per-port traffic policy", _CEC),
    "tunnel": ("tunnelling through a proxy", "none"),
    "proxyProtocol": ("PROXY protocol towards upstreams", "none"),
}


def report_destination_rule(obj: IstioObject, rep: ObjectReport) -> None:
    policy = obj.spec.get("trafficPolicy") or {}
    for key in sorted(policy):
        why, alt = _DR_FIELDS.get(key, ("traffic policy setting", _CEC))
        rep.gap(
            f"trafficPolicy.{key}",
            f"{why} is Envoy configuration Istio generates; not carried over",
            alt,
        )
    for i, subset in enumerate(obj.spec.get("subsets") or []):
        rep.gap(
            f"subsets[{i}] ({subset.get('name')})",
            "subsets are label-selected versions of a Service; Gateway API backends are whole Services",
            "one Kubernetes Service per subset (its labels as selector) as a backendRef",
        )
    if obj.spec.get("exportTo"):
        rep.gap("exportTo", "visibility scoping is Istio's", "none")
    if obj.spec.get("workloadSelector"):
        rep.gap("workloadSelector", "per-client settings are Istio's", "none")
    if not rep.gaps:
        rep.gap("spec", "a DestinationRule with nothing in it", "none needed")


def report_sidecar(obj: IstioObject, rep: ObjectReport) -> None:
    for key in sorted(obj.spec) or ["spec"]:
        rep.gap(
            key,
            "Sidecar configures Istio's per-workload proxy; Cilium has no per-pod proxy (its Envoy runs per node)",
            "egress restrictions: `egress` rules in the traffic-policy files (every namespace with policies denies other egress)",
        )
    rep.note("no vendored CRD schema for Sidecar; only its shape was checked")


def report_request_authentication(obj: IstioObject, rep: ObjectReport) -> None:
    rep.gap(
        "jwtRules" if obj.spec.get("jwtRules") else "spec",
        "JWT validation has no Cilium equivalent; AuthorizationPolicy sources with requestPrincipals are left out",
        "validate JWTs in the application, or an Envoy jwt_authn filter through CiliumEnvoyConfig (not generated)",
    )
    rep.note("no vendored CRD schema for RequestAuthentication; only its shape was checked")


_KNOWN_ELSEWHERE = {
    "EnvoyFilter": "CiliumEnvoyConfig, written by hand",
    "Telemetry": "Hubble metrics and flow logs (cilium.hubble settings)",
    "WorkloadEntry": "a Kubernetes Service with EndpointSlices",
    "WorkloadGroup": "a Kubernetes Service with EndpointSlices",
    "WasmPlugin": "none in Cilium 1.16",
    "ProxyConfig": "none (Cilium's Envoy is configured cluster-wide)",
    "Service": "none needed: Services stay as they are (this one only told us the workload's ports)",
}


def report_other(obj: IstioObject, rep: ObjectReport) -> None:
    alt = _KNOWN_ELSEWHERE.get(obj.kind, "none")
    rep.gap("kind", f"{obj.api_version} {obj.kind} is not a kind this command migrates", alt)
