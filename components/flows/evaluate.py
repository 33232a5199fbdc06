"""Which flows a set of CiliumNetworkPolicy objects allows: a dry-run ``cilium policy trace``
that also reads L7 rules.

The evaluator reads the generated objects (the dicts the plan writes under
``out/<stack>/manifests/<cluster>/``), never our traffic models, so it judges what would be
applied. A flow is allowed when the source's egress allows it (if the source is a pod) AND the
destination's ingress allows it (if the destination is a pod); each side names the rule that
decided it.

Semantics, each row held by tests/test_flow_eval.py with an allowed and a denied flow:

| # | rule | what the evaluator does | source |
| --- | --- | --- | --- |
| 1 | default deny per direction | an endpoint no policy selects allows everything in that direction; once a selecting policy has rules in a direction (or ``enableDefaultDeny.<dir>: true``), only what a rule allows passes; ``enableDefaultDeny.<dir>: false`` keeps that policy from turning it on; any selecting policy that requests it wins | docs.cilium.io security/policy/intro ("Policy Enforcement Modes": default mode); CNP CRD ``enableDefaultDeny`` field docs |
| 2 | both ends | a pod-to-pod flow needs the caller's egress and the callee's ingress | docs.cilium.io security/policy/intro; cilium/cilium#670 review ("allowed by both the egress section of the source endpoint and by the ingress section of the destination") |
| 3 | deny precedence | a matching ``ingressDeny``/``egressDeny`` rule drops the flow whatever any allow rule says, also without default deny | docs.cilium.io security/policy/deny ("Deny policies take precedence over allow policies") |
| 4 | namespaced selectors | ``endpointSelector`` selects pods of the policy's namespace only; a ``fromEndpoints``/``toEndpoints`` selector without ``io.kubernetes.pod.namespace`` matches the policy's namespace only, so ``{}`` means "every pod of this namespace" | docs.cilium.io security/policy/kubernetes ("Namespaces": CiliumNetworkPolicy selectors are namespace-scoped) |
| 5 | L3 peers | a rule applies to a peer matched by any of its ``*Endpoints``/``*Entities``/``*CIDR``/``*CIDRSet``/``toFQDNs`` selectors; a rule with ``toPorts`` but no peer selector applies to every peer (L4-only); an empty rule ``{}`` matches nothing but still turns on default deny | docs.cilium.io security/policy/language (Layer 3 / Layer 4); cilium/cilium#2238 ("If a rule has no fromEndpoints and a toPorts rule, traffic from all endpoints will be allowed to that port") |
| 6 | entities | ``cluster`` is every in-cluster identity (pods, host, remote-node, health, ingress); ``world`` is outside the cluster; ``all`` is both; ``kube-apiserver`` is the API server; the ingress controller's proxy has the ``ingress`` identity | docs.cilium.io security/policy/language ("Entities based") |
| 7 | CIDR rules | ``toCIDR``/``toCIDRSet`` (with ``except``) select only addresses outside the cluster (``world``); an address Cilium classifies as ``host`` is never matched by a CIDR, and ``toEntities: [host]`` never matches a ``world`` address (GKE metadata server: Smana/runlore#562; EKS Pod Identity agent: cilium/cilium#34387) | docs.cilium.io security/policy/language ("IP/CIDR based": CIDR rules do not apply to cluster endpoints or hosts) |
| 8 | ports | a rule without ``toPorts`` allows every port; ``port: "0"`` or no port means every port; ``endPort`` makes a range; protocol ``ANY`` (the default) matches TCP, UDP and SCTP; named ports are not resolved here (no match) | docs.cilium.io security/policy/language ("Layer 4 Examples") |
| 9 | L3/L4 beats L7 | if one matching rule allows the port without L7 rules, every request on it is allowed, whatever L7 rules another rule lists ("the layer 7 portions of the latter rule will have no effect"); an L3-only rule counts as such a rule on every port | docs.cilium.io security/policy/layer7; cilium/cilium pkg/envoy/server.go ("L3/L4 only rule, everything in L7 is allowed") |
| 10 | HTTP rules | a request is allowed if at least one HTTP rule of the matching entries matches; in a rule every given field must match: ``method``, ``path`` (against ``:path``, query string included) and ``host`` are RE2 regexes that must match the WHOLE value (Envoy ``safe_regex`` with ``GoogleRe2``); ``headers`` entries are ``Name`` (present) or ``Name: value``/``Name value`` (exact); ``headerMatches`` need the exact value (mismatch action FAIL) | docs.cilium.io security/policy/layer7 ("HTTP"); cilium/cilium pkg/envoy/server.go ``getHTTPRule`` |
| 11 | toFQDNs needs the DNS proxy | ``toFQDNs`` only learns addresses from lookups the DNS proxy saw: the caller must also have an egress rule to the DNS server on port 53 with ``rules.dns`` matching the name; ``matchPattern`` ``*`` matches any name, otherwise ``*`` matches DNS characters except ``.``; names compare case-insensitively | docs.cilium.io security/policy/layer7 ("DNS Policy and IP Discovery", "DNS Proxy"); cilium/cilium#32567 ("port 53 rules to trigger DNS interception, which is also required for ToFQDN rules") |

Not modelled (a rule using them matches nothing here, so the evaluator errs towards "denied"):
``toServices``, ``toGroups``, ``*Nodes``, ``*Requires``, ``cidrGroupRef``, ICMP rules, named ports,
Kafka request contents, clusterwide policies and host policies. Mutual authentication
(``authentication.mode``) is a runtime handshake: a rule that requires it is treated as
allowing once the handshake succeeds. Reply traffic is stateful in Cilium and not a flow here.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from components.traffic.regex import compile_re2

__all__ = [
    "DNS_SERVER",
    "Decision",
    "Endpoint",
    "Flow",
    "PolicyIndex",
    "Request",
    "Verdict",
]

JSON = dict[str, Any]
Direction = Literal["ingress", "egress"]

NAMESPACE_KEY = "io.kubernetes.pod.namespace"
SOURCE_ANNOTATION = "meshless.io/source"
_IN_CLUSTER = {"host", "remote-node", "health", "ingress", "init", "unmanaged"}
_PEER_KEYS = {
    "ingress": ("fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet"),
    "egress": ("toEndpoints", "toEntities", "toCIDR", "toCIDRSet", "toFQDNs"),
}
_UNMODELLED = {
    "toServices",
    "toGroups",
    "toNodes",
    "fromNodes",
    "toRequires",
    "fromRequires",
    "icmps",
}


@dataclass(frozen=True)
class Endpoint:
    """One end of a flow as Cilium sees it: a pod (namespace and labels) or a reserved
    identity (``entity``: host, remote-node, health, ingress, kube-apiserver, world), with an
    address or DNS name for destinations outside the cluster."""

    name: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    entity: str | None = None
    ip: str | None = None
    fqdn: str | None = None

    @property
    def is_pod(self) -> bool:
        return self.entity is None

    @property
    def entities(self) -> frozenset[str]:
        """The entity names that select this endpoint (row 6)."""
        if self.is_pod or self.entity in _IN_CLUSTER:
            own = {self.entity} if self.entity else set()
            return frozenset({*own, "cluster", "all"})
        if self.entity == "world":
            version = ipaddress.ip_address(self.ip).version if self.ip else None
            extra = {f"world-ipv{version}"} if version else set()
            return frozenset({"world", "all", *extra})
        return frozenset({str(self.entity), "all"})

    def label_value(self, source: str, key: str) -> str | None:
        """The value of a selector key (``k8s:app``, ``reserved:host``, ``app``), or None."""
        if source == "reserved":
            return "" if self.entity == key else None
        if not self.is_pod or source not in ("k8s", "any"):
            return None
        if key == NAMESPACE_KEY:
            return self.namespace
        return self.labels.get(key)


@dataclass(frozen=True)
class Request:
    """The L7 part of a flow: an HTTP request, or a DNS lookup (``dns``)."""

    method: str | None = None
    path: str | None = None
    host: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    dns: str | None = None

    def __str__(self) -> str:
        if self.dns:
            return f"DNS lookup {self.dns}"
        shown = f"{self.method} {self.path}"
        return shown + (f" (Host {self.host})" if self.host else "")


@dataclass(frozen=True)
class Flow:
    source: Endpoint
    destination: Endpoint
    port: int
    protocol: str = "TCP"
    request: Request | None = None

    def __str__(self) -> str:
        text = f"{self.source.name} -> {self.destination.name}:{self.port}/{self.protocol}"
        return f"{text} {self.request}" if self.request else text


@dataclass(frozen=True)
class Decision:
    """One direction's verdict and the rule that decided it (a policy path, or why none)."""

    direction: Direction
    allowed: bool
    rule: str
    reason: str

    def __str__(self) -> str:
        word = "allowed" if self.allowed else "DENIED"
        return f"{self.direction} {word} by {self.rule}: {self.reason}"


