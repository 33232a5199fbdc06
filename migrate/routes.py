"""VirtualServices bound to Gateways to HTTPRoutes / GRPCRoutes (Gateway API v1.1 standard).

Carried: host, path, header, query and method matches; weighted destinations; redirects;
rewrites; request and response header changes; mirrors. Not in v1.1 standard, so reported:
timeouts and retries (HTTPRoute ``timeouts`` is not in the v1.1 standard schema; retries are
in no v1.1 channel), fault injection, CORS, mirror percentages, delegation, direct responses.
Mesh-internal routing (``gateways`` empty or ``mesh``) needs GAMMA, which Cilium 1.16 lacks.
"""

from __future__ import annotations

from typing import Any

from components.traffic import literal_regex
from migrate.backends import RouteContext, backends, mirrors
from migrate.gateway_api import GW_API, HOSTNAME
from migrate.reader import IstioObject
from migrate.report import ObjectReport

__all__ = ["convert_virtual_service"]

_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
_CE = "CiliumEnvoyConfig with an Envoy route setting, not generated"
_DROPPED = {
    "timeout": (
        "HTTPRoute timeouts are not in Gateway API v1.1 standard (the vendored schema has no rules[].timeouts)",
        _CE,
    ),
    "retries": ("retries are not in Gateway API v1.1", _CE),
    "fault": ("fault injection has no Gateway API or Cilium equivalent", "none"),
    "corsPolicy": ("CORS is not in Gateway API v1.1", "handle CORS in the application, or " + _CE),
    "delegate": (
        "delegated VirtualServices are not followed",
        "write the delegate's routes into this route",
    ),
    "directResponse": ("direct responses are not in Gateway API v1.1", "none"),
    "mirrorPercentage": (
        "Gateway API v1.1 mirrors every request (no percentage)",
        "none; every request is mirrored",
    ),
    "mirrorPercent": (
        "Gateway API v1.1 mirrors every request (no percentage)",
        "none; every request is mirrored",
    ),
}
_MATCH_GAPS = {
    "authority": "a per-rule host match is not in HTTPRoute; put the host in a separate route's hostnames",
    "scheme": "no scheme match in Gateway API",
    "port": "no port match in HTTPRoute; attach the route to that listener (sectionName)",
    "sourceLabels": "source-workload matches are mesh routing",
    "sourceNamespace": "source-namespace matches are mesh routing",
    "withoutHeaders": "negative header matches are not in Gateway API",
    "ignoreUriCase": "case-insensitive path matches are not in Gateway API",
    "gateways": "per-match gateways are not in Gateway API; split the VirtualService",
}


def convert_virtual_service(
    obj: IstioObject, rep: ObjectReport, ctx: RouteContext
) -> list[dict[str, Any]]:
    spec = obj.spec
    parents, mesh = _parents(obj, rep, ctx)
    _whole_object_gaps(spec, rep, mesh)
    if not parents:
        for i, route in enumerate(spec.get("http") or []):
            _common(rep, route, f"http[{i}]")
        return []
    known = [ctx.gateways[k] for k in _parent_keys(obj, parents) if k in ctx.gateways]
    grpc = bool(known) and all(gw.grpc_only for gw in known)
    ctx.kind = "GRPCRoute" if grpc else "HTTPRoute"
    rules = []
    routes = spec.get("http") or []
    if len(routes) > 1:
        rep.note(
            "Gateway API picks the most specific match (exact path, longest prefix, method, header and query counts), not the first listed as Istio does; check routes that overlap"
        )
    for i, route in enumerate(routes):
        rules += (_grpc_rule if grpc else _http_rule)(obj, rep, ctx, route, f"http[{i}]")
    if not rules:
        return []
    rep.carried = True
    hostnames = _hostnames(spec, rep)
    kind = "GRPCRoute" if grpc else "HTTPRoute"
    out = []
    for n, start in enumerate(range(0, len(rules), 16)):  # at most 16 rules per route
        name = obj.name if n == 0 else f"{obj.name}-{n + 1}"
        route_spec: dict[str, Any] = {"parentRefs": parents}
        if hostnames:
            route_spec["hostnames"] = hostnames
        route_spec["rules"] = rules[start : start + 16]
        out.append(
            {
                "apiVersion": GW_API,
                "kind": kind,
                "metadata": {"name": name, "namespace": obj.namespace},
                "spec": route_spec,
            }
        )
    return out


