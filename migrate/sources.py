"""AuthorizationPolicy sources, operations and conditions as our traffic-model pieces.

Istio's semantics, from https://istio.io/latest/docs/reference/config/security/authorization-policy/:
a rule matches when its ``from``, ``to`` and ``when`` all match; each is a list whose entries
are ORed; inside one source or operation the fields are ANDed and each field's values ORed; a
``notX`` field matches when none of its values does. Anything we cannot express exactly is
left out *together with the whole source, operation or rule it narrows*, so what we emit is
never wider than what Istio allowed: dropping one ANDed condition would widen it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from components.traffic import check_re2, literal_regex
from components.traffic.fields import DNS_LABEL, HEADER_NAME, HTTP_METHOD

__all__ = [
    "ANY_CALLER",
    "SA_LABEL",
    "Operation",
    "Peer",
    "Problem",
    "When",
    "convert_operation",
    "convert_source",
    "convert_when",
]

# Cilium gives every endpoint the label io.cilium.k8s.policy.serviceaccount=<its service
# account> (pkg/k8s/apis/cilium.io/const.go, PolicyLabelServiceAccount), so an Istio principal
# cluster.local/ns/<ns>/sa/<sa> becomes pods with that label in <ns>.
SA_LABEL = "io.cilium.k8s.policy.serviceaccount"
_PRINCIPAL = re.compile(
    r"^[^/*]+/ns/(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)/sa/(?P<sa>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$"
)
# The traffic-policy format's own patterns: what is migrated must load as a traffic policy.
_NAME, _METHOD, _HEADER = DNS_LABEL, HTTP_METHOD, HEADER_NAME
_HEADER_KEY = re.compile(r"^request\.headers\[(?P<name>[^\]]+)\]$")
_PATH_CHARS = re.compile(r"^/[^\s*]*$")

Peer = tuple[tuple[str, Any], ...]  # a traffic-model caller entry as sorted items
ANY_CALLER: Peer = (("entity", "all"),)


@dataclass(frozen=True)
class Problem:
    field: str
    reason: str
    alternative: str


@dataclass(frozen=True)
class Operation:
    """What one Istio operation allows: ports (None = any) and HTTP rules (None = any request)."""

    ports: tuple[int, ...] | None
    http: tuple[tuple[tuple[str, Any], ...], ...] | None


_NOT = "Cilium rules only allow; 'not' matches have no allow-only equivalent"
_STRICTER = "left out together with what it narrows, so the result is stricter"


def _peer(**items: Any) -> Peer:
    return tuple(sorted((k, v) for k, v in items.items()))


def convert_source(src: dict[str, Any], at: str) -> tuple[list[Peer] | None, list[Problem]]:
    """The callers one ``from[].source`` stands for, or None (with problems) if it cannot be
    expressed without widening."""
    problems = []
    for key in sorted(src):
        if key.startswith("not") and src[key]:
            problems.append(
                Problem(
                    f"{at}.{key}",
                    f"{_NOT}; the source is {_STRICTER}",
                    "CiliumNetworkPolicy ingressDeny (L3/L4 only), written by hand",
                )
            )
        elif key in ("requestPrincipals", "remoteIpBlocks") and src[key]:
            problems.append(
                Problem(
                    f"{at}.{key}",
                    f"{'JWT identities' if key == 'requestPrincipals' else 'original client addresses (X-Forwarded-For)'} are not visible to Cilium policy; the source is {_STRICTER}",
                    "none in Cilium; check it in the application",
                )
            )
    if problems:
        return None, problems
    kinds = [k for k in ("principals", "serviceAccounts", "namespaces", "ipBlocks") if src.get(k)]
    if not kinds:
        return [ANY_CALLER], []
    identities, problems = _identities(src, at)
    if problems:
        return None, problems
    namespaces = src.get("namespaces") or []
    if "ipBlocks" in kinds:
        if len(kinds) > 1:
            return None, [
                Problem(
                    f"{at}.ipBlocks",
                    f"addresses combined with identities cannot be one Cilium peer; the source is {_STRICTER}",
                    "split the source in two in Istio, or write the rule by hand",
                )
            ]
        return _cidrs(src["ipBlocks"], at)
    bad = [n for n in namespaces if not _NAME.fullmatch(n)]
    if bad:
        return None, [
            Problem(
                f"{at}.namespaces",
                f"wildcard or invalid namespace {bad[0]!r}; the source is {_STRICTER}",
                "list the namespaces by name",
            )
        ]
    if identities is None:
        return [_peer(namespace=n) for n in sorted(set(namespaces))], []
    if namespaces:
        identities = [p for p in identities if dict(p)["namespace"] in namespaces]
    return sorted(set(identities)), []


def _identities(src: dict[str, Any], at: str) -> tuple[list[Peer] | None, list[Problem]]:
    sets = []
    for key in ("principals", "serviceAccounts"):
        values = src.get(key)
        if not values:
            continue
        peers = set()
        for value in values:
            ns_sa = _ns_sa(key, value)
            if ns_sa is None:
                return None, [
                    Problem(
                        f"{at}.{key}",
                        f"{value!r} is not one exact workload identity (wildcards and other trust formats cannot be a Cilium label); the source is {_STRICTER}",
                        "list each service account as <trust-domain>/ns/<ns>/sa/<sa>",
                    )
                ]
            peers.add(_peer(namespace=ns_sa[0], labels=((SA_LABEL, ns_sa[1]),)))
        sets.append(peers)
    if not sets:
        return None, []
    return sorted(set.intersection(*sets)), []


def _ns_sa(key: str, value: str) -> tuple[str, str] | None:
    if key == "principals":
        match = _PRINCIPAL.fullmatch(value)
        return (match["ns"], match["sa"]) if match else None
    ns, _, sa = value.partition("/")
    if _NAME.fullmatch(ns) and sa and _NAME.fullmatch(sa.replace(".", "-")):
        return ns, sa
    return None


def _cidrs(blocks: list[str], at: str) -> tuple[list[Peer] | None, list[Problem]]:
    peers = []
    for block in blocks:
        try:
            net = ipaddress.ip_network(block, strict=False)
        except ValueError:
            return None, [
                Problem(f"{at}.ipBlocks", f"{block!r} is not an address or CIDR", "fix the address")
            ]
        peers.append(_peer(cidr=str(net)))
    return sorted(set(peers)), []


def convert_operation(op: dict[str, Any], at: str) -> tuple[Operation | None, list[Problem]]:
    """One ``to[].operation`` as ports and HTTP rules, or None if it cannot be expressed."""
    for key in sorted(op):
        if key.startswith("not") and op[key]:
            return None, [
                Problem(
                    f"{at}.{key}",
                    f"{_NOT}; the operation is {_STRICTER}",
                    "list what is allowed instead (methods, paths, ports)",
                )
            ]
    if op.get("hosts"):
        return None, [
            Problem(
                f"{at}.hosts",
                f"Cilium matches the host as a regular expression in which '.' matches any character, and our format cannot escape it; the operation is {_STRICTER}",
                "Gateway API hostnames on the route that reaches the workload",
            )
        ]
    try:
        ports = _ports(op.get("ports") or [])
        methods = _methods(op.get("methods") or [])
        paths = _paths(op.get("paths") or [])
    except _Refused as refused:
        return None, [Problem(f"{at}.{refused.field}", refused.reason, refused.alternative)]
    if not methods and not paths:
        return Operation(ports, None), []
    http = []
    path_rules: list[dict[str, str] | None] = [*paths] if paths else [None]
    for path_rule in path_rules:
        entry: dict[str, Any] = {}
        if methods:
            entry["method"] = tuple(methods)
        if path_rule:
            entry.update(path_rule)
        if entry:
            http.append(tuple(entry.items()))
    return Operation(ports, tuple(http) or None), []  # path '*' alone: any request


class _Refused(Exception):
    def __init__(self, field: str, reason: str, alternative: str) -> None:
        super().__init__(reason)
        self.field, self.reason, self.alternative = field, reason, alternative


def _ports(given: list[str]) -> tuple[int, ...] | None:
    if not given:
        return None
    try:
        ports = tuple(sorted({int(p) for p in given}))
    except ValueError:
        raise _Refused("ports", "ports must be numbers", "write port numbers") from None
    if any(not 1 <= p <= 65535 for p in ports):
        raise _Refused("ports", "port outside 1-65535", "fix the port")
    return ports


def _methods(given: list[str]) -> list[str]:
    methods = sorted(set(given))
    bad = [m for m in methods if not _METHOD.fullmatch(m)]
    if bad:
        raise _Refused(
            "methods",
            f"{bad[0]!r} is not an uppercase HTTP method (matching is case-sensitive); the operation is {_STRICTER}",
            "write methods in upper case",
        )
    return methods


def _paths(given: list[str]) -> list[dict[str, str]]:
    paths = []
    for path in sorted(set(given)):
        rule = _path(path)
        if rule is None:
            raise _Refused(
                "paths",
                f"{path!r} cannot be matched exactly; the operation is {_STRICTER}",
                "an exact path, a prefix /a/* or a suffix *.js",
            )
        paths.append(rule)
    return paths


def _path(path: str) -> dict[str, str] | None:
    """Istio's exact, prefix (``/a/*``), suffix (``*.js``) and presence (``*``) forms. Istio
    matches the path without its query string; our ``path`` and ``pathPrefix`` allow any
    query string, and the suffix regex does too."""
    if path == "*":
        return {}
    if path.endswith("*") and _PATH_CHARS.fullmatch(path[:-1]):
        return {"pathPrefix": path[:-1]}
    if path.startswith("*") and "*" not in path[1:] and not any(c.isspace() for c in path):
        regex = ".*" + literal_regex(path[1:]) + r"(\?.*)?"
        return {"pathRegex": regex} if check_re2(regex) is None else None
    if _PATH_CHARS.fullmatch(path):
        return {"path": path}
    return None


@dataclass(frozen=True)
class When:
    """Conditions we can express: exact header values, source namespaces, destination ports."""

    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    namespaces: tuple[str, ...] | None = None
    ports: tuple[int, ...] | None = None


def convert_when(conditions: list[dict[str, Any]], at: str) -> tuple[When | None, list[Problem]]:
    headers: list[tuple[str, tuple[str, ...]]] = []
    namespaces: set[str] | None = None
    ports: set[int] | None = None
    for i, cond in enumerate(conditions):
        key, values = cond.get("key", ""), cond.get("values") or []
        where = f"{at}[{i}]"
        header = _HEADER_KEY.fullmatch(key)
        unsupported = Problem(
            f"{where}.key",
            f"condition {key!r} has no Cilium equivalent we can write; the rule is {_STRICTER}",
            "Cilium HTTP header matches, namespaces and ports are supported; others: none",
        )
        if cond.get("notValues") or not values:
            return None, [
                Problem(
                    f"{where}.notValues",
                    f"{_NOT}; the rule is {_STRICTER}",
                    "list the allowed values",
                )
            ]
        if any("*" in v for v in values):
            return None, [
                Problem(
                    f"{where}.values",
                    f"wildcard values cannot be matched exactly; the rule is {_STRICTER}",
                    "list exact values",
                )
            ]
        if header and _HEADER.fullmatch(header["name"]):
            headers.append((header["name"], tuple(sorted(set(values)))))
        elif key == "source.namespace" and all(_NAME.fullmatch(v) for v in values):
            namespaces = set(values) if namespaces is None else namespaces & set(values)
        elif key == "destination.port" and all(v.isdigit() for v in values):
            found = {int(v) for v in values}
            ports = found if ports is None else ports & found
        else:
            return None, [unsupported]
    return (
        When(
            tuple(sorted(headers)),
            tuple(sorted(namespaces)) if namespaces is not None else None,
            tuple(sorted(ports)) if ports is not None else None,
        ),
        [],
    )