@dataclass(frozen=True)
class Verdict:
    flow: Flow
    egress: Decision
    ingress: Decision

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and self.ingress.allowed

    @property
    def deciding(self) -> Decision:
        """The denying side (egress first), else the ingress side, where L7 rules live."""
        if not self.egress.allowed:
            return self.egress
        return self.ingress

    def explain(self) -> str:
        verdict = "ALLOWED" if self.allowed else "DENIED"
        return f"{self.flow}: {verdict}\n  {self.egress}\n  {self.ingress}"


# --------------------------------------------------------------------------------------------
# Selectors.


def _split_key(key: str) -> tuple[str, str]:
    source, sep, name = key.partition(":")
    if sep and source in ("k8s", "reserved", "any", "cidr", "fqdn", "unspec"):
        return source, name
    return "any", key


@dataclass(frozen=True)
class _Selector:
    """A label selector (matchLabels + matchExpressions) of an endpoint or a peer."""

    labels: tuple[tuple[str, str, str], ...]
    expressions: tuple[tuple[str, str, str, tuple[str, ...]], ...]

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, namespace: str | None) -> _Selector:
        raw = raw or {}
        labels = [(*_split_key(k), str(v)) for k, v in (raw.get("matchLabels") or {}).items()]
        expressions = [
            (*_split_key(e["key"]), e["operator"], tuple(str(v) for v in e.get("values") or ()))
            for e in raw.get("matchExpressions") or ()
        ]
        keys = {name for _s, name, _v in labels} | {name for _s, name, _o, _v in expressions}
        reserved = any(s == "reserved" for s, _n, _v in labels)
        # Row 4: a namespaced policy's selectors stay in its namespace unless they name one.
        if namespace is not None and NAMESPACE_KEY not in keys and not reserved:
            labels.append(("k8s", NAMESPACE_KEY, namespace))
        return cls(tuple(labels), tuple(expressions))

    def matches(self, endpoint: Endpoint) -> bool:
        for source, key, value in self.labels:
            if endpoint.label_value(source, key) != value:
                return False
        for source, key, operator, values in self.expressions:
            have = endpoint.label_value(source, key)
            if not _expression(operator, have, values):
                return False
        return True


