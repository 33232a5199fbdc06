"""The expected-flows file: which calls the traffic policies must allow, and which they must
block, written beside them (``<trafficPolicies>/flows.yaml``).

```yaml
namespace: shop                 # default namespace of `service` and `labels` ends
flows:
  - name: checkout charges a card            # optional; shown in every message
    from: {service: checkout}                # or {labels, namespace}, {entity}, {ip}
    to: {service: payments}                  # or {labels, namespace}, {entity}, {ip}, {fqdn},
                                             #    {platform: cloud-identity}
    port: grpc                               # a number, or a port name of the `to` service
    grpc: {service: shop.payments.v1.Payments, method: Authorize}
    # http: {method: GET, path: /api/v1/cart/42, host: ..., headers: {X-Request-Id: abc}}
    expect: allow                            # or deny
    clouds: [gke]                            # optional: only on clusters of these clouds
```

``load_flows`` validates the file (``file:line: field: message``, like the policy files),
resolves every end against the cluster (a service's pods carry its selector's labels; an
address the cloud gives the host identity becomes ``host``, any other ``world``; the
``cloud-identity`` platform end expands to the calls of components/platform.py) and returns
flows for the evaluator (components/flows/evaluate.py).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, model_validator

from components.common import ConfigModel, field_error
from components.flows.model import Endpoint, Flow, Request
from components.platform import Platform, cloud_identity_calls
from components.traffic import (
    FLOWS_FILES,
    Entity,
    FqdnName,
    Hostname,
    HttpMethod,
    Labels,
    Name,
    PolicySet,
    TrafficPolicyError,
)
from components.traffic.source import (
    _display,
    _read_source,
    _repo_root,
    _Source,
    _validation_problems,
)

__all__ = [
    "ExpectedFlow",
    "FlowsDocument",
    "FlowsFile",
    "find_flows_file",
    "load_flows",
    "read_flows",
    "resolve_flows",
    "resolve_one",
]

_KINDS = ("service", "labels", "entity", "ip", "fqdn", "platform")


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address; write it like 169.254.169.254") from None


def _path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a request path; write it like /api/v1/orders?id=1")
    return value


class FlowEnd(ConfigModel):
    """One end of a flow: a declared ``service``, pods by ``labels``, a reserved ``entity``,
    an ``ip`` or ``fqdn`` outside the cluster, or a ``platform`` call."""

    service: Name | None = None
    namespace: Name | None = None
    labels: Labels | None = None
    entity: Entity | None = None
    ip: Annotated[str, AfterValidator(_ip)] | None = None
    fqdn: FqdnName | None = None
    platform: Literal["cloud-identity"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> FlowEnd:
        given = [k for k in _KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            shown = " and ".join(given) if given else "none"
            raise field_error(
                given[1] if len(given) > 1 else "service",
                f"give exactly one of {', '.join(_KINDS)} (got {shown})",
            )
        if self.namespace is not None and given[0] not in ("service", "labels"):
            raise field_error("namespace", f"namespace goes with service or labels, not {given[0]}")
        if self.entity in ("cluster", "all"):
            raise field_error(
                "entity",
                f"{self.entity!r} is a set of identities, not one end of a flow; name one "
                "(host, world, ingress, kube-apiserver, remote-node, health) or a service",
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in _KINDS if getattr(self, k) is not None)


class HttpCall(ConfigModel):
    """One HTTP request: method and path (query string included) as the client sends them."""

    method: HttpMethod
    path: Annotated[str, AfterValidator(_path)]
    host: Hostname | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class GrpcCall(ConfigModel):
    """One gRPC call (an HTTP/2 POST to /<service>/<method>)."""

    service: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]
    method: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class FlowSpec(ConfigModel):
    """One expected flow and whether the policies must ``allow`` or ``deny`` it."""

    name: str | None = None
    from_: FlowEnd = Field(alias="from")
    to: FlowEnd
    port: Annotated[int, Field(ge=1, le=65535)] | Name | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    http: HttpCall | None = None
    grpc: GrpcCall | None = None
    expect: Literal["allow", "deny"]
    clouds: list[Literal["gke", "eks"]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> FlowSpec:
        if self.http and self.grpc:
            raise field_error("grpc", "give http or grpc, not both; write two flows")
        if self.from_.kind in ("fqdn", "platform"):
            raise field_error(f"from.{self.from_.kind}", "a flow starts at a pod or an entity/ip")
        if self.to.kind == "platform" and self.port is not None:
            raise field_error("port", "the platform end brings its own ports; remove port")
        if self.to.kind != "platform" and self.port is None:
            raise field_error("port", "required; give the port number or the service's port name")
        return self


class FlowsFile(ConfigModel):
    """A flows file: a default namespace and the flows."""

    namespace: Name | None = None
    flows: Annotated[list[FlowSpec], Field(min_length=1)]


@dataclass(frozen=True)
class ExpectedFlow:
    """A resolved flow with where it was written and what it must do."""

    where: str
    name: str
    flow: Flow
    allow: bool


def find_flows_file(folder: Path) -> Path | None:
    """The flows file of a policy folder, if it has one."""
    return next((folder / n for n in FLOWS_FILES if (folder / n).is_file()), None)


def _parse(path: Path, label: str) -> tuple[_Source, FlowsFile | None, list[str]]:
    source, problems, parsed_yaml = _read_source(path, label)
    if not parsed_yaml:
        return source, None, problems
    if source.document is None:
        return source, None, [f"{label}: empty file; add `flows:` with at least one flow"]
    try:
        parsed = FlowsFile.model_validate(source.document)
    except ValidationError as exc:
        return source, None, problems + _validation_problems(source, exc, FlowsFile)
    return source, parsed, problems


@dataclass(frozen=True)
class FlowsDocument:
    """A validated flows file and its line table (for messages while resolving it)."""

    source: _Source
    parsed: FlowsFile


def read_flows(path: Path, root: Path | None = None) -> FlowsDocument:
    """Read and validate a flows file once (clusters sharing a folder share it); raise
    TrafficPolicyError with every problem (``file:line: field: message``)."""
    root = root.resolve() if root is not None else _repo_root(path)
    source, parsed, problems = _parse(path, _display(path, root))
    if parsed is None or problems:
        raise TrafficPolicyError(problems)
    return FlowsDocument(source, parsed)


def resolve_flows(
    document: FlowsDocument, policies: PolicySet, platform: Platform
) -> list[ExpectedFlow]:
    """The flows of a validated file as one cluster's identities see them."""
    resolver = _Resolver(document.source, document.parsed, policies, platform)
    flows = [f for i, spec in enumerate(document.parsed.flows) for f in resolver.flows(i, spec)]
    if resolver.problems:
        raise TrafficPolicyError(resolver.problems)
    return flows


