"""Traffic policies as CiliumNetworkPolicy objects on one cluster.

``render_policies`` turns a checked ``PolicySet`` (components/traffic/) into plain CNP
objects; ``NetworkPolicies`` creates each as a ``kubernetes.apiextensions.CustomResource`` on
the cluster's provider, depending on the Cilium release: the CNP CRD is installed by the
Cilium operator, so on a new cluster a policy created earlier fails with "no matches for kind".

Per namespace with policies: ``meshless-default-deny`` selects every pod, turns on default
deny in both directions, and allows only DNS lookups through kube-dns (through Cilium's DNS
proxy, which is also what makes ``toFQDNs`` work) and probes from the node. Per service: one
CNP named after it, with its ingress rules, the egress derived from its callees' ingress
rules, its own egress rules, and a DNS lookup rule for each name it may reach by FQDN.

Not managed here: clusterwide policies (CCNP), Kubernetes NetworkPolicy, deny rules, the
Cilium settings these rules need (Envoy for L7, mutual auth; the program checks those), and
NodeLocal DNSCache setups (lookups there go to a node-local address, not kube-dns).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.common import type_token
from components.platform import Platform, platform_egress
from components.traffic import (
    DEFAULT_DENY_NAME,
    EgressRule,
    HttpRule,
    IngressPeer,
    IngressRule,
    PolicySet,
    PortSpec,
    ServiceKey,
    ServicePolicy,
    egress_ports,
    grpc_path,
    ingress_ports,
    peer_kind,
)

__all__ = [
    "CNP_API_VERSION",
    "CNP_KIND",
    "DEFAULT_DENY_NAME",
    "KUBE_DNS",
    "MANAGED_LABELS",
    "NAMESPACE_LABEL",
    "SOURCE_ANNOTATION",
    "NetworkPolicies",
    "render_policies",
]

# CRD ciliumnetworkpolicies.cilium.io, version v2 (the served and stored version in Cilium 1.16
# and 1.17; schema in vendor/crd-schemas/ciliumnetworkpolicy_v2.json).
CNP_API_VERSION = "cilium.io/v2"
CNP_KIND = "CiliumNetworkPolicy"

NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace"
# CoreDNS on EKS and kube-dns on GKE both carry k8s-app=kube-dns in kube-system.
KUBE_DNS = {"matchLabels": {NAMESPACE_LABEL: "kube-system", "k8s:k8s-app": "kube-dns"}}
DNS_PORTS = [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]
MANAGED_LABELS = {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "meshless"}
# Which policy file a CNP came from, for whoever finds it with kubectl.
SOURCE_ANNOTATION = "meshless.io/source"

JSON = dict[str, Any]


def render_policies(policies: PolicySet, platform: Platform | None = None) -> list[JSON]:
    """Every CiliumNetworkPolicy of a policy set as a plain object (apiVersion, kind, metadata,
    spec), in a stable order: per namespace its default deny, then its services by name.
    ``platform`` (the cluster's cloud) decides what ``cloudIdentity`` allows."""
    calls_by_caller: dict[ServiceKey, list[tuple[ServiceKey, tuple[PortSpec, ...]]]] = defaultdict(
        list
    )
    for (caller, callee), ports in policies.calls.items():
        calls_by_caller[caller].append((callee, ports))
    out: list[JSON] = []
    for namespace in sorted(policies.namespaces):
        out.append(_default_deny(namespace, policies.folder))
        for service in policies.services:
            if service.namespace != namespace:
                continue
            spec = _service_spec(policies, service, calls_by_caller[service.key], platform)
            if spec is not None:
                out.append(_object(service.name, namespace, policies.sources[service.key], spec))
    return out


def _object(name: str, namespace: str, source: str, spec: JSON) -> JSON:
    return {
        "apiVersion": CNP_API_VERSION,
        "kind": CNP_KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(MANAGED_LABELS),
            "annotations": {SOURCE_ANNOTATION: source},
        },
        "spec": spec,
    }


def _dns_lookups(rules: list[JSON]) -> JSON:
    """Egress to kube-dns on port 53 through Cilium's DNS proxy, for the names in ``rules``.
    The proxy is what learns the addresses behind toFQDNs names."""
    return {"toEndpoints": [KUBE_DNS], "toPorts": [{"ports": DNS_PORTS, "rules": {"dns": rules}}]}