def _expression(operator: str, have: str | None, values: tuple[str, ...]) -> bool:
    if operator == "In":
        return have in values
    if operator == "NotIn":
        return have not in values
    if operator == "Exists":
        return have is not None
    if operator == "DoesNotExist":
        return have is None
    return False


# --------------------------------------------------------------------------------------------
# Peers, ports and L7.


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> Any:
    """Compiled by RE2, the engine Envoy matches with (Python's ``re`` differs: ``\\pN``)."""
    return compile_re2(pattern)


def _full(pattern: str | None, value: str | None) -> bool:
    """Row 10: an RE2 regex that must match the whole value (Envoy safe_regex)."""
    if not pattern:
        return True
    compiled = _regex(pattern)
    return value is not None and compiled is not None and compiled.fullmatch(value) is not None


@lru_cache(maxsize=4096)
def _dns_pattern(pattern: str) -> re.Pattern[str]:
    """Row 11: Cilium's matchPattern: ``*`` alone is every name, else ``*`` is DNS characters
    without the dot; matched case-insensitively against the name with a trailing dot."""
    pattern = pattern.lower().rstrip(".") + "."
    if pattern == "*.":
        return re.compile(r"^([-a-z0-9_]+\.)+$|^\.$")
    parts = [re.escape(p) for p in pattern.split("*")]
    return re.compile("^" + "[-a-z0-9_]*".join(parts) + "$")


def _dns_matches(rule: Mapping[str, Any], name: str) -> bool:
    fqdn = name.lower().rstrip(".") + "."
    if rule.get("matchName"):
        return str(rule["matchName"]).lower().rstrip(".") + "." == fqdn
    if rule.get("matchPattern"):
        return _dns_pattern(str(rule["matchPattern"])).match(fqdn) is not None
    return False


