"""Never widen access: whatever the migrated traffic policy allows, Istio allowed too.

Hypothesis generates AuthorizationPolicies (ALLOW, DENY, CUSTOM, AUDIT; sources, operations,
conditions, their `not` forms and wildcards) for one workload, migrates them, and checks a
sample of requests (source, method, path, port, header) against two evaluators:

- Istio's decision, written from the AuthorizationPolicy reference
  (https://istio.io/latest/docs/reference/config/security/authorization-policy/): CUSTOM,
  then DENY, then ALLOW; no ALLOW policy = allow; a rule matches when from, to and when all
  match; lists are ORed, fields ANDed, `notX` = none of X; `*` alone, `prefix*` and `*suffix`
  for strings; a policy without rules matches nothing. A CUSTOM match is treated as "may be
  denied" (the external authorizer decides).
- Ours: a minimal evaluator of the generated traffic-policy files (our model, not the
  rendered CNPs; the CNP flow evaluator is another piece of work): under the namespace's
  default deny, a request is allowed when an ingress rule of a service selecting the pod
  matches its caller, port and HTTP rule (Cilium's path regex, full match).
Requests carry no query string and no JWT.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from components.traffic import PolicyFile, ServicePolicy, ingress_ports
from migrate.run import migrate
from migrate.sources import SA_LABEL

NS = "prod"
POD = {"app": "api"}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "api", "namespace": NS},
    "spec": {"selector": POD, "ports": [{"port": 8080}, {"port": 9090}]},
}
# (namespace, service account, ip); None namespace = outside the cluster
SOURCES = [
    (NS, "web", "10.1.2.3"),
    ("dev", "web", "10.2.0.5"),
    (NS, "db", "10.1.9.9"),
    (None, None, "203.0.113.7"),
]
REQUESTS = [
    (src, method, path, port, header)
    for src in SOURCES
    for method in ("GET", "POST")
    for path in ("/a", "/a/x", "/x.json", "/b")
    for port in (8080, 9090, 7000)
    for header in (None, "1")
]


# -- generated policies ------------------------------------------------------------------


def _some(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True)


PRINCIPALS = [
    "cluster.local/ns/prod/sa/web",
    "cluster.local/ns/dev/sa/web",
    "cluster.local/ns/prod/sa/*",
    "*",
]
NAMESPACES = ["prod", "dev", "*", "pr*"]
IPS = ["10.0.0.0/8", "203.0.113.0/24", "10.1.2.3"]
# Exact sources (which carry over) as often as arbitrary ones (which mostly do not).
exact_source = st.fixed_dictionaries(
    {}, optional={"principals": _some(PRINCIPALS[:2]), "namespaces": _some(NAMESPACES[:2])}
)
any_source = st.fixed_dictionaries(
    {},
    optional={
        "principals": _some(PRINCIPALS),
        "notPrincipals": _some(PRINCIPALS),
        "namespaces": _some(NAMESPACES),
        "notNamespaces": _some(NAMESPACES),
        "ipBlocks": _some(IPS),
        "notIpBlocks": _some(IPS),
        "requestPrincipals": _some(["*", "iss/sub"]),
    },
)
source = st.one_of(exact_source, any_source)
PATHS = ["/a", "/a/*", "*.json", "*", "/b"]
operation = st.fixed_dictionaries(
    {},
    optional={
        "methods": _some(["GET", "POST", "get"]),
        "notMethods": _some(["GET"]),
        "paths": _some(PATHS),
        "notPaths": _some(PATHS),
        "ports": _some(["8080", "9090", "7000"]),
        "notPorts": _some(["8080"]),
        "hosts": _some(["api.example.com"]),
    },
)
condition = st.one_of(
    st.fixed_dictionaries(
        {"key": st.just("request.headers[x-k]"), "values": _some(["1", "2", "*"])}
    ),
    st.fixed_dictionaries({"key": st.just("request.headers[x-k]"), "notValues": _some(["1"])}),
    st.fixed_dictionaries({"key": st.just("source.namespace"), "values": _some(["prod", "dev"])}),
    st.fixed_dictionaries({"key": st.just("destination.port"), "values": _some(["8080", "9090"])}),
    st.fixed_dictionaries({"key": st.just("source.ip"), "values": _some(["10.1.2.3"])}),
)
rule = st.fixed_dictionaries(
    {},
    optional={
        "from": st.lists(st.fixed_dictionaries({"source": source}), min_size=1, max_size=2),
        "to": st.lists(st.fixed_dictionaries({"operation": operation}), min_size=1, max_size=2),
        "when": st.lists(condition, min_size=1, max_size=2),
    },
)
policy_spec = st.fixed_dictionaries(
    {"action": st.sampled_from(["ALLOW", "ALLOW", "DENY", "DENY", "CUSTOM", "AUDIT"])},
    optional={
        "rules": st.lists(rule, min_size=0, max_size=2),
        "selector": st.just({"matchLabels": POD}),
    },
)


# -- Istio ---------------------------------------------------------------------------------


def _str_match(pattern: str, value: str | None) -> bool:
    if value is None:
        return False
    if pattern == "*":
        return value != ""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _any(patterns: list[str], value: str | None) -> bool:
    return any(_str_match(p, value) for p in patterns)


def _in_blocks(blocks: list[str], ip: str) -> bool:
    return any(ipaddress.ip_address(ip) in ipaddress.ip_network(b, strict=False) for b in blocks)


def _source_matches(src: dict[str, Any], req: tuple[Any, ...]) -> bool:
    (ns, sa, ip), *_ = req
    principal = f"cluster.local/ns/{ns}/sa/{sa}" if ns else None
    checks = {
        "principals": lambda v: _any(v, principal),
        "notPrincipals": lambda v: not _any(v, principal),
        "namespaces": lambda v: _any(v, ns),
        "notNamespaces": lambda v: not _any(v, ns),
        "ipBlocks": lambda v: _in_blocks(v, ip),
        "notIpBlocks": lambda v: not _in_blocks(v, ip),
        "requestPrincipals": lambda v: _any(v, None),  # no JWT on these requests
    }
    return all(checks[k](v) for k, v in src.items())


def _operation_matches(op: dict[str, Any], req: tuple[Any, ...]) -> bool:
    _src, method, path, port, _header = req
    checks = {
        "methods": lambda v: method in v,
        "notMethods": lambda v: method not in v,
        "paths": lambda v: _any(v, path),
        "notPaths": lambda v: not _any(v, path),
        "ports": lambda v: str(port) in v,
        "notPorts": lambda v: str(port) not in v,
        "hosts": lambda v: False,  # requests reach the pod by its Service name, not this host
    }
    return all(checks[k](v) for k, v in op.items())


def _condition_matches(cond: dict[str, Any], req: tuple[Any, ...]) -> bool:
    (ns, _sa, ip), _m, _p, port, header = req
    value = {
        "request.headers[x-k]": header,
        "source.namespace": ns,
        "destination.port": str(port),
        "source.ip": ip,
    }[cond["key"]]
    if "values" in cond:
        return _any(cond["values"], value)
    return not _any(cond["notValues"], value)


def _rule_matches(r: dict[str, Any], req: tuple[Any, ...]) -> bool:
    return (
        ("from" not in r or any(_source_matches(f["source"], req) for f in r["from"]))
        and ("to" not in r or any(_operation_matches(t["operation"], req) for t in r["to"]))
        and all(_condition_matches(c, req) for c in r.get("when", []))
    )


def istio_allows(policies: list[dict[str, Any]], req: tuple[Any, ...]) -> bool:
    def matching(action: str) -> list[dict[str, Any]]:
        return [p for p in policies if p["action"] == action]

    def hit(p: dict[str, Any]) -> bool:
        return any(_rule_matches(r, req) for r in p.get("rules") or [])

    if any(hit(p) for p in matching("CUSTOM") + matching("DENY")):
        return False
    allow = matching("ALLOW")
    return not allow or any(hit(p) for p in allow)


# -- ours ----------------------------------------------------------------------------------


def _peer_matches(peer: Any, service: ServicePolicy, req: tuple[Any, ...]) -> bool:
    (ns, sa, ip), *_ = req
    if peer.entity is not None:
        return peer.entity == "all"
    if peer.cidr is not None:  # Cilium's CIDR peers never select pods in the cluster
        return ns is None and _in_blocks([peer.cidr], ip)
    if ns is None:
        return False
    if ns != (peer.namespace or service.namespace):
        return False
    labels = {SA_LABEL: sa, "app": sa}
    return all(labels.get(k) == v for k, v in (peer.labels or {}).items()) and peer.service is None


def _http_matches(rule: Any, req: tuple[Any, ...]) -> bool:
    _src, method, path, _port, header = req
    if rule.method and method not in rule.method:
        return False
    if rule.host is not None:
        return False
    for regex in rule.path_regexes:
        if regex is not None and not re.fullmatch(regex, path):
            return False
    headers = {"x-k": header} if header else {}
    return all(
        headers.get(h.name.lower()) == h.value if h.value else h.name.lower() in headers
        for h in rule.headers
    )


def ours_allows(services: list[ServicePolicy], req: tuple[Any, ...]) -> bool:
    port = req[3]
    for service in services:
        if not all(POD.get(k) == v for k, v in service.pod_selector.items()):
            continue
        for rule in service.ingress:
            ports = ingress_ports(service, rule)
            if ports and not any(p.port == port for p in ports):
                continue
            if not any(_peer_matches(p, service, req) for p in rule.from_):
                continue
            if not rule.http or any(_http_matches(h, req) for h in rule.http):
                return True
    return False


def _migrated_services(tmp: Path, specs: list[dict[str, Any]]) -> tuple[list[ServicePolicy], bool]:
    docs = [SERVICE] + [
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": f"p{i}", "namespace": NS},
            "spec": spec,
        }
        for i, spec in enumerate(specs)
    ]
    path = tmp / "in.yaml"
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    result = migrate([path])
    assert not result.report.unreadable, [u.message for u in result.report.unreadable]
    services = []
    for name, text in result.files.items():
        if name.startswith("traffic/"):
            services += PolicyFile.model_validate(yaml.safe_load(text)).services
    return services, any(n.startswith("traffic/") for n in result.files)


class TestNeverWiden:
    """A migrated AuthorizationPolicy never lets in a request Istio would have refused."""

    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(specs=st.lists(policy_spec, min_size=1, max_size=3))
    # A DENY on a path next to an ALLOW from anyone; a namespace-wide DENY alone; CUSTOM.
    @example(
        [
            {"action": "ALLOW", "rules": [{}]},
            {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/a"]}}]}]},
        ]
    )
    @example([{"action": "DENY", "rules": [{"from": [{"source": {"namespaces": ["dev"]}}]}]}])
    @example(
        [
            {"action": "ALLOW", "selector": {"matchLabels": POD}, "rules": [{}]},
            {"action": "CUSTOM", "rules": [{}]},
        ]
    )
    def test_allowed_by_us_means_allowed_by_istio(
        self, tmp_path: Path, specs: list[dict[str, Any]]
    ) -> None:
        services, written = _migrated_services(tmp_path, specs)
        # A namespace with no traffic-policy file keeps Cilium's default allow: only fine if
        # Istio allowed everything too (no policy that can deny applies).
        for req in REQUESTS:
            ours = ours_allows(services, req) if written else True
            if ours:
                assert istio_allows(specs, req), (
                    req,
                    specs,
                    [s.model_dump(by_alias=True, exclude_defaults=True) for s in services],
                )

    def test_the_oracle_is_not_trivial(self, tmp_path: Path) -> None:
        """Exact sources and operations carry over: what Istio allows, we allow too here."""
        spec = {
            "selector": {"matchLabels": POD},
            "rules": [
                {
                    "from": [{"source": {"principals": ["cluster.local/ns/prod/sa/web"]}}],
                    "to": [
                        {"operation": {"methods": ["GET"], "paths": ["/a/*"], "ports": ["8080"]}}
                    ],
                }
            ],
            "action": "ALLOW",
        }
        services, _ = _migrated_services(tmp_path, [spec])
        allowed = [r for r in REQUESTS if istio_allows([spec], r)]
        assert allowed and all(ours_allows(services, r) for r in allowed)
        assert not ours_allows(services, ((NS, "web", "10.1.2.3"), "POST", "/a/x", 8080, None))