def _default_deny(namespace: str, folder: str) -> JSON:
    spec = {
        "description": (
            f"Default deny for every pod in {namespace}: only DNS lookups through kube-dns and "
            f"probes from the node are allowed; every other flow needs a rule in {folder}."
        ),
        "endpointSelector": {},
        "enableDefaultDeny": {"ingress": True, "egress": True},
        # host: kubelet liveness/readiness probes come from the node. health: Cilium's own
        # connectivity probes; it grants no workload access.
        "ingress": [{"fromEntities": ["host", "health"]}],
        # Every lookup goes through the DNS proxy, so Hubble shows names and toFQDNs works.
        "egress": [_dns_lookups([{"matchPattern": "*"}])],
    }
    return _object(DEFAULT_DENY_NAME, namespace, folder, spec)


def _service_spec(
    policies: PolicySet,
    service: ServicePolicy,
    calls: list[tuple[ServiceKey, tuple[PortSpec, ...]]],
    platform: Platform | None,
) -> JSON | None:
    ingress = [block for rule in service.ingress for block in _ingress(policies, service, rule)]
    egress = [_call(policies, service.namespace, callee, ports) for callee, ports in calls]
    egress += [block for rule in service.egress for block in _egress(policies, service, rule)]
    platform_rules, platform_names = platform_egress(
        service.cloud_identity, service.kube_apiserver, platform
    )
    egress += platform_rules
    names = _fqdn_lookups(service)
    names += [name for name in platform_names if name not in names]
    if names:
        egress.append(_dns_lookups(names))
    if not ingress and not egress:
        return None
    spec: JSON = {
        "description": service.description
        or f"{service.namespace}/{service.name}: who may call it and what it may reach",
        "endpointSelector": {"matchLabels": service.pod_selector},
    }
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    return spec


# -- peers ---------------------------------------------------------------------------------


def _endpoint(policies: PolicySet, own_namespace: str, peer: IngressPeer) -> JSON:
    """An endpoint selector for a service, labels or namespace peer. A namespaced CNP only
    matches its own namespace unless the selector names another one."""
    kind = peer_kind(peer)
    namespace = peer.namespace or own_namespace
    labels: dict[str, str] = {}
    if kind == "service":
        assert peer.service is not None
        labels = policies.selector_for(namespace, peer.service)
    elif kind == "labels":
        labels = dict(peer.labels or {})
    if namespace != own_namespace or kind == "namespace":
        labels[NAMESPACE_LABEL] = namespace
    return {"matchLabels": labels}


def _peer_blocks(
    policies: PolicySet, own_namespace: str, peers: list[Any], prefix: str
) -> list[JSON]:
    """The peers of one rule, one Cilium rule per selector kind: Cilium refuses to combine
    e.g. toFQDNs with toEndpoints in one rule."""
    endpoints: list[JSON] = []
    entities: list[str] = []
    cidrs: list[JSON] = []
    fqdns: list[JSON] = []
    for peer in peers:
        kind = peer_kind(peer)
        if kind in ("service", "labels", "namespace"):
            selector = _endpoint(policies, own_namespace, peer)
            if selector not in endpoints:
                endpoints.append(selector)
        elif kind == "entity":
            entities.append(peer.entity)
        elif kind == "cidr":
            cidrs.append(
                {"cidr": peer.cidr, **({"except": list(peer.except_)} if peer.except_ else {})}
            )
        elif kind == "fqdn":
            fqdns.append({"matchName": peer.fqdn})
        else:
            fqdns.append({"matchPattern": peer.fqdn_pattern})
    blocks: list[JSON] = []
    if endpoints:
        blocks.append({f"{prefix}Endpoints": endpoints})
    if entities:
        blocks.append({f"{prefix}Entities": sorted(set(entities))})
    if cidrs:
        blocks.append({f"{prefix}CIDRSet": cidrs})
    if fqdns:
        blocks.append({"toFQDNs": fqdns})
    return blocks


# -- ports and L7 --------------------------------------------------------------------------


def _port(spec: PortSpec) -> JSON:
    port: JSON = {"port": str(spec.port), "protocol": spec.protocol}
    if spec.end_port:
        port["endPort"] = spec.end_port
    return port


def _http(rule: HttpRule) -> list[JSON]:
    """One Cilium HTTP rule per method and path (Cilium ORs the list), so no regex
    alternation is needed and each entry reads like a request line."""
    present = [h.name for h in rule.headers if h.value is None]
    exact = [{"name": h.name, "value": h.value} for h in rule.headers if h.value is not None]
    out = []
    methods: list[str | None] = [*rule.method] if rule.method else [None]
    for method in methods:
        for path in rule.path_regexes:
            entry: JSON = {}
            if method:
                entry["method"] = method
            if path:
                entry["path"] = path
            if rule.host:
                entry["host"] = rule.host
            if present:
                entry["headers"] = present
            if exact:
                entry["headerMatches"] = exact
            out.append(entry)
    return out


