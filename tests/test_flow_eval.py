"""The flow evaluator, held to each row of its semantics table (components/flows/evaluate.py)
with an allowed and a denied flow, including the cases where Cilium surprises people.

Pure tests on hand-written CiliumNetworkPolicy objects: the evaluator reads the same dicts
the plan writes under out/<stack>/manifests/.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.flows.evaluate import Endpoint, Flow, PolicyIndex, Request, Verdict

KUBE_DNS = {
    "matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}
}


def cnp(
    name: str, namespace: str = "shop", selector: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    spec = {
        "endpointSelector": {"matchLabels": selector if selector is not None else {"app": name}},
        **spec,
    }
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def pod(name: str, namespace: str = "shop", **labels: str) -> Endpoint:
    return Endpoint(f"{namespace}/{name}", namespace=namespace, labels=labels or {"app": name})


def tcp(port: int | str, **extra: Any) -> list[dict[str, Any]]:
    return [{"ports": [{"port": str(port), "protocol": "TCP"}], **extra}]


def http(*rules: dict[str, Any]) -> list[dict[str, Any]]:
    return tcp(80, rules={"http": list(rules)})


def trace(
    objects: list[dict[str, Any]],
    src: Endpoint,
    dst: Endpoint,
    port: int = 80,
    protocol: str = "TCP",
    request: Request | None = None,
) -> Verdict:
    return PolicyIndex(objects).evaluate(Flow(src, dst, port, protocol, request))


A, B, C = pod("a"), pod("b"), pod("c")
OTHER_A = pod("a", "other")
WORLD = Endpoint("203.0.113.9", entity="world", ip="203.0.113.9")
HOST = Endpoint("host", entity="host")
GET = Request("GET", "/")
B_FROM_A = cnp("b", ingress=[{"fromEndpoints": [{"matchLabels": {"app": "a"}}]}])


L7_GET_PUBLIC = {
    "fromEndpoints": [{"matchLabels": {"app": "a"}}],
    "toPorts": http({"method": "GET", "path": "/public"}),
}
FQDN_STRIPE = {"toFQDNs": [{"matchName": "api.stripe.com"}], "toPorts": tcp(443)}
DNS_STRIPE = {
    "toEndpoints": [KUBE_DNS],
    "toPorts": [
        {
            "ports": [{"port": "53", "protocol": "UDP"}],
            "rules": {"dns": [{"matchPattern": "*.stripe.com"}]},
        }
    ],
}


class TestDefaultDeny:
    """Row 1: an endpoint is open until a policy with rules in that direction selects it."""

    def test_unselected_endpoint_allows_everything(self) -> None:
        verdict = trace([], A, B)
        assert verdict.allowed
        assert "default allow" in verdict.ingress.rule

    def test_selected_endpoint_denies_what_no_rule_allows(self) -> None:
        assert trace([B_FROM_A], A, B).allowed
        verdict = trace([B_FROM_A], C, B)
        assert not verdict.allowed
        assert verdict.deciding.rule.startswith("default deny at ingress of shop/b")
        assert "CiliumNetworkPolicy shop/b" in verdict.deciding.rule

    def test_enable_default_deny_false_keeps_the_endpoint_open(self) -> None:
        """Surprising: the allow rule then only adds; everybody else still gets in."""
        open_b = cnp("b", ingress=B_FROM_A["spec"]["ingress"], enableDefaultDeny={"ingress": False})
        assert trace([open_b], C, B).allowed
        assert not trace([open_b, B_FROM_A], C, B).allowed  # any policy asking for it wins

    def test_egress_rules_do_not_close_ingress(self) -> None:
        egress_only = cnp("b", egress=[{"toEntities": ["world"]}])
        assert trace([egress_only], C, B).allowed
        assert not trace([egress_only], B, C).allowed


class TestBothEnds:
    """Row 2: the caller's egress and the callee's ingress must both allow."""

    def test_allowed_when_both_sides_allow(self) -> None:
        a_to_b = cnp("a", egress=[{"toEndpoints": [{"matchLabels": {"app": "b"}}]}])
        verdict = trace([a_to_b, B_FROM_A], A, B)
        assert verdict.allowed
        assert "shop/a spec.egress[0]" in verdict.egress.rule
        assert "shop/b spec.ingress[0]" in verdict.ingress.rule

    def test_callee_allowing_is_not_enough(self) -> None:
        a_to_c = cnp("a", egress=[{"toEndpoints": [{"matchLabels": {"app": "c"}}]}])
        verdict = trace([a_to_c, B_FROM_A], A, B)
        assert not verdict.allowed
        assert verdict.deciding.direction == "egress"
        assert verdict.ingress.allowed


class TestDenyPrecedence:
    """Row 3: a matching deny rule wins over every allow rule."""

    def test_deny_beats_allow_all(self) -> None:
        policy = cnp(
            "b",
            ingress=[{"fromEntities": ["all"]}],
            ingressDeny=[{"fromEndpoints": [{"matchLabels": {"app": "a"}}], "toPorts": tcp(80)}],
        )
        verdict = trace([policy], A, B)
        assert not verdict.allowed
        assert verdict.deciding.rule.endswith("spec.ingressDeny[0]")
        assert trace([policy], A, B, port=81).allowed  # the deny names port 80 only
        assert trace([policy], C, B).allowed

    def test_a_deny_only_policy_still_turns_on_default_deny(self) -> None:
        """Surprising: a policy with nothing but a deny rule closes the endpoint."""
        deny_only = cnp("b", ingressDeny=[{"fromEntities": ["world"]}])
        assert not trace([deny_only], C, B).allowed
        assert "default deny at ingress" in trace([deny_only], C, B).deciding.rule
        opened = cnp(
            "b", ingressDeny=[{"fromEntities": ["world"]}], enableDefaultDeny={"ingress": False}
        )
        assert trace([opened], C, B).allowed
        assert not trace([opened], WORLD, B).allowed


class TestNamespacedSelectors:
    """Row 4: a CiliumNetworkPolicy's selectors stay in its namespace unless they name one."""

    def test_empty_selector_is_every_pod_of_the_namespace(self) -> None:
        policy = cnp("b", ingress=[{"fromEndpoints": [{}]}])
        assert trace([policy], C, B).allowed
        assert not trace([policy], OTHER_A, B).allowed

    def test_same_labels_in_another_namespace_do_not_match(self) -> None:
        assert not trace([B_FROM_A], OTHER_A, B).allowed
        cross = cnp(
            "b",
            ingress=[
                {
                    "fromEndpoints": [
                        {"matchLabels": {"app": "a", "k8s:io.kubernetes.pod.namespace": "other"}}
                    ]
                }
            ],
        )
        assert trace([cross], OTHER_A, B).allowed
        assert not trace([cross], A, B).allowed

    def test_endpoint_selector_selects_its_namespace_only(self) -> None:
        policy = cnp("a", ingress=[{"fromEndpoints": [{"matchLabels": {"app": "b"}}]}])
        assert trace([policy], C, OTHER_A).allowed  # other/a is not selected by shop's policy
        assert not trace([policy], C, A).allowed

    def test_match_expressions(self) -> None:
        policy = cnp(
            "b",
            ingress=[
                {
                    "fromEndpoints": [
                        {
                            "matchExpressions": [
                                {"key": "app", "operator": "In", "values": ["a", "x"]}
                            ]
                        }
                    ]
                }
            ],
        )
        assert trace([policy], A, B).allowed
        assert not trace([policy], C, B).allowed