def _cidr_matches(entries: Iterable[Any], endpoint: Endpoint) -> bool:
    """Row 7: CIDRs select world addresses only; a world name without a known address is
    matched only by a CIDR covering every address (/0)."""
    if endpoint.entity != "world":
        return False
    address = ipaddress.ip_address(endpoint.ip) if endpoint.ip else None
    for entry in entries:
        spec = {"cidr": entry} if isinstance(entry, str) else entry
        try:
            network = ipaddress.ip_network(spec.get("cidr", ""), strict=False)
        except ValueError:
            continue
        if address is None:
            if network.prefixlen == 0:
                return True
            continue
        if address.version != network.version or address not in network:
            continue
        excepted = [ipaddress.ip_network(e, strict=False) for e in spec.get("except") or ()]
        if not any(address in e for e in excepted if e.version == address.version):
            return True
    return False


def _port_matches(spec: Mapping[str, Any], port: int, protocol: str) -> bool:
    """Row 8."""
    want = str(spec.get("protocol") or "ANY").upper()
    if want != "ANY" and want != protocol.upper():
        return False
    text = str(spec.get("port") or "0")
    if not text.isdigit():
        return False  # a named port: resolved from pod specs at runtime, unknown here
    low = int(text)
    if low == 0:
        return True
    high = int(spec.get("endPort") or low)
    return low <= port <= max(low, high)


def _header_ok(entry: str, headers: Mapping[str, str]) -> bool:
    name, _sep, value = entry.partition(" ")
    name = name.rstrip(":").lower()
    have = {k.lower(): v for k, v in headers.items()}
    if name not in have:
        return False
    return not value or have[name] == value


def _http_matches(rule: Mapping[str, Any], request: Request) -> bool:
    """Row 10: every field the rule gives must match."""
    if not _full(rule.get("method"), request.method):
        return False
    if not _full(rule.get("path"), request.path):
        return False
    if not _full(rule.get("host"), request.host):
        return False
    if not all(_header_ok(str(h), request.headers) for h in rule.get("headers") or ()):
        return False
    have = {k.lower(): v for k, v in request.headers.items()}
    for match in rule.get("headerMatches") or ():
        if (match.get("mismatch") or "FAIL") != "FAIL":
            continue  # LOG/ADD/DELETE/REPLACE rewrite or log; they never reject
        value = have.get(str(match.get("name", "")).lower())
        if value is None or (match.get("value") and value != match["value"]):
            return False
    return True


# --------------------------------------------------------------------------------------------
# Parsed policies.


@dataclass(frozen=True)
class _Entry:
    """One way a rule lets a flow through: the rule (and port rule) and its L7 rules."""

    where: str
    l7: Mapping[str, Any] | None


@dataclass
class _Rule:
    where: str
    raw: JSON
    peers: dict[str, Any]
    namespace: str
    selectors: list[_Selector]

    @classmethod
    def parse(cls, where: str, raw: JSON, namespace: str, direction: Direction) -> _Rule:
        peers = {k: raw[k] for k in _PEER_KEYS[direction] if raw.get(k)}
        endpoints = peers.get("fromEndpoints") or peers.get("toEndpoints") or []
        selectors = [_Selector.parse(s, namespace) for s in endpoints]
        return cls(where, raw, peers, namespace, selectors)

    def matches_peer(self, peer: Endpoint) -> bool:
        """Row 5."""
        if not self.peers:
            # L4-only: every peer when it lists ports; {} (or only unmodelled fields): none.
            return bool(self.raw.get("toPorts")) and not (_UNMODELLED & set(self.raw))
        if any(s.matches(peer) for s in self.selectors):
            return True
        entities = self.peers.get("fromEntities") or self.peers.get("toEntities") or ()
        if peer.entities & set(entities):
            return True
        cidrs = [*(self.peers.get("fromCIDR") or self.peers.get("toCIDR") or ())]
        cidrs += self.peers.get("fromCIDRSet") or self.peers.get("toCIDRSet") or []
        if cidrs and _cidr_matches(cidrs, peer):
            return True
        fqdns = self.peers.get("toFQDNs") or ()
        return bool(peer.entity == "world" and peer.fqdn) and any(
            _dns_matches(f, peer.fqdn or "") for f in fqdns
        )

    @property
    def by_fqdn_only(self) -> bool:
        return set(self.peers) == {"toFQDNs"}

    def entries(self, port: int, protocol: str) -> list[_Entry]:
        """The port rules of this rule that cover the port (row 8); an L3-only rule covers
        every port without L7 rules (row 9)."""
        port_rules = self.raw.get("toPorts")
        if not port_rules:
            return [_Entry(self.where, None)]
        out = []
        for j, port_rule in enumerate(port_rules):
            ports = port_rule.get("ports") or [{}]
            if any(_port_matches(p, port, protocol) for p in ports):
                rules = port_rule.get("rules") or None
                out.append(_Entry(f"{self.where}.toPorts[{j}]", rules))
        return out


