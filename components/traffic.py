"""The traffic-policy file format: who may call a service, how, and what it may reach.

Users write YAML files (one per service or per team) in the folder a cluster's
``trafficPolicies`` names. ``load_policy_folder`` reads every ``*.yaml``/``*.yml`` below it,
validates each against the pydantic models here, cross-checks the whole set, and returns a
``PolicySet``; ``components/network_policy.py`` turns that into CiliumNetworkPolicy objects.

```yaml
services:
  - name: payments              # unique per namespace; callers refer to it by this name
    namespace: shop
    selector: {app: payments}   # pod labels; default {app: <name>}
    ports:
      - {name: grpc, port: 9090}
    ingress:
      - from: [{service: checkout}]
        ports: [grpc]
        grpc:
          - service: shop.payments.v1.Payments
            methods: [Authorize, Capture]
    egress:
      - to: [{fqdn: api.stripe.com}]
        ports: [443]
```

Semantics (what a reviewer should know):
- Every namespace that has a policy here gets a default deny in both directions, with DNS
  lookups through kube-dns allowed. So every workload in such a namespace needs a file.
- Ingress is declared where it is enforced: at the callee. The caller's matching egress (L3/L4)
  is derived for callers that are services declared here (by ``service``, ``namespace`` or
  ``labels``); L7 rules are enforced once, at the callee. Egress to anything else (other
  namespaces' workloads, FQDNs, CIDRs, entities) is written by the caller.
- A literal ``path`` matches that exact path, with or without a query string (Cilium matches
  the regex against the whole ``:path``, query included); ``pathPrefix`` everything below it;
  ``pathRegex`` is passed through as the full-match RE2 regex Cilium expects.
- An unknown caller or callee in a namespace that has policies here is an error: under that
  namespace's default deny such a workload can never make or accept the call. In a namespace
  without policies here it is a warning (it may exist; we cannot check).

Not handled here: Kubernetes ``NetworkPolicy``, clusterwide policies, deny rules, TLS
interception (``terminatingTLS``/``originatingTLS``), and Cilium's L7 for protocols other than
HTTP/gRPC, Kafka and DNS.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    model_validator,
)

from components.common import ConfigModel, field_error

try:  # the private parser is the only way to see which constructs a pattern uses
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11 is not supported by the project
    import sre_parse as _sre_parse  # type: ignore[no-redef]

__all__ = [
    "DEFAULT_DENY_NAME",
    "FLOWS_FILES",
    "OPEN_ENTITIES",
    "DnsRule",
    "EgressPeer",
    "EgressRule",
    "GrpcRule",
    "HeaderMatch",
    "HttpRule",
    "IngressPeer",
    "IngressRule",
    "KafkaRule",
    "PolicyFile",
    "PolicySet",
    "PortSpec",
    "ServiceKey",
    "ServicePolicy",
    "ServicePort",
    "TrafficPolicyError",
    "check_re2",
    "egress_ports",
    "grpc_path",
    "ingress_ports",
    "literal_regex",
    "load_policy_folder",
    "peer_kind",
]

# The name of the per-namespace default-deny policy; no service may take it.
DEFAULT_DENY_NAME = "meshless-default-deny"
# Expected flows beside the policies (components/flows/spec.py); not policy files.
FLOWS_FILES = ("flows.yaml", "flows.yml")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")
_HOSTNAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
)
# Cilium's own patterns for toFQDNs (matchName / matchPattern), see the CNP CRD schema.
_FQDN_NAME = re.compile(r"^([-a-zA-Z0-9_]+[.]?)+$")
_FQDN_PATTERN = re.compile(r"^([-a-zA-Z0-9_*]+[.]?)+$")
_HTTP_METHOD = re.compile(r"^[A-Z][A-Z_-]*$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_PROTO_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KAFKA_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_PORT_RANGE = re.compile(
    r"^(?P<port>[0-9]+)(?:-(?P<end>[0-9]+))?(?:/(?P<proto>tcp|udp|sctp))?$", re.I
)
# RE2 metacharacters; escaping only these keeps `/api/v1/order-items` readable.
_RE2_META = re.compile(r"([\\.+*?()|\[\]{}^$])")

Protocol = Literal["TCP", "UDP", "SCTP"]
Entity = Literal[
    "world", "cluster", "host", "remote-node", "kube-apiserver", "ingress", "health", "all"
]
# Entities that let any caller in (world, or everything in the cluster): "allows all callers".
OPEN_ENTITIES = frozenset({"all", "world", "cluster"})

# --------------------------------------------------------------------------------------------
# Field types with messages a user can act on (pydantic's pattern messages quote the regex).


def _check(pattern: re.Pattern[str], what: str, example: str) -> Any:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what}; write it like {example}")
        return value

    return AfterValidator(check)


def _label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if (prefix and not _HOSTNAME.fullmatch(prefix)) or not _LABEL_NAME.fullmatch(name):
        raise ValueError(
            f"{value!r} is not a valid label key; write it like app or team.example.com/tier"
        )
    return value


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a CIDR block ({exc}); write it like 203.0.113.0/24"
        ) from None


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _port_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _port_ref(value: str) -> str:
    match = _PORT_RANGE.fullmatch(value)
    if match:
        port, end = int(match["port"]), int(match["end"] or 0)
        if not 1 <= port <= 65535 or (match["end"] and not port < end <= 65535):
            raise ValueError(f"{value!r} is outside 1-65535 (a range is low-high with low < high)")
        return value.lower()
    if _PORT_NAME.fullmatch(value) and any(c.isalpha() for c in value):
        return value
    raise ValueError(
        f"{value!r} is not a port; write a number (8080), a range with protocol "
        "(53/udp, 30000-32767/tcp) or the name of one of the service's ports (http)"
    )


Name = Annotated[str, _check(_DNS_LABEL, "name (a DNS label)", "payments")]
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, _check(_LABEL_VALUE, "label value", "payments")]
Labels = dict[LabelKey, LabelValue]
Cidr = Annotated[str, AfterValidator(_cidr)]
PortRef = Annotated[str, BeforeValidator(_port_text), AfterValidator(_port_ref)]
HttpMethod = Annotated[str, _check(_HTTP_METHOD, "HTTP method (uppercase, case-sensitive)", "GET")]
Hostname = Annotated[str, _check(_HOSTNAME, "host name (lowercase)", "api.shop.example")]
FqdnName = Annotated[str, _check(_FQDN_NAME, "DNS name", "api.stripe.com")]
FqdnPattern = Annotated[str, _check(_FQDN_PATTERN, "DNS pattern", "*.stripe.com")]


def check_re2(pattern: str) -> str | None:
    """Why ``pattern`` is not a regex Cilium (Envoy, RE2) accepts, or None if it is.

    Python's parser does the syntax check; constructs Python has and RE2 lacks (lookaround,
    backreferences, atomic groups, possessive repeats, verbose mode, ``\\Z``, repeat counts
    over 1000) are refused by walking the parse tree, so an escaped ``\\(?=`` is not mistaken
    for a lookahead.
    """
    if pattern == "":
        return "empty regular expression matches only an empty value"
    try:
        parsed = _sre_parse.parse(pattern, 0)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    flags = getattr(parsed, "state", None)
    global_flags = getattr(flags, "flags", 0)
    if global_flags & (re.VERBOSE | re.ASCII | re.LOCALE):
        return "inline flags x, a and L are Python-only; RE2 supports i, m, s and U"
    return _re2_problem(parsed)


_NOT_RE2 = {
    "ASSERT": "lookahead/lookbehind (?=...) (?!...) (?<=...) is not supported by RE2",
    "ASSERT_NOT": "lookahead/lookbehind (?=...) (?!...) (?<=...) is not supported by RE2",
    "GROUPREF": "backreferences (\\1, (?P=name)) are not supported by RE2",
    "GROUPREF_EXISTS": "conditional groups (?(1)...) are not supported by RE2",
    "ATOMIC_GROUP": "atomic groups (?>...) are not supported by RE2",
    "POSSESSIVE_REPEAT": "possessive repeats (*+, ++, ?+) are not supported by RE2",
}


def _re2_problem(items: Iterable[Any]) -> str | None:
    for op, arg in items:
        name = str(op)
        if name in _NOT_RE2:
            return f"invalid regular expression: {_NOT_RE2[name]}"
        if name == "AT" and str(arg) == "AT_END_STRING":
            return "invalid regular expression: \\Z is not supported by RE2; use $ or \\z"
        problem = _re2_child_problem(name, arg)
        if problem:
            return problem
    return None


def _re2_child_problem(name: str, arg: Any) -> str | None:
    if name in ("MAX_REPEAT", "MIN_REPEAT"):
        low, high, sub = arg
        if low > 1000 or (high != _sre_parse.MAXREPEAT and high > 1000):
            return "invalid regular expression: RE2 allows repeat counts up to 1000"
        return _re2_problem(sub)
    if name == "SUBPATTERN":
        _group, add_flags, _del_flags, sub = arg
        if add_flags & (re.VERBOSE | re.ASCII | re.LOCALE):
            return "invalid regular expression: inline flags x, a and L are Python-only"
        return _re2_problem(sub)
    if name == "BRANCH":
        for branch in arg[1]:
            problem = _re2_problem(branch)
            if problem:
                return problem
    return None


def _regex(value: str) -> str:
    problem = check_re2(value)
    if problem:
        raise ValueError(
            f"{problem} (pattern {value!r}); Cilium matches this RE2 regex against the whole "
            "value. For a literal path use `path:` instead, which is escaped for you"
        )
    return value


def _literal_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a request path; write it like /api/v1/orders")
    if "*" in value:
        raise ValueError(
            f"{value!r} contains '*', which is literal here; use pathPrefix: "
            f"{value.split('*')[0]!r} or pathRegex for a pattern"
        )
    return value


RegexStr = Annotated[str, AfterValidator(_regex)]
LiteralPath = Annotated[str, AfterValidator(_literal_path)]


def literal_regex(text: str) -> str:
    """``text`` as an RE2 regex matching exactly it: only metacharacters are escaped, so
    ``/api/v1/order-items`` stays readable (``re.escape`` would also escape ``-``)."""
    return _RE2_META.sub(r"\\\1", text)


def grpc_path(service: str, method: str | None) -> str:
    """The HTTP/2 path of a gRPC call, ``/pkg.Service/Method``, as a regex (any method: None)."""
    return f"/{literal_regex(service)}/" + (literal_regex(method) if method else "[^/]+")


# --------------------------------------------------------------------------------------------
# The format.


class ServicePort(ConfigModel):
    """A port the service's pods listen on. Rules may refer to it by number or name."""

    port: Annotated[int, Field(ge=1, le=65535)]
    name: Annotated[str, _check(_PORT_NAME, "port name (up to 15 characters)", "http")] | None = (
        None
    )
    protocol: Protocol = "TCP"


class HeaderMatch(ConfigModel):
    """A request header that must be present, or must have exactly ``value``."""

    name: Annotated[str, _check(_HEADER_NAME, "HTTP header name", "X-Request-Id")]
    value: str | None = None


class HttpRule(ConfigModel):
    """Allowed HTTP requests; every field given must match (an empty rule allows any request,
    which still gives Hubble L7 visibility)."""

    method: Annotated[list[HttpMethod], BeforeValidator(_as_list)] = Field(default_factory=list)
    path: LiteralPath | None = None
    path_prefix: LiteralPath | None = None
    path_regex: RegexStr | None = None
    # Cilium matches host as given against the Host header (its dots match any character).
    host: Hostname | None = None
    headers: list[HeaderMatch] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_path(self) -> HttpRule:
        given = [
            a
            for a, v in (
                ("path", self.path),
                ("pathPrefix", self.path_prefix),
                ("pathRegex", self.path_regex),
            )
            if v is not None
        ]
        if len(given) > 1:
            raise field_error(
                given[1],
                f"give one of path, pathPrefix and pathRegex, not {' and '.join(given)}; "
                "write a second HTTP rule for a second path",
            )
        return self

    @property
    def path_regexes(self) -> list[str | None]:
        if self.path is not None:
            # The query string is part of what Cilium matches; a literal path allows any.
            return [literal_regex(self.path) + r"(\?.*)?"]
        if self.path_prefix is not None:
            return [literal_regex(self.path_prefix) + ".*"]
        return [self.path_regex]


class GrpcRule(ConfigModel):
    """Allowed gRPC calls: a fully qualified service and its methods (none listed: all)."""

    service: Annotated[
        str,
        _check(
            re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"),
            "gRPC service name",
            "shop.payments.v1.Payments",
        ),
    ]
    methods: list[Annotated[str, _check(_PROTO_IDENT, "gRPC method name", "Authorize")]] = Field(
        default_factory=list
    )


class KafkaRule(ConfigModel):
    """Allowed Kafka access (Cilium's Kafka policy is beta and is removed in Cilium 1.20)."""

    role: Literal["produce", "consume"]
    topic: Annotated[str, _check(_KAFKA_TOPIC, "Kafka topic", "orders")]
    client_id: str | None = Field(default=None, alias="clientID")


class DnsRule(ConfigModel):
    """A name (or pattern) the service may look up through the DNS server it sends to."""

    match_name: FqdnName | None = None
    match_pattern: FqdnPattern | None = None

    @model_validator(mode="after")
    def _one(self) -> DnsRule:
        if (self.match_name is None) == (self.match_pattern is None):
            raise field_error("matchName", "give exactly one of matchName and matchPattern")
        return self


PEER_KINDS = ("service", "namespace", "labels", "entity", "cidr", "fqdn", "fqdnPattern")


class IngressPeer(ConfigModel):
    """One allowed caller: a declared ``service``, a whole ``namespace``, pods by ``labels``
    (in ``namespace``, default the service's own), an ``entity`` or a ``cidr``."""

    service: Name | None = None
    namespace: Name | None = None
    labels: Labels | None = None
    entity: Entity | None = None
    cidr: Cidr | None = None
    except_: list[Cidr] = Field(default_factory=list, alias="except")

    @model_validator(mode="after")
    def _one_kind(self) -> IngressPeer:
        _check_peer(self)
        return self


class EgressPeer(IngressPeer):
    """One allowed destination: like a caller, or an external name (``fqdn``/``fqdnPattern``)."""

    fqdn: FqdnName | None = None
    fqdn_pattern: FqdnPattern | None = None


def peer_kind(peer: IngressPeer) -> str:
    """Which of PEER_KINDS a (valid) peer is."""
    for kind in ("service", "labels", "entity", "cidr", "fqdn", "fqdnPattern"):
        if getattr(peer, _attr(kind), None) is not None:
            return kind
    return "namespace"


def _attr(kind: str) -> str:
    return "fqdn_pattern" if kind == "fqdnPattern" else kind


def _check_peer(peer: IngressPeer) -> None:
    kinds = [k for k in ("service", *PEER_KINDS[2:]) if getattr(peer, _attr(k), None) is not None]
    if not kinds and peer.namespace is None:
        allowed = PEER_KINDS if isinstance(peer, EgressPeer) else PEER_KINDS[:5]
        raise field_error("service", f"say who: give one of {', '.join(allowed)}")
    if len(kinds) > 1:
        raise field_error(
            kinds[1], f"give one of {' and '.join(kinds)} per entry; list them as separate entries"
        )
    if peer.namespace is not None and kinds and kinds[0] not in ("service", "labels"):
        raise field_error("namespace", f"namespace goes with service or labels, not {kinds[0]}")
    if peer.except_ and peer.cidr is None:
        raise field_error("except", "except narrows a cidr; add cidr or remove except")
    for index, inner in enumerate(peer.except_):
        if peer.cidr and not ipaddress.ip_network(inner).subnet_of(ipaddress.ip_network(peer.cidr)):  # type: ignore[arg-type]
            raise field_error(f"except[{index}]", f"{inner} is not inside {peer.cidr}")


class _Rule(ConfigModel):
    ports: list[PortRef] = Field(default_factory=list)
    http: list[HttpRule] = Field(default_factory=list)
    grpc: list[GrpcRule] = Field(default_factory=list)
    kafka: list[KafkaRule] = Field(default_factory=list)
    # Cilium mutual authentication (SPIFFE); the cluster needs cilium.mutualAuth.
    authentication: Literal["required"] | None = None

    @property
    def has_l7(self) -> bool:
        return bool(self.http or self.grpc or self.kafka)

    def _check_l7(self, peers: Sequence[IngressPeer]) -> None:
        if self.kafka and (self.http or self.grpc):
            raise field_error(
                "kafka", "a rule has HTTP/gRPC or Kafka rules, not both; split it in two"
            )
        if self.authentication:
            wrong = [
                peer_kind(p)
                for p in peers
                if peer_kind(p) not in ("service", "namespace", "labels")
            ]
            if wrong:
                raise field_error(
                    "authentication",
                    f"mutual authentication needs workload peers (service, namespace, labels), "
                    f"not {wrong[0]}; move those peers to a rule without authentication",
                )


class IngressRule(_Rule):
    """Callers in ``from`` may reach ``ports`` (default: every port the service declares),
    limited to the L7 requests given (``http``/``grpc``/``kafka``), if any."""

    from_: Annotated[list[IngressPeer], Field(min_length=1, alias="from")]

    @model_validator(mode="after")
    def _consistent(self) -> IngressRule:
        self._check_l7(self.from_)
        return self


class EgressRule(_Rule):
    """The service may reach ``to`` on ``ports``; ``dns`` rules limit the names it may look up
    through a DNS server in ``to`` (port 53 by default)."""

    to: Annotated[list[EgressPeer], Field(min_length=1)]
    dns: list[DnsRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> EgressRule:
        self._check_l7(self.to)
        if self.dns and self.has_l7:
            raise field_error(
                "dns", "a rule has DNS or HTTP/gRPC/Kafka rules, not both; split it in two"
            )
        if self.dns and any(peer_kind(p) in ("fqdn", "fqdnPattern") for p in self.to):
            raise field_error(
                "dns",
                "dns rules restrict lookups at a DNS server; list the server in `to` (an fqdn peer gets its lookup rule automatically)",
            )
        return self


class ServicePolicy(ConfigModel):
    """One service's traffic policy: its pods, its ports, who may call it, what it may reach."""

    name: Name
    namespace: Name
    description: str | None = None
    selector: Labels = Field(default_factory=dict)
    ports: list[ServicePort] = Field(default_factory=list)
    ingress: list[IngressRule] = Field(default_factory=list)
    egress: list[EgressRule] = Field(default_factory=list)
    # Platform calls, rendered per cluster by components/platform.py: the workload-identity
    # endpoint of the cluster's cloud, and the Kubernetes API server (for controllers).
    cloud_identity: bool = False
    kube_apiserver: bool = False

    @property
    def key(self) -> ServiceKey:
        return (self.namespace, self.name)

    @property
    def pod_selector(self) -> dict[str, str]:
        return dict(self.selector) or {"app": self.name}

    @property
    def has_l7(self) -> bool:
        return any(rule.has_l7 for rule in (*self.ingress, *self.egress))

    @property
    def needs_mutual_auth(self) -> bool:
        return any(rule.authentication for rule in (*self.ingress, *self.egress))


class PolicyFile(ConfigModel):
    """A traffic-policy file: one or more services (one file per service or per team)."""

    services: Annotated[list[ServicePolicy], Field(min_length=1)]


ServiceKey = tuple[str, str]  # (namespace, name)


# --------------------------------------------------------------------------------------------
# Ports as rules resolve them.


@dataclass(frozen=True, order=True)
class PortSpec:
    port: int
    protocol: str = "TCP"
    end_port: int | None = None

    def __str__(self) -> str:
        span = f"{self.port}-{self.end_port}" if self.end_port else str(self.port)
        return f"{span}/{self.protocol}"


class _PortProblem(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


def _explicit_port(ref: str, protocol: str) -> PortSpec | None:
    match = _PORT_RANGE.fullmatch(ref)
    if not match:
        return None
    end = int(match["end"]) if match["end"] else None
    return PortSpec(int(match["port"]), (match["proto"] or protocol).upper(), end)


def ingress_ports(service: ServicePolicy, rule: IngressRule) -> tuple[PortSpec, ...]:
    """The ports an ingress rule opens; () means every port (an L3-only rule).

    Numbers take the protocol the service declares for them (TCP if undeclared); names must be
    declared. Without ``ports`` the rule covers every declared port (the TCP ones if it has L7
    rules). Raises _PortProblem for a name the service does not declare.
    """
    declared = {p.port: p.protocol for p in service.ports}
    by_name = {p.name: p for p in service.ports if p.name}
    if not rule.ports:
        ports = [p for p in service.ports if not rule.has_l7 or p.protocol == "TCP"]
        return tuple(PortSpec(p.port, p.protocol) for p in ports)
    specs = []
    for index, ref in enumerate(rule.ports):
        spec = _explicit_port(ref, "TCP")
        if spec is None:
            if ref not in by_name:
                known = ", ".join(sorted(by_name)) or "none"
                raise _PortProblem(
                    index,
                    f"{service.name} declares no port named {ref!r} (named ports: {known}); add it to ports or use the number",
                )
            spec = PortSpec(by_name[ref].port, by_name[ref].protocol)
        elif "/" not in ref and spec.end_port is None:
            spec = PortSpec(spec.port, declared.get(spec.port, "TCP"))
        specs.append(spec)
    return tuple(specs)


def egress_ports(rule: EgressRule, target: ServicePolicy | None) -> tuple[PortSpec, ...]:
    """The ports an egress rule opens towards ``target`` (a declared service, or None for any
    other peer); () means every port. Without ``ports``: the target's declared ports, or 53
    (UDP and TCP) for a rule with DNS rules."""
    if rule.ports:
        specs = []
        for index, ref in enumerate(rule.ports):
            spec = _explicit_port(ref, "TCP")
            if spec is None:
                raise _PortProblem(
                    index,
                    f"egress ports are numbers ({ref!r} is a name); write the port number, e.g. 8080 or 53/udp",
                )
            if target is not None and "/" not in ref and spec.end_port is None:
                spec = PortSpec(
                    spec.port, {p.port: p.protocol for p in target.ports}.get(spec.port, "TCP")
                )
            specs.append(spec)
        return tuple(specs)
    if rule.dns:
        return (PortSpec(53, "UDP"), PortSpec(53, "TCP"))
    if target is not None:
        return tuple(
            PortSpec(p.port, p.protocol)
            for p in target.ports
            if not rule.has_l7 or p.protocol == "TCP"
        )
    return ()


# --------------------------------------------------------------------------------------------
# YAML with line numbers.


class _Lines:
    """Where each mapping key and sequence item of one document starts (1-based lines), in a
    side table keyed by the id of the constructed dict/list (the document keeps them alive)."""

    def __init__(self) -> None:
        self.keys: dict[int, dict[Any, int]] = {}
        self.items: dict[int, list[int]] = {}
        self.duplicates: list[tuple[int, str, int]] = []

    def line(self, document: Any, loc: Sequence[Any]) -> int | None:
        node, line = document, 1
        for part in loc:
            if isinstance(node, dict) and part in node:
                line = self.keys.get(id(node), {}).get(part, line)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                line = self.items.get(id(node), [line] * len(node))[part]
                node = node[part]
            else:
                break
        return line


_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A safe loader that records lines in a ``_Lines`` table and reports duplicate keys
    (plain PyYAML silently keeps the last one)."""

    def __init__(self, stream: str, lines: _Lines) -> None:
        super().__init__(stream)
        self.table = lines


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
    data: dict[Any, Any] = {}
    yield data
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            loader.table.duplicates.append((line, key_node.value, seen[key_node.value]))
        seen[key_node.value] = line
    data.update(loader.construct_mapping(node))
    # Locations name keys as written; plain scalars are their own text.
    loader.table.keys[id(data)] = {
        k.value: k.start_mark.line + 1 for k, _v in node.value if isinstance(k, yaml.ScalarNode)
    }


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[list[Any]]:
    data: list[Any] = []
    yield data
    data.extend(loader.construct_sequence(node))
    loader.table.items[id(data)] = [item.start_mark.line + 1 for item in node.value]


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


# --------------------------------------------------------------------------------------------
# Problems: "file:line: path: message; fix".


class TrafficPolicyError(Exception):
    """Traffic-policy files that cannot become working policies; one message per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class _Source:
    """One file's document and line table, for messages that point into it."""

    label: str
    document: Any = None
    lines: _Lines = field(default_factory=_Lines)

    def place(self, loc: Sequence[Any]) -> str:
        """``file:line`` of a location (the nearest existing key or item)."""
        line = self.lines.line(self.document, loc) if self.document is not None else None
        return f"{self.label}:{line}" if line else self.label

    def at(self, loc: Sequence[Any], message: str) -> str:
        path = _loc_text(loc)
        return f"{self.place(loc)}: {path}: {message}" if path else f"{self.place(loc)}: {message}"


def _loc_text(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        text = (
            str(part) if len(str(part)) <= 60 else f"{str(part)[:45]}... ({len(str(part))} chars)"
        )
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + text)
    return out


def _split_field(text: str) -> list[Any]:
    parts: list[Any] = []
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", text):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    return parts


def _model_at(loc: Sequence[Any], root: type[BaseModel]) -> type[BaseModel] | None:
    """The model class whose field a location ends in (for "did you mean" on unknown keys)."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        found = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        model = next(_models(found.annotation), None) if found else None
    return model


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _models(arg)


def _aliases(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _message(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        model = _model_at(loc, root)
        allowed = _aliases(model) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown field; {hint}allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return "required but missing; add it"
    if kind == "too_short":
        return "must not be empty; add at least one entry"
    if kind in ("value_error", "meshless_field"):
        return str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, str | int | float | bool):
        shown = repr(value)
        shown = shown if len(shown) <= 80 else f"{shown[:60]}... ({len(shown)} chars)"
    else:
        shown = {dict: "a mapping", list: "a list"}.get(type(value), "a value of another type")
    # pydantic names the model class in some messages ("... or instance of HttpRule").
    message = re.sub(r" or instance of \w+", "", str(error["msg"]))
    return f"{message} (got {shown})"


def _as_written(document: Any, loc: Sequence[Any]) -> list[Any]:
    """``loc`` without list indices the user did not write (a single value where a list is
    accepted, e.g. ``method: GET``, is validated as item 0)."""
    out, node = [], document
    for part in loc:
        if isinstance(part, int) and not isinstance(node, list):
            continue
        out.append(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return out


def _validation_problems(
    source: _Source, exc: ValidationError, root: type[BaseModel] = PolicyFile
) -> list[str]:
    """One ``file:line: field: message`` per pydantic error; ``root`` is the file's model (the
    flows file reuses this with its own)."""
    problems = []
    for error in exc.errors():
        loc = _as_written(source.document, error["loc"])
        if error["type"] == "meshless_field":
            loc += _split_field((error.get("ctx") or {}).get("field", ""))
        problems.append(source.at(loc, _message(error, root)))
    return problems


def _repo_root(path: Path) -> Path | None:
    """The nearest folder above ``path`` with a Pulumi.yaml: the repository root."""
    return next((p for p in path.resolve().parents if (p / "Pulumi.yaml").is_file()), None)


def _display(path: Path, root: Path | None) -> str:
    """``path`` as users see it: relative to ``root`` (resolved) if inside it, else as is."""
    if root is not None:
        try:
            return path.resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def _read(path: Path, label: str) -> tuple[_Source, list[ServicePolicy], list[str]]:
    source = _Source(label)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return source, [], [f"{label}: cannot read: {exc}"]
    loader = _LineLoader(text, source.lines)
    try:
        source.document = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{label}:{mark.line + 1}" if mark else label
        reason = getattr(exc, "problem", None) or str(exc)
        return source, [], [f"{where}: not valid YAML: {reason}"]
    finally:
        loader.dispose()
    problems = [
        f"{label}:{line}: {key}: duplicate key (first at line {first}); merge the two"
        for line, key, first in source.lines.duplicates
    ]
    if source.document is None:
        return (
            source,
            [],
            [f"{label}: empty file; add `services:` with at least one service, or delete it"],
        )
    try:
        # Fields exactly as documented (camelCase): `path_prefix` is an unknown field.
        parsed = PolicyFile.model_validate(source.document, by_alias=True, by_name=False)
    except ValidationError as exc:
        return source, [], problems + _validation_problems(source, exc)
    return source, list(parsed.services), problems


# --------------------------------------------------------------------------------------------
# The checked set.


@dataclass(frozen=True)
class PolicySet:
    """Every service of one policy folder, checked as a whole.

    ``calls`` are the derived in-cluster calls, (caller, callee) -> ports (() = all ports): the
    egress half of each ingress rule whose callers are declared services.
    """

    folder: str
    services: tuple[ServicePolicy, ...]
    warnings: list[str]
    calls: Mapping[tuple[ServiceKey, ServiceKey], tuple[PortSpec, ...]]
    sources: Mapping[ServiceKey, str]

    @cached_property
    def by_key(self) -> dict[ServiceKey, ServicePolicy]:
        return {s.key: s for s in self.services}

    @property
    def namespaces(self) -> set[str]:
        """Namespaces with policies: each gets a default deny."""
        return {s.namespace for s in self.services}

    @property
    def has_l7(self) -> bool:
        """Whether any rule needs Envoy (HTTP, gRPC or Kafka). DNS rules, which every policy
        set has through the default deny, are enforced by the agent's DNS proxy instead."""
        return any(s.has_l7 for s in self.services)

    @property
    def needs_mutual_auth(self) -> bool:
        """Whether any rule has ``authentication: required`` (the cluster needs mutualAuth)."""
        return any(s.needs_mutual_auth for s in self.services)

    def service(self, namespace: str, name: str) -> ServicePolicy | None:
        return self.by_key.get((namespace, name))

    def selector_for(self, namespace: str, name: str) -> dict[str, str]:
        """The pod labels of a service: its declared selector, or ``app: <name>``."""
        known = self.service(namespace, name)
        return known.pod_selector if known else {"app": name}


def load_policy_folder(folder: Path, root: Path | None = None) -> PolicySet:
    """Parse, validate and cross-check every ``*.yaml``/``*.yml`` under ``folder``.

    Raises TrafficPolicyError with every problem (``file:line: field: message; fix``); file
    names are shown relative to ``root`` (default: the folder holding Pulumi.yaml).
    """
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix in (".yaml", ".yml")
        and p.is_file()
        # The expected-flows file sits beside the policies (components/flows/spec.py).
        and p.name not in FLOWS_FILES
        # Hidden files and folders (.git, editor backups) are not policies.
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    root = root.resolve() if root is not None else _repo_root(folder)
    label = _display(folder, root)
    if not files:
        raise TrafficPolicyError(
            [
                f"{label}: no *.yaml or *.yml policy files in this folder; add one or fix trafficPolicies"
            ]
        )
    problems: list[str] = []
    loaded: list[tuple[ServicePolicy, _Source, int]] = []
    for path in files:
        source, services, found = _read(path, _display(path, root))
        problems += found
        loaded += [(service, source, index) for index, service in enumerate(services)]
    if problems:
        raise TrafficPolicyError(problems)
    return _Checker(label, loaded).run()


class _Checker:
    """Cross-file checks: names, references, ports, conflicts; then the derived calls."""

    def __init__(self, folder: str, loaded: list[tuple[ServicePolicy, _Source, int]]) -> None:
        self.folder = folder
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.services: dict[ServiceKey, ServicePolicy] = {}
        self.where: dict[ServiceKey, tuple[_Source, int]] = {}
        self.calls: dict[tuple[ServiceKey, ServiceKey], set[PortSpec] | None] = {}
        for service, source, index in loaded:
            if service.key in self.services:
                first = self.where[service.key][0].label
                self.errors.append(
                    source.at(
                        ("services", index, "name"),
                        f"{service.namespace}/{service.name} is already declared in {first}; one policy per service (merge them)",
                    )
                )
                continue
            if service.name == DEFAULT_DENY_NAME:
                self.errors.append(
                    source.at(
                        ("services", index, "name"),
                        f"{DEFAULT_DENY_NAME} is reserved for the namespace's default deny; rename the service",
                    )
                )
                continue
            self.services[service.key] = service
            self.where[service.key] = (source, index)
        self.namespaces = {key[0] for key in self.services}
        self.label_index: dict[tuple[str, str, str], set[ServiceKey]] = defaultdict(set)
        for key, service in self.services.items():
            for label in service.pod_selector.items():
                self.label_index[(key[0], *label)].add(key)

    def at(self, key: ServiceKey, loc: Sequence[Any], message: str) -> str:
        source, index = self.where[key]
        return source.at(("services", index, *loc), message)

    def place(self, key: ServiceKey, loc: Sequence[Any]) -> str:
        source, index = self.where[key]
        return source.place(("services", index, *loc))

    def run(self) -> PolicySet:
        for key, service in self.services.items():
            self._check_ports(key, service)
            for j, rule in enumerate(service.ingress):
                self._check_ingress(key, service, j, rule)
        for key, service in self.services.items():
            for j, rule in enumerate(service.egress):
                self._check_egress(key, service, j, rule)
        for key in self.services:
            _Conflicts(self, key).check()
        if self.errors:
            raise TrafficPolicyError(list(dict.fromkeys(self.errors)))
        calls = {
            pair: tuple(sorted(ports)) if ports else ()
            for pair, ports in sorted(self.calls.items())
        }
        services = tuple(self.services[k] for k in sorted(self.services))
        sources = {k: self.where[k][0].label for k in self.services}
        return PolicySet(self.folder, services, list(dict.fromkeys(self.warnings)), calls, sources)

    # -- ports -----------------------------------------------------------------------------

    def _check_ports(self, key: ServiceKey, service: ServicePolicy) -> None:
        seen_ports: set[tuple[int, str]] = set()
        seen_names: set[str] = set()
        for i, port in enumerate(service.ports):
            if (port.port, port.protocol) in seen_ports:
                self.errors.append(
                    self.at(
                        key,
                        ("ports", i, "port"),
                        f"{port.port}/{port.protocol} is declared twice; remove one",
                    )
                )
            if port.name and port.name in seen_names:
                self.errors.append(
                    self.at(
                        key,
                        ("ports", i, "name"),
                        f"port name {port.name!r} is used twice; names must be unique",
                    )
                )
            seen_ports.add((port.port, port.protocol))
            seen_names.add(port.name or "")

    def _resolve(
        self, key: ServiceKey, loc: tuple[Any, ...], resolve: Any
    ) -> tuple[PortSpec, ...] | None:
        try:
            return resolve()
        except _PortProblem as problem:
            self.errors.append(self.at(key, (*loc, "ports", problem.index), problem.message))
            return None

    def _check_l7_ports(
        self, key: ServiceKey, loc: tuple[Any, ...], rule: _Rule, ports: tuple[PortSpec, ...]
    ) -> None:
        if not rule.has_l7:
            return
        kind = "Kafka" if rule.kafka else "HTTP/gRPC"
        if not ports:
            self.errors.append(
                self.at(
                    key,
                    (*loc, "ports"),
                    f"{kind} rules need a port; add `ports` to the rule (or declare the service's ports)",
                )
            )
        for spec in ports:
            if spec.protocol != "TCP":
                self.errors.append(
                    self.at(
                        key,
                        (*loc, "ports"),
                        f"{kind} rules only work on TCP ports, not {spec}; move the L7 rules to a TCP port",
                    )
                )
            elif spec.end_port:
                self.errors.append(
                    self.at(
                        key,
                        (*loc, "ports"),
                        f"{kind} rules need single ports, not the range {spec}",
                    )
                )

    def _check_undeclared(
        self,
        key: ServiceKey,
        loc: tuple[Any, ...],
        target: ServicePolicy,
        ports: Iterable[PortSpec],
    ) -> None:
        declared = {(p.port, p.protocol) for p in target.ports}
        for spec in ports:
            if spec.end_port is None and (spec.port, spec.protocol) not in declared:
                shown = ", ".join(str(PortSpec(p.port, p.protocol)) for p in target.ports) or "none"
                self.warnings.append(
                    self.at(
                        key,
                        (*loc, "ports"),
                        f"{target.namespace}/{target.name} does not expose {spec} (declared: {shown}); nothing listens there, or add the port to its `ports`",
                    )
                )

    # -- ingress ---------------------------------------------------------------------------

    def _check_ingress(
        self, key: ServiceKey, service: ServicePolicy, j: int, rule: IngressRule
    ) -> None:
        loc = ("ingress", j)
        ports = self._resolve(key, loc, lambda: ingress_ports(service, rule))
        if ports is None:
            return
        self._check_l7_ports(key, loc, rule, ports)
        if rule.ports:
            self._check_undeclared(key, loc, service, ports)
        if rule.kafka:
            self.warnings.append(
                self.at(
                    key,
                    (*loc, "kafka"),
                    "Kafka rules are beta in Cilium 1.16 and removed in Cilium 1.20; plan to replace them",
                )
            )
        for k, peer in enumerate(rule.from_):
            for caller in self._callers(key, (*loc, "from", k), peer):
                self._add_call(caller, key, ports)

    def _callers(
        self, key: ServiceKey, loc: tuple[Any, ...], peer: IngressPeer
    ) -> list[ServiceKey]:
        """The declared services a caller entry stands for (and its unknown-caller problems)."""
        kind = peer_kind(peer)
        namespace = peer.namespace or key[0]
        if kind == "service":
            assert peer.service is not None
            if (namespace, peer.service) in self.services:
                return [(namespace, peer.service)]
            self._unknown(key, (*loc, "service"), namespace, peer.service, "caller")
            return []
        if kind == "namespace":
            return sorted(k for k in self.services if k[0] == namespace)
        if kind == "labels" and namespace in self.namespaces:
            found = self._matching(namespace, peer.labels or {})
            if not found:
                self.warnings.append(
                    self.at(
                        key,
                        (*loc, "labels"),
                        f"no service declared in {namespace} has pods with these labels (by its selector), so no egress is derived for them; under {namespace}'s default deny such pods need their own egress rule",
                    )
                )
            return found
        return []

    def _matching(self, namespace: str, labels: Mapping[str, str]) -> list[ServiceKey]:
        sets = sorted(
            (self.label_index.get((namespace, k, v), set()) for k, v in labels.items()), key=len
        )
        if not sets:
            return sorted(k for k in self.services if k[0] == namespace)
        return sorted(set.intersection(*sets))

    def _unknown(
        self, key: ServiceKey, loc: tuple[Any, ...], namespace: str, name: str, role: str
    ) -> None:
        names = [k[1] for k in self.services if k[0] == namespace]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        if namespace in self.namespaces:
            self.errors.append(
                self.at(
                    key,
                    loc,
                    f"unknown {role} {namespace}/{name}{hint}: namespace {namespace} has policies here, so it is under default deny and an undeclared workload there can never make or take this call; fix the name or add its policy file",
                )
            )
        elif role == "caller":
            self.warnings.append(
                self.at(
                    key,
                    loc,
                    f"caller {namespace}/{name} is not declared in {self.folder}; the rule allows pods labelled app={name} in {namespace}. Check the name",
                )
            )

    def _add_call(
        self, caller: ServiceKey, callee: ServiceKey, ports: tuple[PortSpec, ...]
    ) -> None:
        pair = (caller, callee)
        if not ports or self.calls.get(pair, set()) is None:
            self.calls[pair] = None
        else:
            self.calls.setdefault(pair, set()).update(ports)  # type: ignore[union-attr]

    # -- egress ----------------------------------------------------------------------------

    def _check_egress(
        self, key: ServiceKey, service: ServicePolicy, j: int, rule: EgressRule
    ) -> None:
        loc = ("egress", j)
        if rule.kafka:
            self.warnings.append(
                self.at(
                    key,
                    (*loc, "kafka"),
                    "Kafka rules are beta in Cilium 1.16 and removed in Cilium 1.20; plan to replace them",
                )
            )
        if any(peer_kind(p) != "service" for p in rule.to):
            ports = self._resolve(key, loc, lambda: egress_ports(rule, None))
            if ports is None:
                return
            self._check_l7_ports(key, loc, rule, ports)
            self._check_external(key, loc, rule, ports)
        for k, peer in enumerate(rule.to):
            if peer_kind(peer) == "service":
                self._check_callee(key, (*loc, "to", k), rule, peer)

    def _check_callee(
        self, key: ServiceKey, loc: tuple[Any, ...], rule: EgressRule, peer: EgressPeer
    ) -> None:
        assert peer.service is not None
        namespace = peer.namespace or key[0]
        target = self.services.get((namespace, peer.service))
        if target is None:
            self._unknown(key, (*loc, "service"), namespace, peer.service, "callee")
            ports = self._resolve(key, loc[:2], lambda: egress_ports(rule, None))
            if ports is not None:
                self._check_l7_ports(key, loc[:2], rule, ports)
            return
        ports = self._resolve(key, loc[:2], lambda: egress_ports(rule, target))
        if ports is None:
            return
        self._check_l7_ports(key, loc[:2], rule, ports)
        self._check_undeclared(key, loc[:2], target, ports)
        if (key, target.key) not in self.calls:
            self.warnings.append(
                self.at(
                    key,
                    (*loc, "service"),
                    f"no ingress rule of {namespace}/{target.name} lets {key[0]}/{key[1]} in, so its default deny drops this traffic; add {key[1]} to {target.name}'s callers ({self.where[target.key][0].label})",
                )
            )

    def _check_external(
        self, key: ServiceKey, loc: tuple[Any, ...], rule: EgressRule, ports: tuple[PortSpec, ...]
    ) -> None:
        for k, peer in enumerate(rule.to):
            if peer.fqdn_pattern is not None and peer.fqdn_pattern.strip(".") == "*":
                self.warnings.append(
                    self.at(
                        key,
                        (*loc, "to", k, "fqdnPattern"),
                        "'*' allows every domain name; list the names this service needs",
                    )
                )
            if peer.entity in OPEN_ENTITIES and not ports:
                self.warnings.append(
                    self.at(
                        key,
                        (*loc, "to", k, "entity"),
                        f"allows all ports to {peer.entity}; add `ports`",
                    )
                )
        if (
            rule.http
            and any(p.port == 443 for p in ports)
            and any(peer_kind(p) in ("fqdn", "fqdnPattern", "cidr", "entity") for p in rule.to)
        ):
            self.warnings.append(
                self.at(
                    key,
                    (*loc, "http"),
                    "HTTP rules on port 443 see only TLS; Cilium cannot check paths of encrypted traffic without TLS interception, so these requests will be dropped. Remove the HTTP rules or use plain HTTP",
                )
            )


class _Conflicts:
    """Contradicting intent among the ingress rules that select the same pods: one rule opens
    a port to everybody (or without L7 rules) while another restricts it. Cilium unions all
    rules, so the restriction silently does nothing."""

    def __init__(self, checker: _Checker, key: ServiceKey) -> None:
        self.checker = checker
        self.key = key
        service = checker.services[key]
        # Services whose selectors contain all of ours select a subset of our pods: overlap.
        others = [k for k in checker._matching(key[0], service.pod_selector) if k != key]
        self.group = [key, *others]

    def check(self) -> None:
        rules = []
        for owner in self.group:
            service = self.checker.services[owner]
            for j, rule in enumerate(service.ingress):
                try:
                    ports = ingress_ports(service, rule)
                except _PortProblem:
                    continue
                rules.append((owner, j, rule, ports))
        for other in self.group[1:]:
            self._same_pods(other)
        for a in rules:
            for b in rules:
                if a is not b and (a[0] == self.key or b[0] == self.key):
                    self._pair(a, b)

    def _same_pods(self, other: ServiceKey) -> None:
        mine = self.checker.services[self.key].pod_selector
        theirs = self.checker.services[other].pod_selector
        if mine == theirs and other < self.key:
            return  # reported once, from the other side
        relation = "the same pods as" if mine == theirs else "a subset of the pods of"
        where = self.checker.place(self.key, ("name",))
        self.checker.warnings.append(
            self.checker.at(
                other,
                ("selector",),
                f"selects {relation} {self.key[0]}/{self.key[1]} ({where}); Cilium applies both policies' rules to them, so each may allow what the other meant to forbid",
            )
        )

    def _pair(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
        owner_a, j_a, rule_a, ports_a = a
        owner_b, j_b, rule_b, ports_b = b
        shared = _overlap(ports_a, ports_b)
        if shared is None:
            return
        open_a = any(p.entity in OPEN_ENTITIES for p in rule_a.from_)
        open_b = any(p.entity in OPEN_ENTITIES for p in rule_b.from_)
        where_a = self.checker.place(owner_a, ("ingress", j_a))
        if open_a and not open_b and owner_a != owner_b and not rule_a.has_l7:
            entity = next(p.entity for p in rule_a.from_ if p.entity in OPEN_ENTITIES)
            self.checker.warnings.append(
                self.checker.at(
                    owner_b,
                    ("ingress", j_b, "from"),
                    f"restricts callers on {shared}, but {where_a} lets {entity} in on the same port without L7 rules; Cilium unions rules, so the restriction has no effect",
                )
            )
            return
        if rule_b.has_l7 and not rule_a.has_l7 and (open_a or _same_peers(rule_a, rule_b)):
            self.checker.warnings.append(
                self.checker.at(
                    owner_b,
                    ("ingress", j_b),
                    f"its L7 rules do not restrict these callers on {shared}: {where_a} allows them on that port without L7 rules, and Cilium unions rules",
                )
            )


def _overlap(a: tuple[PortSpec, ...], b: tuple[PortSpec, ...]) -> str | None:
    """A description of the ports two rules share ("all ports" for L3-only), or None."""
    if not a or not b:
        return ", ".join(str(p) for p in (a or b)) or "all ports"
    shared = [
        p
        for p in a
        for q in b
        if p.protocol == q.protocol
        and p.port <= (q.end_port or q.port)
        and q.port <= (p.end_port or p.port)
    ]
    return ", ".join(sorted({str(p) for p in shared})) or None


def _same_peers(a: _Rule, b: IngressRule) -> bool:
    """Whether rule ``a`` lets in every caller ``b`` names (same entries, any order)."""
    assert isinstance(a, IngressRule)
    mine = {p.model_dump_json() for p in a.from_}
    return all(p.model_dump_json() in mine for p in b.from_)