def _l7(rule: IngressRule | EgressRule) -> JSON | None:
    if rule.http or rule.grpc:
        http = [entry for item in rule.http for entry in _http(item)]
        for grpc in rule.grpc:
            # gRPC is HTTP/2 POST to /package.Service/Method.
            http += [
                {"method": "POST", "path": grpc_path(grpc.service, method)}
                for method in ([*grpc.methods] if grpc.methods else [None])
            ]
        return {"http": http}
    if rule.kafka:
        return {
            "kafka": [
                {
                    "role": k.role,
                    "topic": k.topic,
                    **({"clientID": k.client_id} if k.client_id else {}),
                }
                for k in rule.kafka
            ]
        }
    if isinstance(rule, EgressRule) and rule.dns:
        return {
            "dns": [
                {"matchName": d.match_name} if d.match_name else {"matchPattern": d.match_pattern}
                for d in rule.dns
            ]
        }
    return None


def _with_ports(block: JSON, rule: IngressRule | EgressRule, ports: tuple[PortSpec, ...]) -> JSON:
    out = dict(block)
    if ports:
        entry: JSON = {"ports": [_port(p) for p in ports]}
        rules = _l7(rule)
        if rules:
            entry["rules"] = rules
        out["toPorts"] = [entry]
    if rule.authentication:
        out["authentication"] = {"mode": rule.authentication}
    return out


# -- rules ---------------------------------------------------------------------------------


def _ingress(policies: PolicySet, service: ServicePolicy, rule: IngressRule) -> list[JSON]:
    ports = ingress_ports(service, rule)
    return [
        _with_ports(block, rule, ports)
        for block in _peer_blocks(policies, service.namespace, rule.from_, "from")
    ]


def _egress(policies: PolicySet, service: ServicePolicy, rule: EgressRule) -> list[JSON]:
    """Service peers get their own target's ports (when the rule lists none); the rest share
    the rule's ports."""
    by_ports: dict[tuple[PortSpec, ...], list[Any]] = defaultdict(list)
    for peer in rule.to:
        target = None
        if peer_kind(peer) == "service":
            assert peer.service is not None
            target = policies.service(peer.namespace or service.namespace, peer.service)
        by_ports[egress_ports(rule, target)].append(peer)
    return [
        _with_ports(block, rule, ports)
        for ports, peers in by_ports.items()
        for block in _peer_blocks(policies, service.namespace, peers, "to")
    ]


def _call(
    policies: PolicySet, own_namespace: str, callee: ServiceKey, ports: tuple[PortSpec, ...]
) -> JSON:
    """The caller's half of a callee's ingress rule: L3/L4 only, the callee enforces L7."""
    selector = dict(policies.selector_for(*callee))
    if callee[0] != own_namespace:
        selector[NAMESPACE_LABEL] = callee[0]
    rule: JSON = {"toEndpoints": [{"matchLabels": selector}]}
    if ports:
        rule["toPorts"] = [{"ports": [_port(p) for p in ports]}]
    return rule


def _fqdn_lookups(service: ServicePolicy) -> list[JSON]:
    names: list[JSON] = []
    for rule in service.egress:
        for peer in rule.to:
            entry = (
                {"matchName": peer.fqdn}
                if peer.fqdn
                else {"matchPattern": peer.fqdn_pattern}
                if peer.fqdn_pattern
                else None
            )
            if entry and entry not in names:
                names.append(entry)
    return names


class NetworkPolicies(pulumi.ComponentResource):
    """Every CiliumNetworkPolicy of one cluster, each after the cluster's Cilium release."""

    policies: dict[str, k8s.apiextensions.CustomResource]
    names: list[str]

    def __init__(
        self,
        name: str,
        policies: PolicySet,
        provider: k8s.Provider,
        release: pulumi.Resource,
        ready: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        platform: Platform | None = None,
    ) -> None:
        super().__init__(type_token("cilium", "NetworkPolicies"), name, None, opts)
        # The CNP CRD is registered by the Cilium operator when it starts (Cilium 1.16), so a
        # policy waits for the release and for the cluster's readiness point (``ready``: on EKS
        # the CoreDNS add-on, whose pods only get addresses once the operator runs); without
        # it a first `up` fails with "no matches for kind".
        child = pulumi.ResourceOptions(
            parent=self, provider=provider, depends_on=[release, *(ready or [])]
        )
        self.policies = {}
        for obj in render_policies(policies, platform):
            meta = obj["metadata"]
            key = f"{meta['namespace']}/{meta['name']}"
            self.policies[key] = k8s.apiextensions.CustomResource(
                f"{name}-{meta['namespace']}-{meta['name']}",
                api_version=obj["apiVersion"],
                kind=obj["kind"],
                metadata=meta,
                spec=obj["spec"],
                opts=child,
            )
        self.names = sorted(self.policies)
        self.register_outputs({"policies": self.names, "count": len(self.names)})