class TestPeers:
    """Row 5: who a rule applies to."""

    def test_ports_without_peers_allow_every_peer(self) -> None:
        """Surprising: an L4-only rule opens the port to the whole world."""
        policy = cnp("b", ingress=[{"toPorts": tcp(80)}])
        assert trace([policy], WORLD, B).allowed
        assert not trace([policy], WORLD, B, port=22).allowed

    def test_an_empty_rule_allows_nothing_but_closes_the_endpoint(self) -> None:
        policy = cnp("b", ingress=[{}])
        assert not trace([policy], A, B).allowed
        assert trace([policy], B, A).allowed  # egress untouched


class TestEntities:
    """Row 6: reserved identities."""

    def test_cluster_is_everything_inside(self) -> None:
        policy = cnp("b", ingress=[{"fromEntities": ["cluster"]}])
        assert trace([policy], OTHER_A, B).allowed
        assert trace([policy], HOST, B).allowed
        assert not trace([policy], WORLD, B).allowed

    def test_world_is_everything_outside(self) -> None:
        policy = cnp("b", ingress=[{"fromEntities": ["world"]}])
        assert trace([policy], WORLD, B).allowed
        assert not trace([policy], A, B).allowed

    def test_ingress_controller_identity(self) -> None:
        policy = cnp("b", ingress=[{"fromEntities": ["ingress"], "toPorts": tcp(80)}])
        assert trace([policy], Endpoint("ingress", entity="ingress"), B).allowed
        assert not trace([policy], HOST, B).allowed

    def test_kube_apiserver(self) -> None:
        policy = cnp("a", egress=[{"toEntities": ["kube-apiserver"], "toPorts": tcp(443)}])
        api = Endpoint("kube-apiserver", entity="kube-apiserver")
        assert trace([policy], A, api, port=443).allowed
        assert not trace([policy], A, WORLD, port=443).allowed


