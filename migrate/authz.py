"""AuthorizationPolicy and PeerAuthentication to traffic-policy services (ingress rules).

Istio evaluates CUSTOM, then DENY, then ALLOW policies; a workload with no ALLOW policy
accepts everything not denied, one with ALLOW policies only what one of them matches
(https://istio.io/latest/docs/concepts/security/#authorization-policy). Our format has
allow rules under a per-namespace default deny, so:
- ALLOW rules become ingress rules of the workload the policy selects (namespace-wide
  policies: of every workload we know in the namespace);
- a DENY rule cannot be written; every allow rule of a workload it may apply to is dropped
  unless both name ports and those ports differ (so nothing Istio denied is allowed);
- a CUSTOM policy (external authorizer) drops every allow rule of its workloads;
- workloads without ALLOW policies fall under the default deny: stricter than Istio.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from migrate.reader import IstioObject
from migrate.report import ObjectReport
from migrate.sources import (
    ANY_CALLER,
    Operation,
    Peer,
    Problem,
    When,
    convert_operation,
    convert_source,
    convert_when,
)

__all__ = ["Workload", "WorkloadSet", "build_workloads"]

Selector = tuple[tuple[str, str], ...]
_LABEL_OK = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass
class Rule:
    peers: tuple[Peer, ...]
    ports: tuple[int, ...] | None
    http: tuple[tuple[tuple[str, Any], ...], ...] | None
    origin: ObjectReport
    at: str
    authentication: bool = False

    def as_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"from": [_peer_yaml(p) for p in self.peers]}
        if self.ports is not None:
            out["ports"] = list(self.ports)
        if self.authentication:
            out["authentication"] = "required"
        if self.http is not None:
            out["http"] = [_http_yaml(h) for h in self.http]
        return out


def _peer_yaml(peer: Peer) -> dict[str, Any]:
    return {k: (dict(v) if k == "labels" else v) for k, v in peer}


def _http_yaml(items: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in items:
        if key == "headers":
            out[key] = [{"name": n, "value": v} for n, v in value]
        else:
            out[key] = list(value) if isinstance(value, (list, tuple)) else value
    return out


@dataclass
class Workload:
    namespace: str
    selector: Selector
    name: str = ""
    ports: set[int] = field(default_factory=set)
    rules: list[Rule] = field(default_factory=list)
    egress: list[dict[str, Any]] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)  # report refs of contributing objects

    def compatible(self, labels: Selector | None) -> bool:
        """Whether pods of this workload may also carry ``labels`` (None: every pod)."""
        if labels is None:
            return True
        mine = dict(self.selector)
        return all(mine.get(k, v) == v for k, v in labels)


@dataclass
class WorkloadSet:
    workloads: dict[tuple[str, Selector], Workload] = field(default_factory=dict)

    def get(self, namespace: str, selector: Selector) -> Workload:
        key = (namespace, selector)
        if key not in self.workloads:
            self.workloads[key] = Workload(namespace, selector)
        return self.workloads[key]

    def in_namespace(self, namespace: str) -> list[Workload]:
        return [w for k, w in sorted(self.workloads.items()) if k[0] == namespace]

    def named(self) -> list[Workload]:
        """Every workload with a unique DNS-label name (from its labels, stable)."""
        used: set[tuple[str, str]] = set()
        for (_ns, _sel), w in sorted(self.workloads.items()):
            base = _name_for(w.selector)
            name, n = base, 2
            while (w.namespace, name) in used:
                name, n = f"{base[:58]}-{n}", n + 1
            used.add((w.namespace, name))
            w.name = name
        return [w for _k, w in sorted(self.workloads.items())]


def _name_for(selector: Selector) -> str:
    if selector == GUARD:
        return "istio-deny-guard"
    labels = dict(selector)
    parts = [labels.pop("app")] if "app" in labels else []
    parts += [v for _k, v in sorted(labels.items())]
    text = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:63].strip("-")
    return text if text and _LABEL_OK.fullmatch(text) else "workload"


def selector_of(obj: IstioObject) -> Selector | None:
    """The workload labels a policy selects; None for a namespace-wide policy."""
    labels = (obj.spec.get("selector") or {}).get("matchLabels") or {}
    return tuple(sorted((str(k), str(v)) for k, v in labels.items())) or None


def build_workloads(
    policies: list[tuple[IstioObject, ObjectReport]],
    ports: dict[tuple[str, Selector], set[int]],
    root_namespace: str,
) -> WorkloadSet:
    """Workloads and their allow rules from every AuthorizationPolicy (DENY/CUSTOM applied)."""
    workloads = _collect(policies, ports, root_namespace)
    for obj, rep in policies:
        _convert_policy(obj, rep, workloads, root_namespace)
    for obj, rep in policies:
        if _action(obj) in ("DENY", "CUSTOM"):
            _restrict(obj, rep, workloads, root_namespace)
    return workloads


def _collect(
    policies: list[tuple[IstioObject, ObjectReport]],
    ports: dict[tuple[str, Selector], set[int]],
    root_namespace: str,
) -> WorkloadSet:
    """The workloads policies apply to (by selector, or the namespace's Services), with ports."""
    workloads = WorkloadSet()
    for obj, _rep in policies:
        selector = selector_of(obj)
        if selector is not None and obj.namespace != root_namespace and _action(obj) == "ALLOW":
            workloads.get(obj.namespace, selector)
    wide = {
        obj.namespace
        for obj, _rep in policies
        if selector_of(obj) is None and obj.namespace != root_namespace and _action(obj) == "ALLOW"
    }
    # A namespace-wide policy applies to every workload there; the Services in the input name them.
    for namespace, selector in ports:
        if namespace in wide and selector:
            workloads.get(namespace, selector)
    for obj, rep in policies:
        if _action(obj) in ("DENY", "CUSTOM"):
            _guard(obj, rep, workloads, root_namespace)
    for (namespace, selector), known in ports.items():
        for w in workloads.in_namespace(namespace):
            if all(item in w.selector for item in selector):
                w.ports |= known
    return workloads


# Selects no pod: a namespace whose only policies deny still needs one traffic-policy file, or
# it gets no default deny and Cilium would allow what Istio denied.
GUARD: Selector = (("meshless.io/istio-migration", "namespace-guard"),)


def _guard(obj: IstioObject, rep: ObjectReport, workloads: WorkloadSet, root: str) -> None:
    """Make sure the workloads a DENY/CUSTOM policy covers are under a default deny."""
    if obj.namespace == root:
        rep.gap(
            "metadata.namespace",
            f"a {_action(obj)} policy in the root namespace applies mesh-wide; namespaces that get a traffic-policy file here are under default deny, but any other namespace keeps Cilium's default allow",
            "a CiliumClusterwideNetworkPolicy with ingressDeny, written by hand",
        )
        return
    selector = selector_of(obj)
    if selector is not None:
        target = workloads.get(obj.namespace, selector)
    elif workloads.in_namespace(obj.namespace):
        return
    else:
        target = workloads.get(obj.namespace, GUARD)
        target.name = "istio-deny-guard"
        rep.note(
            f"no workload of {obj.namespace} is known, so a policy selecting no pods (istio-deny-guard) puts the namespace under default deny: everything there is denied (stricter)"
        )
    target.sources.add(rep.obj.ref)
    rep.note(
        "the workloads it covers are under default deny; only allow rules that cannot overlap it are kept (stricter than Istio, which allows what no DENY matches when there is no ALLOW policy)"
    )


def _action(obj: IstioObject) -> str:
    return str(obj.spec.get("action") or "ALLOW")


def _targets(obj: IstioObject, workloads: WorkloadSet, root_namespace: str) -> list[Workload]:
    selector = selector_of(obj)
    everywhere = obj.namespace == root_namespace
    return [
        w
        for (ns, _s), w in sorted(workloads.workloads.items())
        if (everywhere or ns == obj.namespace) and w.compatible(selector)
    ]


def _convert_policy(
    obj: IstioObject, rep: ObjectReport, workloads: WorkloadSet, root_namespace: str
) -> None:
    action = _action(obj)
    if action != "ALLOW":
        _report_not_allow(obj, rep, action)
        return
    for key in ("targetRef", "targetRefs"):
        if obj.spec.get(key):
            rep.gap(
                key,
                "policies attached to a Gateway or Service (waypoints, ambient) are not migrated; nothing is allowed for them (stricter)",
                "Gateway API route filters or a CiliumNetworkPolicy on the gateway's pods, written by hand",
            )
            return
    if obj.namespace == root_namespace:
        rep.gap(
            "metadata.namespace",
            f"a policy in the root namespace {root_namespace} applies mesh-wide; its allow rules are not copied to every workload (stricter)",
            "a CiliumClusterwideNetworkPolicy, written by hand",
        )
        return
    selector = selector_of(obj)
    targets = (
        [workloads.get(obj.namespace, selector)]
        if selector
        else workloads.in_namespace(obj.namespace)
    )
    if not targets:
        rep.gap(
            "selector",
            "a namespace-wide policy, but no workload in the namespace is known (from a selector-based policy or a Kubernetes Service in the input); nothing emitted (stricter)",
            "add the namespace's Services to the input",
        )
        return
    if not obj.spec.get("rules"):
        rep.note(
            "no rules: Istio denies every request to the selected workloads; they get a policy without ingress rules (deny all)"
        )
    for target in targets:
        target.sources.add(rep.obj.ref)
    rep.carried = True
    for i, rule in enumerate(obj.spec.get("rules") or []):
        for target in targets:
            for new in _convert_rule(rule, f"rules[{i}]", rep, target):
                target.rules.append(new)


def _report_not_allow(obj: IstioObject, rep: ObjectReport, action: str) -> None:
    if action == "DENY":
        rep.gap(
            "action",
            "our format has allow rules only; the allow rules of every workload this policy may apply to are dropped where they could overlap (stricter)",
            "CiliumNetworkPolicy ingressDeny (L3/L4 only, no HTTP), written by hand",
        )
    elif action == "CUSTOM":
        rep.gap(
            "action",
            "external authorization has no Cilium equivalent; every allow rule of the workloads it applies to is dropped (stricter)",
            "none in Cilium 1.16 (an ext_authz Envoy filter through CiliumEnvoyConfig, not generated)",
        )
    else:
        rep.gap(
            "action",
            "AUDIT only logs; nothing to enforce",
            "Hubble flow logs (hubble observe --verdict ...)",
        )


def _convert_rule(rule: dict[str, Any], at: str, rep: ObjectReport, target: Workload) -> list[Rule]:
    problems: list[Problem] = []
    peers: list[Peer] = []
    if rule.get("from"):
        for j, entry in enumerate(rule["from"]):
            found, errs = convert_source(entry.get("source") or {}, f"{at}.from[{j}].source")
            problems += errs
            peers += found or []
        if not peers:
            _gaps(
                rep,
                problems,
                f"{at}: no source could be expressed, so the rule is left out (stricter)",
            )
            return []
    else:
        peers = [ANY_CALLER]
    ops: list[Operation] = []
    if rule.get("to"):
        for j, entry in enumerate(rule["to"]):
            op, errs = convert_operation(entry.get("operation") or {}, f"{at}.to[{j}].operation")
            problems += errs
            ops += [op] if op else []
        if not ops:
            _gaps(
                rep,
                problems,
                f"{at}: no operation could be expressed, so the rule is left out (stricter)",
            )
            return []
    else:
        ops = [Operation(None, None)]
    when, errs = convert_when(rule.get("when") or [], f"{at}.when")
    if when is None:
        _gaps(rep, [*problems, *errs], f"{at}: left out (stricter)")
        return []
    _gaps(rep, problems, "")
    peers = _filter_namespaces(peers, when)
    if any(k == "labels" for peer in peers for k, _v in peer):
        rep.note(
            f"{at}: callers by service account are pods, not declared services, so their egress is not derived; add an egress rule to the calling workload's file if its namespace has policies"
        )
    if not peers:
        rep.note(f"{at}: no caller is left after its source.namespace condition; nothing emitted")
        return []
    out = []
    for op in sorted(set(ops), key=repr):
        new = _rule(tuple(sorted(set(peers))), op, when, rep, at, target)
        if new is not None:
            out.append(new)
    return out


def _gaps(rep: ObjectReport, problems: Iterable[Problem], _context: str) -> None:
    for p in problems:
        rep.gap(p.field, p.reason, p.alternative)


def _filter_namespaces(peers: list[Peer], when: When) -> list[Peer]:
    if when.namespaces is None:
        return peers
    out: list[Peer] = []
    for peer in peers:
        items = dict(peer)
        if items.get("entity") == "all":
            out += [(("namespace", n),) for n in when.namespaces]
        elif items.get("namespace") in when.namespaces:
            out.append(peer)
    return out


def _rule(
    peers: tuple[Peer, ...], op: Operation, when: When, rep: ObjectReport, at: str, target: Workload
) -> Rule | None:
    ports = op.ports
    if when.ports is not None:
        ports = tuple(sorted(set(ports or when.ports) & set(when.ports)))
        if not ports:
            return None
    http = op.http
    if when.headers:
        combos: list[tuple[tuple[str, str], ...]] = [()]
        for name, values in when.headers:
            combos = [(*c, (name, v)) for c in combos for v in values]
        base = http or ((),)
        http = tuple((*h, ("headers", c)) for h in base for c in combos)
    if ports:
        target.ports |= set(ports)
    elif http is not None and not target.ports:
        rep.gap(
            f"{at}.to",
            f"HTTP conditions need a port and none is known for {target.namespace}/{dict(target.selector)}; the rule is left out for it (stricter)",
            "add the workload's Kubernetes Service to the input, or name ports in the operation",
        )
        return None
    return Rule(peers, ports, http, rep, at)


def _restrict(obj: IstioObject, rep: ObjectReport, workloads: WorkloadSet, root: str) -> None:
    """Drop the allow rules a DENY or CUSTOM policy may overlap."""
    custom = _action(obj) == "CUSTOM"
    deny_ports = None if custom else _deny_ports(obj)
    if not custom and not obj.spec.get("rules"):
        rep.note("no rules: this DENY policy matches nothing, so it changes nothing")
        return
    for target in _targets(obj, workloads, root):
        kept = []
        for rule in target.rules:
            # A rule without ports covers the workload's declared ports (all if none).
            ports = rule.ports if rule.ports is not None else (tuple(target.ports) or None)
            if deny_ports is not None and ports is not None and not set(ports) & deny_ports:
                kept.append(rule)
                continue
            why = "an external authorizer (CUSTOM)" if custom else "a DENY"
            rule.origin.gap(
                rule.at,
                f"{why} policy {obj.namespace}/{obj.name} may match the same requests and cannot be written in our format; the rule is dropped for {target.namespace}/{dict(target.selector)} (stricter)",
                "CiliumNetworkPolicy ingressDeny (L3/L4), written by hand",
            )
        target.rules = kept


def _deny_ports(obj: IstioObject) -> set[int] | None:
    """The ports a DENY policy can match, or None when it may match any port."""
    ports: set[int] = set()
    for rule in obj.spec.get("rules") or []:
        if not rule.get("to"):
            return None
        for entry in rule["to"]:
            op = entry.get("operation") or {}
            if not op.get("ports") or op.get("notPorts"):
                return None
            try:
                ports |= {int(p) for p in op["ports"]}
            except ValueError:
                return None
    return ports
