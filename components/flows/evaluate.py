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

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from components.flows.match import _dns_matches, _http_matches
from components.flows.model import (
    DNS_SERVER,
    Decision,
    Direction,
    Endpoint,
    Flow,
    Request,
    Verdict,
)
from components.flows.rules import _Entry, _Policy

__all__ = [
    "DNS_SERVER",
    "Decision",
    "Endpoint",
    "Flow",
    "PolicyIndex",
    "Request",
    "Verdict",
]


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
        key = endpoint.identity
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
        key = (*subject.identity, peer.fqdn)
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