class TestCidr:
    """Row 7: CIDR rules select world addresses; the host entity is not a CIDR."""

    METADATA = Endpoint("169.254.169.254", entity="world", ip="169.254.169.254")
    POD_IDENTITY = Endpoint("169.254.170.23", entity="host", ip="169.254.170.23")

    def test_gke_metadata_server_needs_a_cidr_rule(self) -> None:
        """Surprising (Smana/runlore#562): toEntities host matches nothing at 169.254.169.254."""
        by_cidr = cnp("a", egress=[{"toCIDR": ["169.254.169.254/32"], "toPorts": tcp(80)}])
        by_host = cnp("a", egress=[{"toEntities": ["host"], "toPorts": tcp(80)}])
        assert trace([by_cidr], A, self.METADATA).allowed
        verdict = trace([by_host], A, self.METADATA)
        assert not verdict.allowed
        assert "no egress rule allows to 169.254.169.254 on 80/TCP" in verdict.deciding.reason

    def test_eks_pod_identity_agent_needs_the_host_entity(self) -> None:
        """Surprising (cilium/cilium#34387): an address Cilium calls host escapes CIDR rules."""
        by_cidr = cnp("a", egress=[{"toCIDR": ["169.254.170.23/32"], "toPorts": tcp(80)}])
        by_host = cnp("a", egress=[{"toEntities": ["host"], "toPorts": tcp(80)}])
        assert trace([by_host], A, self.POD_IDENTITY).allowed
        assert not trace([by_cidr], A, self.POD_IDENTITY).allowed

    def test_except_carves_out(self) -> None:
        policy = cnp(
            "a", egress=[{"toCIDRSet": [{"cidr": "203.0.113.0/24", "except": ["203.0.113.0/29"]}]}]
        )
        assert trace([policy], A, WORLD).allowed
        assert not trace(
            [policy], A, Endpoint("203.0.113.5", entity="world", ip="203.0.113.5")
        ).allowed


class TestPorts:
    """Row 8."""

    def test_range_and_protocol(self) -> None:
        policy = cnp(
            "b",
            ingress=[
                {
                    "fromEntities": ["all"],
                    "toPorts": [{"ports": [{"port": "8000", "endPort": 8010, "protocol": "TCP"}]}],
                }
            ],
        )
        assert trace([policy], A, B, port=8005).allowed
        assert not trace([policy], A, B, port=8011).allowed
        assert not trace([policy], A, B, port=8005, protocol="UDP").allowed

    def test_any_protocol_and_port_zero(self) -> None:
        policy = cnp(
            "b", ingress=[{"fromEntities": ["all"], "toPorts": [{"ports": [{"port": "0"}]}]}]
        )
        assert trace([policy], A, B, port=5353, protocol="UDP").allowed
        named = cnp(
            "b", ingress=[{"fromEntities": ["all"], "toPorts": [{"ports": [{"port": "http"}]}]}]
        )
        assert not trace([named], A, B).allowed  # named ports are not resolved here


class TestL4BeatsL7:
    """Row 9: an L3/L4 rule on the port voids another rule's L7 restriction for its peers."""

    def test_l7_alone_restricts(self) -> None:
        policy = cnp("b", ingress=[L7_GET_PUBLIC])
        assert trace([policy], A, B, request=Request("GET", "/public")).allowed
        verdict = trace([policy], A, B, request=Request("POST", "/private"))
        assert not verdict.allowed
        assert (
            "L7 rules of CiliumNetworkPolicy shop/b spec.ingress[0].toPorts[0]"
            in verdict.deciding.rule
        )

    def test_an_l4_rule_for_the_same_peer_allows_every_request(self) -> None:
        """Surprising: the L7 rule stops protecting anything once an L4 rule covers the port."""
        policy = cnp(
            "b", ingress=[L7_GET_PUBLIC, {"fromEntities": ["cluster"], "toPorts": tcp(80)}]
        )
        verdict = trace([policy], A, B, request=Request("POST", "/private"))
        assert verdict.allowed
        assert verdict.ingress.rule.endswith("spec.ingress[1].toPorts[0]")

    def test_an_l3_only_rule_also_voids_it(self) -> None:
        policy = cnp(
            "b", ingress=[L7_GET_PUBLIC, {"fromEndpoints": [{"matchLabels": {"app": "a"}}]}]
        )
        assert trace([policy], A, B, request=Request("DELETE", "/x")).allowed