def _hostnames(spec: dict[str, Any], rep: ObjectReport) -> list[str]:
    hostnames = []
    for host in sorted({h.lower() for h in spec.get("hosts") or [] if h != "*"}):
        if HOSTNAME.fullmatch(host):
            hostnames.append(host)
        else:
            rep.gap(
                "hosts",
                f"{host!r} is not a Gateway API hostname; left out",
                "an exact or *.domain hostname",
            )
    return hostnames


def _whole_object_gaps(spec: dict[str, Any], rep: ObjectReport, mesh: bool) -> None:
    if mesh:
        rep.gap(
            "gateways" if spec.get("gateways") else "gateways (none: mesh)",
            "mesh-internal routing between workloads needs Gateway API GAMMA, which Cilium 1.16 does not implement; Kubernetes Services balance without these rules",
            "Kubernetes Service routing; GAMMA in a later Cilium",
        )
    for key in ("tcp", "tls"):
        if spec.get(key):
            rep.gap(
                key,
                f"{key.upper()} routes need TCPRoute/TLSRoute, experimental in Gateway API v1.1",
                "Cilium's experimental TLSRoute/TCPRoute (not generated)",
            )
    if spec.get("exportTo"):
        rep.gap("exportTo", "visibility scoping is Istio's", "listener allowedRoutes")


