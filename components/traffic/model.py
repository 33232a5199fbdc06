"""The traffic-policy file format as pydantic models: a file holds services; a service its
ports, ingress and egress rules; a rule its peers, ports and L7 (HTTP, gRPC, Kafka, DNS) rules.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    model_validator,
)

from components.common import ConfigModel, field_error
from components.traffic.fields import (
    _KAFKA_TOPIC,
    _PORT_NAME,
    _PROTO_IDENT,
    HEADER_NAME,
    Cidr,
    Entity,
    FqdnName,
    FqdnPattern,
    Hostname,
    HttpMethod,
    Labels,
    LiteralPath,
    Name,
    PortRef,
    Protocol,
    RegexStr,
    _as_list,
    _check,
)
from components.traffic.regex import literal_regex

__all__ = [
    "PEER_KINDS",
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
    "ServiceKey",
    "ServicePolicy",
    "ServicePort",
    "peer_kind",
]


class ServicePort(ConfigModel):
    """A port the service's pods listen on. Rules may refer to it by number or name."""

    port: Annotated[int, Field(ge=1, le=65535)]
    name: Annotated[str, _check(_PORT_NAME, "port name (up to 15 characters)", "http")] | None = (
        None
    )
    protocol: Protocol = "TCP"


class HeaderMatch(ConfigModel):
    """A request header that must be present, or must have exactly ``value``."""

    name: Annotated[str, _check(HEADER_NAME, "HTTP header name", "X-Request-Id")]
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
