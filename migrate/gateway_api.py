"""Istio Gateways to Gateway API v1.1 Gateways on the ``cilium`` GatewayClass.

Each server and host becomes a listener. Cilium 1.16 implements Gateway API v1.1
(https://docs.cilium.io/en/v1.16/network/servicemesh/gateway-api/gateway-api/); the
v1.1 standard-channel schemas in vendor/crd-schemas/ check every object we write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from migrate.reader import IstioObject
from migrate.report import ObjectReport

__all__ = [
    "GATEWAY_CLASS",
    "GW_API",
    "HOSTNAME",
    "ConvertedGateway",
    "convert_gateway",
    "finish_gateway",
]

GATEWAY_CLASS = "cilium"
GW_API = "gateway.networking.k8s.io/v1"
HOSTNAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class ConvertedGateway:
    obj: IstioObject
    report: ObjectReport
    listeners: list[dict[str, Any]] = field(default_factory=list)
    protocols: set[str] = field(default_factory=set)  # Istio server protocols carried
    redirect_listeners: list[str] = field(default_factory=list)
    route_namespaces: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str]:
        return (self.obj.namespace, self.obj.name)

    @property
    def grpc_only(self) -> bool:
        return self.protocols == {"GRPC"}


def convert_gateway(obj: IstioObject, rep: ObjectReport) -> ConvertedGateway:
    gw = ConvertedGateway(obj, rep)
    if obj.spec.get("selector"):
        rep.note(
            "selector (the Istio ingress gateway pods) is not needed: Cilium serves each Gateway from its Envoy and gives it its own LoadBalancer Service"
        )
    seen: set[tuple[int, str, str]] = set()
    for i, server in enumerate(obj.spec.get("servers") or []):
        _server(gw, server, f"servers[{i}]", seen)
    rep.carried = bool(gw.listeners)
    if not gw.listeners:
        rep.gap("servers", "no server could become a listener", "none")
    return gw


def _server(gw: ConvertedGateway, server: dict[str, Any], at: str, seen: set[Any]) -> None:
    rep = gw.report
    port = server.get("port") or {}
    protocol = str(port.get("protocol") or "").upper()
    tls = server.get("tls") or {}
    for key in ("bind", "defaultEndpoint"):
        if server.get(key):
            rep.gap(
                f"{at}.{key}",
                "binds to Istio gateway workload internals",
                "none; Cilium's Gateway listens on its own Service",
            )
    listener_proto = _listener_protocol(rep, protocol, tls, at)
    if listener_proto is None:
        return
    gw.protocols.add(protocol)
    number = int(port.get("number") or 0)
    for j, host in enumerate(sorted(set(server.get("hosts") or ["*"]))):
        namespace, _, name = host.rpartition("/")
        if namespace not in ("", "*"):
            rep.note(
                f"{at}.hosts[{j}] {host!r}: the namespace part becomes the listener's allowed route namespaces"
            )
        hostname = name.lower()
        if hostname != "*" and not HOSTNAME.fullmatch(hostname):
            rep.gap(
                f"{at}.hosts[{j}]",
                f"{host!r} is not a Gateway API hostname",
                "an exact or *.domain hostname",
            )
            continue
        listener_key = (number, listener_proto, hostname)
        if listener_key in seen:
            continue
        seen.add(listener_key)
        listener: dict[str, Any] = {
            "name": f"{listener_proto.lower()}-{number}-{len(gw.listeners)}",
            "port": number,
            "protocol": listener_proto,
        }
        if hostname != "*":
            listener["hostname"] = hostname
        if listener_proto == "HTTPS":
            listener["tls"] = {
                "mode": "Terminate",
                "certificateRefs": [{"kind": "Secret", "name": tls["credentialName"]}],
            }
            rep.note(
                f"{at}: the certificate Secret {tls['credentialName']} must be in namespace {gw.obj.namespace} (Istio read it from the gateway workload's namespace)"
            )
        elif tls.get("httpsRedirect"):
            gw.redirect_listeners.append(listener["name"])
        gw.listeners.append(listener)


def _listener_protocol(
    rep: ObjectReport, protocol: str, tls: dict[str, Any], at: str
) -> str | None:
    """HTTP or HTTPS for a server Gateway API v1.1 standard can serve; None (reported) else."""
    mode = str(tls.get("mode") or "SIMPLE")
    if protocol in ("HTTP", "HTTP2", "GRPC"):
        return "HTTP"
    elif protocol == "HTTPS" and mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL", "ISTIO_MUTUAL"):
        if mode != "SIMPLE":
            rep.gap(
                f"{at}.tls.mode",
                f"{mode}: client certificate validation at the gateway is not in Gateway API v1.1 standard; the listener terminates TLS without checking client certificates",
                "none in Cilium 1.16 Gateway API",
            )
        if not tls.get("credentialName"):
            rep.gap(
                f"{at}.tls",
                "HTTPS without credentialName (file-mounted certificates) cannot be referenced",
                "a kubernetes.io/tls Secret named in certificateRefs",
            )
            return None
        for key in (
            "minProtocolVersion",
            "maxProtocolVersion",
            "cipherSuites",
            "subjectAltNames",
            "caCertificates",
        ):
            if tls.get(key):
                rep.gap(
                    f"{at}.tls.{key}",
                    "TLS parameters are not in Gateway API v1.1 standard",
                    "none in Cilium 1.16 Gateway API",
                )
    else:
        rep.gap(
            f"{at}.port.protocol",
            f"{protocol or 'no protocol'}{' ' + mode if protocol in ('HTTPS', 'TLS') else ''}: TLS passthrough and TCP need TLSRoute/TCPRoute, which are experimental in Gateway API v1.1",
            "Cilium's experimental TLSRoute support (not generated)",
        )
        return None
    return "HTTPS"


def finish_gateway(gw: ConvertedGateway) -> list[dict[str, Any]]:
    """The Gateway (listeners admitting the namespaces of the routes that attach to it) and
    the HTTPS redirect route, if any server asked for one."""
    others = sorted(gw.route_namespaces - {gw.obj.namespace})
    listeners = []
    for listener in gw.listeners:
        listener = dict(listener)
        if others:
            listener["allowedRoutes"] = {
                "namespaces": {
                    "from": "Selector",
                    "selector": {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/metadata.name",
                                "operator": "In",
                                "values": sorted({gw.obj.namespace, *others}),
                            }
                        ]
                    },
                }
            }
        listeners.append(listener)
    out: list[dict[str, Any]] = [
        {
            "apiVersion": GW_API,
            "kind": "Gateway",
            "metadata": {"name": gw.obj.name, "namespace": gw.obj.namespace},
            "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": listeners},
        }
    ]
    if gw.redirect_listeners:
        out.append(
            {
                "apiVersion": GW_API,
                "kind": "HTTPRoute",
                "metadata": {
                    "name": f"{gw.obj.name}-https-redirect",
                    "namespace": gw.obj.namespace,
                },
                "spec": {
                    "parentRefs": [
                        {"name": gw.obj.name, "sectionName": name} for name in gw.redirect_listeners
                    ],
                    "rules": [
                        {
                            "filters": [
                                {
                                    "type": "RequestRedirect",
                                    "requestRedirect": {"scheme": "https", "statusCode": 301},
                                }
                            ]
                        }
                    ],
                },
            }
        )
    return out