@dataclass
class _Policy:
    name: str
    namespace: str
    selector: _Selector
    rules: dict[str, list[_Rule]]
    default_deny: dict[Direction, bool]

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> _Policy:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        name = str(meta.get("name"))
        spec = obj.get("spec") or {}
        source = (meta.get("annotations") or {}).get(SOURCE_ANNOTATION)
        label = f"CiliumNetworkPolicy {namespace}/{name}" + (f" ({source})" if source else "")
        rules: dict[str, list[_Rule]] = {}
        for section in ("ingress", "ingressDeny", "egress", "egressDeny"):
            direction: Direction = "ingress" if section.startswith("ingress") else "egress"
            rules[section] = [
                _Rule.parse(f"{label} spec.{section}[{i}]", raw or {}, namespace, direction)
                for i, raw in enumerate(spec.get(section) or [])
            ]
        explicit = spec.get("enableDefaultDeny") or {}
        default_deny: dict[Direction, bool] = {}
        for direction in ("ingress", "egress"):
            has_rules = bool(rules[direction] or rules[f"{direction}Deny"])
            value = explicit.get(direction)
            default_deny[direction] = has_rules if value is None else bool(value)
        selector = _Selector.parse(spec.get("endpointSelector"), namespace)
        return cls(label, namespace, selector, rules, default_deny)