class TestHttpRules:
    """Row 10: full-match RE2 regexes; every field of a rule must match."""

    def rule(self, **fields: Any) -> list[dict[str, Any]]:
        return [cnp("b", ingress=[{"fromEntities": ["all"], "toPorts": http(fields)}])]

    def test_path_must_match_whole_including_query(self) -> None:
        """Surprising: `/api` does not allow `/api?page=2` — the query is part of :path."""
        objects = self.rule(path="/api")
        assert trace(objects, A, B, request=Request("GET", "/api")).allowed
        assert not trace(objects, A, B, request=Request("GET", "/api/v2")).allowed
        assert not trace(objects, A, B, request=Request("GET", "/api?page=2")).allowed
        escaped = self.rule(path=r"/api(\?.*)?")
        assert trace(escaped, A, B, request=Request("GET", "/api?page=2")).allowed

    def test_method_is_a_regex_too(self) -> None:
        objects = self.rule(method="GET|HEAD")
        assert trace(objects, A, B, request=Request("HEAD", "/")).allowed
        assert not trace(objects, A, B, request=Request("GETS", "/")).allowed

    def test_headers_present_or_exact(self) -> None:
        objects = self.rule(headers=["X-Request-Id", "X-Env: prod"])
        ok = Request("GET", "/", headers={"x-request-id": "1", "X-Env": "prod"})
        assert trace(objects, A, B, request=ok).allowed
        assert not trace(
            objects, A, B, request=Request("GET", "/", headers={"X-Env": "prod"})
        ).allowed
        wrong = Request("GET", "/", headers={"X-Request-Id": "1", "X-Env": "dev"})
        assert not trace(objects, A, B, request=wrong).allowed

    def test_header_matches_and_host(self) -> None:
        objects = self.rule(
            host=r"api\.shop\.example", headerMatches=[{"name": "X-Tenant", "value": "t1"}]
        )
        ok = Request("GET", "/", host="api.shop.example", headers={"X-Tenant": "t1"})
        assert trace(objects, A, B, request=ok).allowed
        other = Request("GET", "/", host="api.shop.example.evil", headers={"X-Tenant": "t1"})
        assert not trace(objects, A, B, request=other).allowed


class TestFqdnNeedsDns:
    """Row 11: toFQDNs only works with a DNS-proxy rule for the name."""

    STRIPE = Endpoint("api.stripe.com", entity="world", fqdn="api.stripe.com")

    def test_with_the_lookup_rule(self) -> None:
        verdict = trace([cnp("a", egress=[FQDN_STRIPE, DNS_STRIPE])], A, self.STRIPE, port=443)
        assert verdict.allowed
        upper = Endpoint("API.Stripe.com", entity="world", fqdn="API.Stripe.com")
        assert trace([cnp("a", egress=[FQDN_STRIPE, DNS_STRIPE])], A, upper, port=443).allowed

    def test_without_it_the_rule_never_learns_an_address(self) -> None:
        verdict = trace([cnp("a", egress=[FQDN_STRIPE])], A, self.STRIPE, port=443)
        assert not verdict.allowed
        assert verdict.deciding.rule.endswith("spec.egress[0]")
        assert "DNS proxy" in verdict.deciding.reason

    def test_port_53_without_dns_rules_is_not_the_proxy(self) -> None:
        """Surprising: allowing DNS traffic at L4 does not make toFQDNs work."""
        plain_dns = {
            "toEndpoints": [KUBE_DNS],
            "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}]}],
        }
        assert not trace(
            [cnp("a", egress=[FQDN_STRIPE, plain_dns])], A, self.STRIPE, port=443
        ).allowed

    def test_pattern_star_stops_at_dots(self) -> None:
        pattern = {"toFQDNs": [{"matchPattern": "*.stripe.com"}], "toPorts": tcp(443)}
        catch_all = {
            **DNS_STRIPE,
            "toPorts": [{**DNS_STRIPE["toPorts"][0], "rules": {"dns": [{"matchPattern": "*"}]}}],
        }
        objects = [cnp("a", egress=[pattern, catch_all])]
        assert trace(objects, A, self.STRIPE, port=443).allowed
        apex = Endpoint("stripe.com", entity="world", fqdn="stripe.com")
        assert not trace(objects, A, apex, port=443).allowed
        deep = Endpoint("a.b.stripe.com", entity="world", fqdn="a.b.stripe.com")
        assert not trace(objects, A, deep, port=443).allowed

    def test_dns_lookups_are_checked_by_name(self) -> None:
        objects = [cnp("a", egress=[DNS_STRIPE])]
        dns = Endpoint(
            "kube-system/kube-dns", namespace="kube-system", labels={"k8s-app": "kube-dns"}
        )
        assert trace(
            objects, A, dns, port=53, protocol="UDP", request=Request(dns="api.stripe.com")
        ).allowed
        assert not trace(
            objects, A, dns, port=53, protocol="UDP", request=Request(dns="evil.example")
        ).allowed


@pytest.mark.parametrize("kind", ["toServices", "toGroups", "toRequires"])
def test_unmodelled_selectors_match_nothing(kind: str) -> None:
    """Not modelled means "denied here", never a silent allow."""
    policy = cnp("a", egress=[{kind: [{"k8sService": {"serviceName": "x"}}], "toPorts": tcp(80)}])
    assert not trace([policy], A, B).allowed
