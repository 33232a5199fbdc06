"""`meshless migrate istio`: AuthorizationPolicies, PeerAuthentication and ServiceEntries to
traffic policies, and what cannot carry over reported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.migrate_support import (
    PA,
    SERVICE,
    ap,
    entry,
    gaps,
    run,
    service_file,
)


class TestAuthorization:
    """ALLOW rules become ingress rules; what cannot be said exactly is left out, stricter."""

    @pytest.mark.parametrize("version", ["v1", "v1beta1"])
    def test_allow_rule_maps_callers_methods_paths_ports(
        self, tmp_path: Path, version: str
    ) -> None:
        body = """
        selector: {matchLabels: {app: orders}}
        rules:
          - from:
              - source: {principals: [cluster.local/ns/web/sa/frontend]}
              - source: {namespaces: [ops]}
              - source: {ipBlocks: [203.0.113.0/24]}
            to:
              - operation: {methods: [GET, HEAD], paths: [/orders, "/orders/*", "*.json"], ports: ["8080"]}
            when:
              - {key: "request.headers[x-tenant]", values: [acme]}
        """
        result = run(tmp_path, SERVICE + "---" + ap(body, version=version))
        svc = service_file(result)
        assert svc["selector"] == {"app": "orders"} and svc["ports"] == [{"port": 8080}]
        [rule] = svc["ingress"]
        assert rule["from"] == [
            {"cidr": "203.0.113.0/24"},
            {"labels": {"io.cilium.k8s.policy.serviceaccount": "frontend"}, "namespace": "web"},
            {"namespace": "ops"},
        ]
        assert rule["ports"] == [8080]
        header = [{"name": "x-tenant", "value": "acme"}]
        assert rule["http"] == [
            {"method": ["GET", "HEAD"], "pathRegex": r".*\.json(\?.*)?", "headers": header},
            {"method": ["GET", "HEAD"], "path": "/orders", "headers": header},
            {"method": ["GET", "HEAD"], "pathPrefix": "/orders/", "headers": header},
        ]
        assert entry(result, "AuthorizationPolicy", "orders")["status"] == "fully"

    def test_rule_without_ports_uses_the_service_target_port(self, tmp_path: Path) -> None:
        body = "selector: {matchLabels: {app: orders}}\nrules: [{to: [{operation: {methods: [GET]}}]}]\n"
        svc = service_file(run(tmp_path, SERVICE + "---" + ap(body)))
        assert svc["ports"] == [{"port": 8080}]
        assert svc["ingress"] == [{"from": [{"entity": "all"}], "http": [{"method": ["GET"]}]}]

    def test_http_rule_without_any_known_port_is_left_out(self, tmp_path: Path) -> None:
        body = "selector: {matchLabels: {app: orders}}\nrules: [{to: [{operation: {methods: [GET]}}]}]\n"
        result = run(tmp_path, ap(body))
        assert service_file(result)["ingress"] == []
        assert any(
            "need a port" in r for r in gaps(result, "AuthorizationPolicy", "orders").values()
        )

    @pytest.mark.parametrize(
        ("source", "field"),
        [
            ("{notNamespaces: [dev]}", "rules[0].from[0].source.notNamespaces"),
            ("{requestPrincipals: ['*']}", "rules[0].from[0].source.requestPrincipals"),
            ("{principals: ['*']}", "rules[0].from[0].source.principals"),
            ("{namespaces: ['team-*']}", "rules[0].from[0].source.namespaces"),
            ("{remoteIpBlocks: [1.2.3.4]}", "rules[0].from[0].source.remoteIpBlocks"),
        ],
    )
    def test_inexpressible_sources_drop_the_rule(
        self, tmp_path: Path, source: str, field: str
    ) -> None:
        body = f"selector: {{matchLabels: {{app: orders}}}}\nrules: [{{from: [{{source: {source}}}]}}]\n"
        result = run(tmp_path, SERVICE + "---" + ap(body))
        assert service_file(result)["ingress"] == []
        assert field in gaps(result, "AuthorizationPolicy", "orders")

    @pytest.mark.parametrize(
        ("operation", "field"),
        [
            ("{notPaths: [/admin]}", "rules[0].to[0].operation.notPaths"),
            ("{notMethods: [DELETE]}", "rules[0].to[0].operation.notMethods"),
            ("{hosts: [a.example.com]}", "rules[0].to[0].operation.hosts"),
            ("{methods: [get]}", "rules[0].to[0].operation.methods"),
            ("{paths: ['/a/{*}/b']}", "rules[0].to[0].operation.paths"),
        ],
    )
    def test_inexpressible_operations_drop_the_rule(
        self, tmp_path: Path, operation: str, field: str
    ) -> None:
        body = f"selector: {{matchLabels: {{app: orders}}}}\nrules: [{{to: [{{operation: {operation}}}]}}]\n"
        result = run(tmp_path, SERVICE + "---" + ap(body))
        assert service_file(result)["ingress"] == []
        assert field in gaps(result, "AuthorizationPolicy", "orders")

    @pytest.mark.parametrize(
        "condition",
        [
            "{key: 'request.auth.claims[iss]', values: [x]}",
            "{key: source.ip, values: [10.0.0.1]}",
            "{key: 'request.headers[x]', notValues: [a]}",
            "{key: 'request.headers[x]', values: ['a*']}",
        ],
    )
    def test_inexpressible_conditions_drop_the_rule(self, tmp_path: Path, condition: str) -> None:
        body = f"selector: {{matchLabels: {{app: orders}}}}\nrules: [{{when: [{condition}]}}]\n"
        result = run(tmp_path, SERVICE + "---" + ap(body))
        assert service_file(result)["ingress"] == []
        assert any(
            f.startswith("rules[0].when[0]") for f in gaps(result, "AuthorizationPolicy", "orders")
        )

    def test_deny_drops_overlapping_allow_rules_only(self, tmp_path: Path) -> None:
        allow = """
        selector: {matchLabels: {app: orders}}
        rules:
          - to: [{operation: {ports: ["8080"], methods: [GET]}}]
          - to: [{operation: {ports: ["9000"]}}]
        """
        deny = "selector: {matchLabels: {app: orders}}\naction: DENY\nrules: [{to: [{operation: {ports: ['9000'], paths: [/admin]}}]}]\n"
        result = run(tmp_path, SERVICE + "---" + ap(allow) + "---" + ap(deny, name="deny-admin"))
        assert [r["ports"] for r in service_file(result)["ingress"]] == [[8080]]
        assert "rules[1]" in gaps(result, "AuthorizationPolicy", "orders")
        assert entry(result, "AuthorizationPolicy", "deny-admin")["status"] == "not"

    def test_deny_only_namespace_is_still_default_deny(self, tmp_path: Path) -> None:
        deny = "action: DENY\nrules: [{from: [{source: {namespaces: [dev]}}]}]\n"
        result = run(tmp_path, ap(deny, name="no-dev"))
        guard = service_file(result, "istio-deny-guard")
        assert guard["ingress"] == [] and guard["selector"] == {
            "meshless.io/istio-migration": "namespace-guard"
        }

    def test_custom_and_audit_are_reported(self, tmp_path: Path) -> None:
        allow = "selector: {matchLabels: {app: orders}}\nrules: [{}]\n"
        custom = "selector: {matchLabels: {app: orders}}\naction: CUSTOM\nprovider: {name: opa}\nrules: [{}]\n"
        audit = "action: AUDIT\nrules: [{}]\n"
        result = run(
            tmp_path,
            SERVICE
            + "---"
            + ap(allow)
            + "---"
            + ap(custom, name="ext")
            + "---"
            + ap(audit, name="audit"),
        )
        assert service_file(result)["ingress"] == []
        assert "external authorization" in gaps(result, "AuthorizationPolicy", "ext")["action"]
        assert "AUDIT" in gaps(result, "AuthorizationPolicy", "audit")["action"]

    def test_namespace_wide_allow_applies_to_known_workloads(self, tmp_path: Path) -> None:
        body = "rules: [{from: [{source: {namespaces: [shop]}}]}]\n"
        result = run(tmp_path, SERVICE + "---" + ap(body, name="same-namespace"))
        assert service_file(result)["ingress"] == [{"from": [{"namespace": "shop"}]}]


class TestPeerAuthenticationAndServiceEntry:
    """STRICT mTLS and external hosts carry over where the cluster can enforce them."""

    def test_strict_needs_mutual_auth(self, tmp_path: Path) -> None:
        allow = "selector: {matchLabels: {app: orders}}\nrules: [{from: [{source: {namespaces: [web]}}]}, {}]\n"
        text = SERVICE + "---" + ap(allow) + "---" + PA
        without = run(tmp_path, text)
        assert "--mutual-auth" in gaps(without, "PeerAuthentication", "default")["mtls.mode"]
        with_auth = run(tmp_path, text, mutual_auth=True)
        rules = service_file(with_auth)["ingress"]
        assert rules[0] == {"from": [{"namespace": "web"}], "authentication": "required"}
        assert "authentication" not in rules[1]  # from anyone: cannot be authenticated
        assert entry(with_auth, "PeerAuthentication", "default")["status"] == "partly"

    def test_service_entry_becomes_fqdn_egress(self, tmp_path: Path) -> None:
        allow = "selector: {matchLabels: {app: orders}}\nrules: [{}]\n"
        se = """
        apiVersion: networking.istio.io/v1beta1
        kind: ServiceEntry
        metadata: {name: stripe, namespace: shop}
        spec:
          hosts: [api.stripe.com, "*.stripe.com"]
          ports: [{number: 443, name: https, protocol: TLS}]
          resolution: DNS
        """
        result = run(tmp_path, SERVICE + "---" + ap(allow) + "---" + textwrap.dedent(se))
        assert service_file(result)["egress"] == [
            {
                "to": [{"fqdnPattern": "*.stripe.com"}, {"fqdn": "api.stripe.com"}],
                "ports": ["443/tcp"],
            }
        ]
        assert entry(result, "ServiceEntry", "stripe")["status"] == "fully"

    def test_reported_kinds(self, tmp_path: Path) -> None:
        text = """
        apiVersion: networking.istio.io/v1alpha3
        kind: DestinationRule
        metadata: {name: orders, namespace: shop}
        spec:
          host: orders
          trafficPolicy: {outlierDetection: {consecutive5xxErrors: 5}, connectionPool: {tcp: {maxConnections: 1}}}
          subsets: [{name: v1, labels: {version: v1}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: Sidecar
        metadata: {name: default, namespace: shop}
        spec: {egress: [{hosts: ["./*"]}]}
        ---
        apiVersion: security.istio.io/v1
        kind: RequestAuthentication
        metadata: {name: jwt, namespace: shop}
        spec: {jwtRules: [{issuer: x}]}
        ---
        apiVersion: networking.istio.io/v1alpha3
        kind: EnvoyFilter
        metadata: {name: lua, namespace: shop}
        spec: {}
        """
        result = run(tmp_path, text)
        assert set(gaps(result, "DestinationRule", "orders")) == {
            "trafficPolicy.outlierDetection",
            "trafficPolicy.connectionPool",
            "subsets[0] (v1)",
        }
        alternatives = {
            g["field"]: g["ciliumAlternative"]
            for g in entry(result, "DestinationRule", "orders")["notCarriedOver"]
        }
        assert "CiliumEnvoyConfig" in alternatives["trafficPolicy.outlierDetection"]
        assert "egress" in gaps(result, "Sidecar", "default")
        assert "JWT" in gaps(result, "RequestAuthentication", "jwt")["jwtRules"]
        assert "kind" in gaps(result, "EnvoyFilter", "lua")
        assert result.report.counts == {
            "fully": 0,
            "partly": 0,
            "not": 4,
            "unreadable": 0,
            "input": 4,
        }