def _parent_keys(obj: IstioObject, parents: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted({(p.get("namespace", obj.namespace), p["name"]) for p in parents})


def _parents(
    obj: IstioObject, rep: ObjectReport, ctx: RouteContext
) -> tuple[list[dict[str, Any]], bool]:
    names = obj.spec.get("gateways") or ["mesh"]
    parents, mesh = [], False
    for ref in sorted(set(names)):
        if ref == "mesh":
            mesh = True
            continue
        namespace, _, name = ref.rpartition("/")
        namespace = namespace or obj.namespace
        gw = ctx.gateways.get((namespace, name))
        if gw is None:
            rep.note(
                f"gateway {namespace}/{name} is not in the input; the route still names it as parent"
            )
        else:
            gw.route_namespaces.add(obj.namespace)
        parent: dict[str, Any] = {"name": name}
        if namespace != obj.namespace:
            parent["namespace"] = namespace
        if gw is not None and gw.redirect_listeners:
            # Listeners that redirect to HTTPS must not also serve the routes in plaintext.
            parents += [
                {**parent, "sectionName": listener["name"]}
                for listener in gw.listeners
                if listener["name"] not in gw.redirect_listeners
            ]
        else:
            parents.append(parent)
    return parents, mesh


def _common(rep: ObjectReport, route: dict[str, Any], at: str) -> None:
    for key, (why, alt) in _DROPPED.items():
        if route.get(key) not in (None, {}, []):
            rep.gap(f"{at}.{key}", why, alt)


def _http_rule(
    obj: IstioObject, rep: ObjectReport, ctx: RouteContext, route: dict[str, Any], at: str
) -> list[dict[str, Any]]:
    _common(rep, route, at)
    if route.get("delegate") or route.get("directResponse"):
        return []
    matches, ok = _matches(rep, route, at, _http_match)
    if not ok:
        return []
    rule: dict[str, Any] = {}
    filters = _header_filters(route.get("headers") or {})
    if route.get("redirect"):
        redirect = _redirect(rep, route["redirect"], f"{at}.redirect")
        if redirect is None:
            return []
        filters.append({"type": "RequestRedirect", "requestRedirect": redirect})
    else:
        if route.get("rewrite"):
            rewrite = _rewrite(rep, route["rewrite"], matches, f"{at}.rewrite")
            if rewrite:
                filters.append({"type": "URLRewrite", "urlRewrite": rewrite})
        filters += mirrors(obj, rep, ctx, route, at)
        refs = _backend_refs(obj, rep, ctx, route, at)
        if not refs:
            return []
        rule["backendRefs"] = refs
    return _chunked(rule, matches, filters)


def _backend_refs(
    obj: IstioObject, rep: ObjectReport, ctx: RouteContext, route: dict[str, Any], at: str
) -> list[dict[str, Any]]:
    """The route's destinations as backendRefs; none when no destination can become one, and
    then a gap saying the rule is left out (the caller drops it)."""
    refs = backends(obj, rep, ctx, route.get("route") or [], f"{at}.route")
    if not refs:
        rep.gap(
            f"{at}.route",
            "no destination could become a backend; the rule is left out",
            "a Kubernetes Service with a port",
        )
    return refs


def _chunked(
    rule: dict[str, Any], matches: list[dict[str, Any]], filters: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    if filters:
        rule["filters"] = filters
    if not matches:
        return [rule]
    out = []
    for start in range(0, len(matches), 8):  # at most 8 matches per rule
        out.append({"matches": matches[start : start + 8], **rule})
    return out


def _matches(
    rep: ObjectReport, route: dict[str, Any], at: str, convert: Any
) -> tuple[list[dict[str, Any]], bool]:
    given = route.get("match") or []
    out = []
    for j, match in enumerate(given):
        converted = convert(rep, match, f"{at}.match[{j}]")
        if converted is not None:
            out.append(converted)
    if given and not out:
        rep.gap(
            f"{at}.match",
            "no match could be expressed; the rule is left out rather than matching everything",
            "split the route per supported match",
        )
        return [], False
    return out, True


def _string_match(value: dict[str, Any]) -> tuple[str, str] | None:
    if "exact" in value:
        return "Exact", str(value["exact"])
    if "regex" in value:
        return "RegularExpression", str(value["regex"])
    if "prefix" in value:
        return "RegularExpression", literal_regex(str(value["prefix"])) + ".*"
    return None


def _http_match(rep: ObjectReport, match: dict[str, Any], at: str) -> dict[str, Any] | None:
    for key, why in _MATCH_GAPS.items():
        if match.get(key) not in (None, {}, [], False):
            rep.gap(f"{at}.{key}", f"{why}; the match is left out (narrower routing)", "see reason")
            return None
    out: dict[str, Any] = {}
    uri = match.get("uri") or {}
    if "exact" in uri:
        out["path"] = {"type": "Exact", "value": uri["exact"]}
    elif "prefix" in uri:
        out["path"] = {"type": "PathPrefix", "value": uri["prefix"]}
        if uri["prefix"] != "/":
            rep.note(
                f"{at}.uri.prefix {uri['prefix']!r}: Gateway API PathPrefix matches whole path segments ({uri['prefix'].rstrip('/')} and {uri['prefix'].rstrip('/')}/..., not {uri['prefix'].rstrip('/')}x)"
            )
    elif "regex" in uri:
        out["path"] = {"type": "RegularExpression", "value": uri["regex"]}
    method = _string_match(match.get("method") or {})
    if method:
        if method[0] != "Exact" or method[1] not in _METHODS:
            rep.gap(
                f"{at}.method",
                "Gateway API matches one exact standard method; the match is left out",
                "one match per method",
            )
            return None
        out["method"] = method[1]
    for key in ("headers", "queryParams"):
        items = _value_matches(rep, match.get(key) or {}, f"{at}.{key}")
        if items is None:
            return None
        if items:
            out[key] = items
    return out


def _value_matches(
    rep: ObjectReport, given: dict[str, Any], at: str
) -> list[dict[str, str]] | None:
    """Header or query-parameter matches; None (reported) if one is presence-only."""
    items = []
    for name in sorted(given):
        found = _string_match(given[name] or {})
        if found is None:
            rep.gap(
                f"{at}.{name}",
                "presence-only matches are not in Gateway API; the match is left out",
                "an exact or regex value",
            )
            return None
        items.append({"type": found[0], "name": name, "value": found[1]})
    return items


def _header_filters(headers: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for side, kind in (
        ("request", "RequestHeaderModifier"),
        ("response", "ResponseHeaderModifier"),
    ):
        ops = headers.get(side) or {}
        modifier: dict[str, Any] = {}
        for op in ("set", "add"):
            if ops.get(op):
                modifier[op] = [{"name": k, "value": str(v)} for k, v in sorted(ops[op].items())]
        if ops.get("remove"):
            modifier["remove"] = sorted(ops["remove"])
        if modifier:
            key = kind[0].lower() + kind[1:]
            out.append({"type": kind, key: modifier})
    return out


def _redirect(rep: ObjectReport, redirect: dict[str, Any], at: str) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if redirect.get("uri"):
        out["path"] = {"type": "ReplaceFullPath", "replaceFullPath": redirect["uri"]}
    if redirect.get("authority"):
        out["hostname"] = redirect["authority"]
    if redirect.get("port"):
        out["port"] = int(redirect["port"])
    if redirect.get("scheme"):
        out["scheme"] = redirect["scheme"]
    code = int(redirect.get("redirectCode") or 301)
    if code not in (301, 302):
        rep.gap(
            f"{at}.redirectCode",
            f"{code}: Gateway API v1.1 redirects with 301 or 302 only; the rule is left out",
            "301 or 302",
        )
        return None
    out["statusCode"] = code
    if redirect.get("derivePort"):
        rep.gap(
            f"{at}.derivePort",
            "Gateway API keeps the listener's port unless port is given",
            "set port",
        )
    return out


def _rewrite(
    rep: ObjectReport, rewrite: dict[str, Any], matches: list[dict[str, Any]], at: str
) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if rewrite.get("authority"):
        out["hostname"] = rewrite["authority"]
    if rewrite.get("uriRegexRewrite"):
        rep.gap(
            f"{at}.uriRegexRewrite",
            "regex rewrites are not in Gateway API v1.1",
            "a prefix or full-path rewrite",
        )
    if rewrite.get("uri"):
        kinds = [m.get("path", {}).get("type") for m in matches]
        if kinds == ["PathPrefix"]:
            out["path"] = {"type": "ReplacePrefixMatch", "replacePrefixMatch": rewrite["uri"]}
        elif kinds and all(k == "Exact" for k in kinds):
            out["path"] = {"type": "ReplaceFullPath", "replaceFullPath": rewrite["uri"]}
        else:
            rep.gap(
                f"{at}.uri",
                "Gateway API rewrites the prefix of exactly one prefix match, or the full path of exact matches; this rule has neither",
                "split the route so each rule has one prefix match",
            )
    return out or None


def _grpc_rule(
    obj: IstioObject, rep: ObjectReport, ctx: RouteContext, route: dict[str, Any], at: str
) -> list[dict[str, Any]]:
    _common(rep, route, at)
    for key in ("redirect", "rewrite"):
        if route.get(key):
            rep.gap(
                f"{at}.{key}",
                f"GRPCRoute has no {key} in Gateway API v1.1; the rule is left out",
                "none",
            )
            return []
    matches, ok = _matches(rep, route, at, _grpc_match)
    if not ok:
        return []
    filters = _header_filters(route.get("headers") or {}) + mirrors(obj, rep, ctx, route, at)
    refs = _backend_refs(obj, rep, ctx, route, at)
    if not refs:
        return []
    return _chunked({"backendRefs": refs}, matches, filters)


def _grpc_match(rep: ObjectReport, match: dict[str, Any], at: str) -> dict[str, Any] | None:
    for key in sorted(set(match) - {"uri", "headers", "name"}):
        rep.gap(
            f"{at}.{key}",
            "GRPCRoute matches gRPC service/method and headers only; the match is left out",
            "none",
        )
        return None
    out: dict[str, Any] = {}
    uri = match.get("uri") or {}
    path = uri.get("exact") or uri.get("prefix")
    if uri:
        parts = str(path or "").strip("/").split("/")
        if (
            not path
            or len(parts) > 2
            or ("prefix" in uri and len(parts) != 1)
            or ("exact" in uri and len(parts) != 2)
        ):
            rep.gap(
                f"{at}.uri",
                "only /package.Service/ prefixes and /package.Service/Method paths map to gRPC matches",
                "match on service and method",
            )
            return None
        out["method"] = {
            "type": "Exact",
            "service": parts[0],
            **({"method": parts[1]} if len(parts) == 2 else {}),
        }
    headers = _value_matches(rep, match.get("headers") or {}, f"{at}.headers")
    if headers is None:
        return None
    if headers:
        out["headers"] = headers
    return out