class PolicyIndex:
    """The CiliumNetworkPolicies of one cluster, parsed once, answering flows."""

    def __init__(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self.by_namespace: dict[str, list[_Policy]] = defaultdict(list)
        # Flows repeat their ends; which policies select an identity is asked once per identity.
        self._selecting: dict[tuple[Any, ...], list[_Policy]] = {}
        self._dns: dict[tuple[Any, ...], bool] = {}
        for obj in objects:
            if obj.get("kind") != "CiliumNetworkPolicy":
                continue
            policy = _Policy.parse(obj)
            self.by_namespace[policy.namespace].append(policy)

    def selecting(self, endpoint: Endpoint) -> list[_Policy]:
        """Row 4: policies of the endpoint's namespace whose endpointSelector matches it."""
        if not endpoint.is_pod or endpoint.namespace is None:
            return []
        key = (endpoint.namespace, *sorted(endpoint.labels.items()))
        found = self._selecting.get(key)
        if found is None:
            candidates = self.by_namespace.get(endpoint.namespace, [])
            found = self._selecting[key] = [p for p in candidates if p.selector.matches(endpoint)]
        return found

    def evaluate(self, flow: Flow) -> Verdict:
        """Row 2: the caller's egress and the callee's ingress."""
        egress = self._direction("egress", flow.source, flow.destination, flow)
        ingress = self._direction("ingress", flow.destination, flow.source, flow)
        return Verdict(flow, egress, ingress)

    # -- one direction ---------------------------------------------------------------------

    def _direction(
        self, direction: Direction, subject: Endpoint, peer: Endpoint, flow: Flow
    ) -> Decision:
        if not subject.is_pod:
            return Decision(
                direction,
                True,
                f"{subject.name} (not a pod)",
                "CiliumNetworkPolicies apply to pods; nothing is enforced on this side",
            )
        policies = self.selecting(subject)
        for policy in policies:  # row 3: deny first
            for rule in policy.rules[f"{direction}Deny"]:
                if rule.matches_peer(peer) and rule.entries(flow.port, flow.protocol):
                    return Decision(
                        direction, False, rule.where, f"a deny rule matches {peer.name}"
                    )
        enforcing = [p.name for p in policies if p.default_deny[direction]]
        entries, blocked = self._allow_entries(direction, policies, subject, peer, flow)
        if not entries:
            return self._nothing_matches(direction, subject, peer, flow, enforcing, blocked)
        return _l7_decision(direction, entries, flow)

    def _allow_entries(
        self,
        direction: Direction,
        policies: Sequence[_Policy],
        subject: Endpoint,
        peer: Endpoint,
        flow: Flow,
    ) -> tuple[list[_Entry], tuple[str, str] | None]:
        entries: list[_Entry] = []
        blocked = None
        for policy in policies:
            for rule in policy.rules[direction]:
                if not rule.matches_peer(peer):
                    continue
                found = rule.entries(flow.port, flow.protocol)
                if found and rule.by_fqdn_only and not self._dns_visible(subject, peer):
                    # Row 11: without a DNS proxy rule, toFQDNs never learns an address.
                    blocked = (
                        rule.where,
                        f"it allows {peer.fqdn} by name, but no egress rule of "
                        f"{subject.name} sends its lookup of that name through Cilium's DNS "
                        "proxy (port 53 with rules.dns matching it), so the rule never learns "
                        "an address",
                    )
                    continue
                entries += found
        return entries, blocked

    def _dns_visible(self, subject: Endpoint, peer: Endpoint) -> bool:
        key = (subject.namespace, *sorted(subject.labels.items()), peer.fqdn)
        if key not in self._dns:
            self._dns[key] = self._looks_up(subject, peer)
        return self._dns[key]

    def _looks_up(self, subject: Endpoint, peer: Endpoint) -> bool:
        lookup = Flow(subject, DNS_SERVER, 53, "UDP", Request(dns=peer.fqdn))
        for policy in self.selecting(subject):
            for rule in policy.rules["egress"]:
                if not rule.matches_peer(DNS_SERVER):
                    continue
                for entry in rule.entries(lookup.port, lookup.protocol):
                    dns = (entry.l7 or {}).get("dns") or ()
                    if any(_dns_matches(d, peer.fqdn or "") for d in dns):
                        return True
        return False

    @staticmethod
    def _nothing_matches(
        direction: Direction,
        subject: Endpoint,
        peer: Endpoint,
        flow: Flow,
        enforcing: list[str],
        blocked: tuple[str, str] | None,
    ) -> Decision:
        if not enforcing:
            return Decision(
                direction,
                True,
                f"default allow at {direction} of {subject.name}",
                "no selecting CiliumNetworkPolicy has rules in this direction (or all set "
                f"enableDefaultDeny.{direction}: false)",
            )
        if blocked:
            return Decision(direction, False, *blocked)
        side = "to" if direction == "egress" else "from"
        return Decision(
            direction,
            False,
            f"default deny at {direction} of {subject.name} (turned on by {', '.join(enforcing)})",
            f"no {direction} rule allows {side} {peer.name} on {flow.port}/{flow.protocol}",
        )


def _l7_decision(direction: Direction, entries: list[_Entry], flow: Flow) -> Decision:
    """Rows 9 and 10."""
    plain = next((e for e in entries if not e.l7), None)
    if plain is not None:
        return Decision(direction, True, plain.where, "an L3/L4 rule, every request allowed")
    request = flow.request
    if request is None:
        return Decision(
            direction,
            True,
            entries[0].where,
            "allowed at L3/L4; L7 rules filter every request (give a request to check it)",
        )
    tried = []
    for entry in entries:
        l7 = entry.l7 or {}
        if request.dns is not None and l7.get("dns"):
            for k, rule in enumerate(l7["dns"]):
                if _dns_matches(rule, request.dns):
                    return Decision(
                        direction, True, f"{entry.where}.rules.dns[{k}]", "lookup allowed"
                    )
        for k, rule in enumerate(l7.get("http") or ()):
            if request.dns is None and _http_matches(rule, request):
                return Decision(
                    direction, True, f"{entry.where}.rules.http[{k}]", f"{request} matches"
                )
        if l7.get("kafka"):
            return Decision(direction, True, entry.where, "Kafka rules are not checked here")
        tried.append(entry.where)
    return Decision(
        direction,
        False,
        f"L7 rules of {', '.join(tried)}",
        f"no rule matches {request} (Cilium answers 403 Access denied / DNS REFUSED)",
    )


# The DNS server every default deny sends lookups to (CoreDNS on EKS, kube-dns on GKE).
DNS_SERVER = Endpoint(
    "kube-system/kube-dns", namespace="kube-system", labels={"k8s-app": "kube-dns"}
)
