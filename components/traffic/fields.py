"""Field types of the traffic-policy format: names, labels, CIDRs, ports, hosts, HTTP
methods and regexes, each with the check and the message a user sees.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
)

from components.traffic.regex import check_re2, literal_regex

__all__ = [
    "DEFAULT_DENY_NAME",
    "DNS_LABEL",
    "FLOWS_FILES",
    "HEADER_NAME",
    "HTTP_METHOD",
    "OPEN_ENTITIES",
    "Cidr",
    "Entity",
    "FqdnName",
    "FqdnPattern",
    "Hostname",
    "HttpMethod",
    "LabelKey",
    "LabelValue",
    "Labels",
    "LiteralPath",
    "Name",
    "PortRef",
    "Protocol",
    "RegexStr",
    "grpc_path",
]


DEFAULT_DENY_NAME = "meshless-default-deny"
# Expected flows beside the policies (components/flows/spec.py); not policy files.
FLOWS_FILES = ("flows.yaml", "flows.yml")

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")
_HOSTNAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
)
# Cilium's own patterns for toFQDNs (matchName / matchPattern), see the CNP CRD schema.
_FQDN_NAME = re.compile(r"^([-a-zA-Z0-9_]+[.]?)+$")
_FQDN_PATTERN = re.compile(r"^([-a-zA-Z0-9_*]+[.]?)+$")
HTTP_METHOD = re.compile(r"^[A-Z][A-Z_-]*$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_PROTO_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KAFKA_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_PORT_RANGE = re.compile(
    r"^(?P<port>[0-9]+)(?:-(?P<end>[0-9]+))?(?:/(?P<proto>tcp|udp|sctp))?$", re.I
)

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


Name = Annotated[str, _check(DNS_LABEL, "name (a DNS label)", "payments")]
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, _check(_LABEL_VALUE, "label value", "payments")]
Labels = dict[LabelKey, LabelValue]
Cidr = Annotated[str, AfterValidator(_cidr)]
PortRef = Annotated[str, BeforeValidator(_port_text), AfterValidator(_port_ref)]
HttpMethod = Annotated[str, _check(HTTP_METHOD, "HTTP method (uppercase, case-sensitive)", "GET")]
Hostname = Annotated[str, _check(_HOSTNAME, "host name (lowercase)", "api.shop.example")]
FqdnName = Annotated[str, _check(_FQDN_NAME, "DNS name", "api.stripe.com")]
FqdnPattern = Annotated[str, _check(_FQDN_PATTERN, "DNS pattern", "*.stripe.com")]


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


def grpc_path(service: str, method: str | None) -> str:
    """The HTTP/2 path of a gRPC call, ``/pkg.Service/Method``, as a regex (any method: None)."""
    return f"/{literal_regex(service)}/" + (literal_regex(method) if method else "[^/]+")