_ONE = re.compile(r"^one flow(:\d+)?: flows\[0\]\.")


def resolve_one(
    raw: dict[str, Any], namespace: str | None, policies: PolicySet, platform: Platform
) -> list[ExpectedFlow]:
    """One flow written elsewhere (the command line), validated and resolved like a file's;
    problems read ``field: message`` (e.g. ``from.service: ...``)."""
    document = {"flows": [raw], **({"namespace": namespace} if namespace else {})}
    source = _Source("one flow", document=document)
    try:
        flows = resolve_flows(
            FlowsDocument(source, FlowsFile.model_validate(document)), policies, platform
        )
    except ValidationError as exc:
        problems = _validation_problems(source, exc, FlowsFile)
        raise TrafficPolicyError([_ONE.sub("", p) for p in problems]) from None
    except TrafficPolicyError as exc:
        raise TrafficPolicyError([_ONE.sub("", p) for p in exc.problems]) from None
    return flows


def load_flows(
    path: Path, policies: PolicySet, platform: Platform, root: Path | None = None
) -> list[ExpectedFlow]:
    """``read_flows`` then ``resolve_flows`` for one cluster."""
    return resolve_flows(read_flows(path, root), policies, platform)


class _Resolver:
    """Turns written ends into the identities Cilium would see on this cluster."""

    def __init__(
        self, source: _Source, parsed: FlowsFile, policies: PolicySet, platform: Platform
    ) -> None:
        self.source = source
        self.namespace = parsed.namespace
        self.policies = policies
        self.platform = platform
        self.problems: list[str] = []
        self._endpoints: dict[tuple[Any, ...], Endpoint] = {}

    def _endpoint(self, name: str, **fields: Any) -> Endpoint:
        """One Endpoint per identity this resolver meets: flows repeat their ends (a cluster
        of 1270 services: 26,790 ends, ~2,550 identities), and the evaluator caches what it
        works out about an endpoint on the endpoint itself."""
        key = (
            name,
            *((k, tuple(v.items()) if isinstance(v, dict) else v) for k, v in fields.items()),
        )
        found = self._endpoints.get(key)
        if found is None:
            found = self._endpoints[key] = Endpoint(name, **fields)
        return found

    def flows(self, index: int, spec: FlowSpec) -> list[ExpectedFlow]:
        if spec.clouds and self.platform.cloud not in spec.clouds:
            return []
        loc = ("flows", index)
        source = self._end(spec.from_, (*loc, "from"))
        where = self.source.place(loc)
        request = _request(spec)
        if spec.to.kind == "platform":
            calls = cloud_identity_calls(self.platform)
            targets: list[tuple[Endpoint | None, int | None]] = [
                (_platform_end(call, self.platform), call.port) for call in calls
            ]
        else:
            port = self._port(spec, (*loc, "port"))
            targets = [(self._end(spec.to, (*loc, "to")), port)]
        out = []
        for destination, port in targets:
            if source is None or destination is None or port is None:
                continue
            flow = Flow(source, destination, port, spec.protocol, request)
            out.append(ExpectedFlow(where, spec.name or str(flow), flow, spec.expect == "allow"))
        return out

    def _end(self, end: FlowEnd, loc: tuple[Any, ...]) -> Endpoint | None:
        kind = end.kind
        if kind in ("service", "labels"):
            namespace = end.namespace or self.namespace
            if namespace is None:
                self.problems.append(
                    self.source.at(
                        (*loc, kind),
                        "which namespace? add namespace here or at the top of the file",
                    )
                )
                return None
            if kind == "labels":
                labels = dict(end.labels or {})
                shown = ",".join(f"{k}={v}" for k, v in labels.items())
                return self._endpoint(
                    f"{namespace}/{{{shown}}}", namespace=namespace, labels=labels
                )
            return self._service(namespace, str(end.service), (*loc, "service"))
        if kind == "entity":
            return self._endpoint(str(end.entity), entity=str(end.entity))
        if kind == "ip":
            entity = "host" if end.ip in self.platform.host_ips else "world"
            return self._endpoint(str(end.ip), entity=entity, ip=end.ip)
        return self._endpoint(str(end.fqdn), entity="world", fqdn=end.fqdn)

    def _service(self, namespace: str, name: str, loc: tuple[Any, ...]) -> Endpoint | None:
        service = self.policies.service(namespace, name)
        if service is None:
            known = [s.name for s in self.policies.services if s.namespace == namespace]
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problems.append(
                self.source.at(
                    loc,
                    f"{namespace}/{name} is not a service in {self.policies.folder}{hint}; use "
                    "labels + namespace for workloads without a policy file",
                )
            )
            return None
        return self._endpoint(
            f"{namespace}/{name}", namespace=namespace, labels=service.pod_selector
        )

    def _port(self, spec: FlowSpec, loc: tuple[Any, ...]) -> int | None:
        if isinstance(spec.port, int):
            return spec.port
        target = None
        if spec.to.kind == "service":
            namespace = spec.to.namespace or self.namespace or ""
            target = self.policies.service(namespace, str(spec.to.service))
        named = {p.name: p.port for p in target.ports if p.name} if target else {}
        if spec.port in named:
            return named[str(spec.port)]
        shown = ", ".join(sorted(named)) or "none (the destination is not a declared service)"
        self.problems.append(
            self.source.at(loc, f"no port named {spec.port!r} (named ports: {shown}); use a number")
        )
        return None


def _platform_end(call: Any, platform: Platform) -> Endpoint:
    if call.fqdn:
        return Endpoint(f"{call.what} {call.fqdn}", entity="world", fqdn=call.fqdn)
    entity = "host" if call.ip in platform.host_ips else "world"
    return Endpoint(f"{call.what} {call.ip}", entity=entity, ip=call.ip)


def _request(spec: FlowSpec) -> Request | None:
    if spec.http:
        return Request(spec.http.method, spec.http.path, spec.http.host, dict(spec.http.headers))
    if spec.grpc:
        # gRPC is an HTTP/2 POST to /<package.Service>/<Method>.
        path = f"/{spec.grpc.service}/{spec.grpc.method}"
        return Request("POST", path, None, {"content-type": "application/grpc"})
    return None
