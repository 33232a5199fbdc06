"""`meshless migrate istio`: each mapping, each reported gap, the file handling and exit codes,
and the committed example folder migrating to outputs that validate and plan cleanly."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from components.network_policy import render_policies
from components.traffic import load_policy_folder
from infra.cli import app
from migrate.run import Migration, migrate, write_outputs
from migrate.schemas import cnp_errors, gateway_api_errors

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "istio"


def run(tmp_path: Path, text: str, **kwargs: Any) -> Migration:
    path = tmp_path / "in.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return migrate([path], **kwargs)


def objects(result: Migration, prefix: str) -> dict[str, Any]:
    return {
        name: yaml.safe_load(text) for name, text in result.files.items() if name.startswith(prefix)
    }


def entry(result: Migration, kind: str, name: str) -> dict[str, Any]:
    found = [
        o
        for o in json.loads(result.files["report.json"])["objects"]
        if o["kind"] == kind and o["name"] == name
    ]
    assert len(found) == 1, found
    return found[0]


def gaps(result: Migration, kind: str, name: str) -> dict[str, str]:
    return {g["field"]: g["reason"] for g in entry(result, kind, name)["notCarriedOver"]}


GATEWAY = """
apiVersion: networking.istio.io/{version}
kind: Gateway
metadata: {{name: public, namespace: edge}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
    - port: {{number: 80, name: http, protocol: HTTP}}
      hosts: [shop.example.com]
"""


def vs(http: str, version: str = "v1", gateways: str = "[edge/public]") -> str:
    head = f"""
    apiVersion: networking.istio.io/{version}
    kind: VirtualService
    metadata: {{name: web, namespace: shop}}
    spec:
      hosts: [shop.example.com]
      gateways: {gateways}
      http:
    """
    return textwrap.dedent(head) + textwrap.indent(textwrap.dedent(http), "    ")


def route_rules(result: Migration, kind: str = "httproute") -> list[dict[str, Any]]:
    return objects(result, f"gateway-api/shop/{kind}-web.yaml")[
        f"gateway-api/shop/{kind}-web.yaml"
    ]["spec"]["rules"]


class TestRoutes:
    """Ingress VirtualServices become HTTPRoutes that keep their matches, backends and filters."""

    @pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
    def test_three_networking_versions(self, tmp_path: Path, version: str) -> None:
        text = (
            GATEWAY.format(version=version)
            + "---"
            + vs("- route: [{destination: {host: web, port: {number: 8080}}}]\n", version)
        )
        result = run(tmp_path, text)
        assert result.report.counts == {
            "fully": 2,
            "partly": 0,
            "not": 0,
            "unreadable": 0,
            "input": 2,
        }
        gateway = objects(result, "gateway-api/edge/gateway-public.yaml")[
            "gateway-api/edge/gateway-public.yaml"
        ]
        assert gateway["spec"]["gatewayClassName"] == "cilium"
        assert gateway["spec"]["listeners"][0]["hostname"] == "shop.example.com"
        assert route_rules(result) == [{"backendRefs": [{"name": "web", "port": 8080}]}]

    def test_matches_weights_and_header_filters(self, tmp_path: Path) -> None:
        http = """
        - match:
            - uri: {exact: /cart}
              method: {exact: POST}
              headers: {x-canary: {exact: "1"}, x-user: {prefix: "a.b"}}
              queryParams: {debug: {regex: "[01]"}}
          route:
            - {destination: {host: web, port: {number: 8080}}, weight: 80}
            - {destination: {host: web-next.shop.svc.cluster.local, port: {number: 8080}}, weight: 20}
          headers:
            request: {set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-c]}
            response: {remove: [server]}
          mirror: {host: shadow, port: {number: 8080}}
        """
        result = run(tmp_path, GATEWAY.format(version="v1") + "---" + vs(http))
        [rule] = route_rules(result)
        assert rule["matches"] == [
            {
                "path": {"type": "Exact", "value": "/cart"},
                "method": "POST",
                "headers": [
                    {"type": "Exact", "name": "x-canary", "value": "1"},
                    {"type": "RegularExpression", "name": "x-user", "value": r"a\.b.*"},
                ],
                "queryParams": [{"type": "RegularExpression", "name": "debug", "value": "[01]"}],
            }
        ]
        assert rule["backendRefs"] == [
            {"name": "web", "port": 8080, "weight": 80},
            {"name": "web-next", "port": 8080, "weight": 20},
        ]
        assert rule["filters"] == [
            {
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": {
                    "set": [{"name": "x-a", "value": "1"}],
                    "add": [{"name": "x-b", "value": "2"}],
                    "remove": ["x-c"],
                },
            },
            {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"remove": ["server"]}},
            {
                "type": "RequestMirror",
                "requestMirror": {"backendRef": {"name": "shadow", "port": 8080}},
            },
        ]
        assert entry(result, "VirtualService", "web")["status"] == "fully"

    def test_redirect_and_rewrites(self, tmp_path: Path) -> None:
        http = """
        - match: [{uri: {prefix: /old}}]
          redirect: {uri: /new, authority: new.example.com, redirectCode: 301, scheme: https}
        - match: [{uri: {prefix: /api/v1/}}]
          rewrite: {uri: /v1/, authority: api.internal}
          route: [{destination: {host: web, port: {number: 8080}}}]
        - match: [{uri: {exact: /home}}]
          rewrite: {uri: /index.html}
          route: [{destination: {host: web, port: {number: 8080}}}]
        """
        rules = route_rules(run(tmp_path, GATEWAY.format(version="v1") + "---" + vs(http)))
        assert rules[0]["filters"] == [
            {
                "type": "RequestRedirect",
                "requestRedirect": {
                    "path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"},
                    "hostname": "new.example.com",
                    "scheme": "https",
                    "statusCode": 301,
                },
            }
        ]
        assert "backendRefs" not in rules[0]
        assert rules[1]["filters"] == [
            {
                "type": "URLRewrite",
                "urlRewrite": {
                    "hostname": "api.internal",
                    "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v1/"},
                },
            }
        ]
        assert rules[2]["filters"][0]["urlRewrite"]["path"] == {
            "type": "ReplaceFullPath",
            "replaceFullPath": "/index.html",
        }

    def test_cross_namespace_backend_gets_a_reference_grant(self, tmp_path: Path) -> None:
        http = "- route: [{destination: {host: reviews.bookinfo, port: {number: 9080}}}]\n"
        result = run(tmp_path, GATEWAY.format(version="v1") + "---" + vs(http))
        grant = objects(result, "gateway-api/bookinfo/")[
            "gateway-api/bookinfo/referencegrant-allow-routes-from-shop.yaml"
        ]
        assert grant["spec"] == {
            "from": [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "shop"}
            ],
            "to": [{"group": "", "kind": "Service", "name": "reviews"}],
        }
        listener = objects(result, "gateway-api/edge/")["gateway-api/edge/gateway-public.yaml"][
            "spec"
        ]["listeners"][0]
        assert listener["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0][
            "values"
        ] == ["edge", "shop"]

    def test_grpc_gateway_gives_grpc_routes(self, tmp_path: Path) -> None:
        gateway = GATEWAY.format(version="v1").replace("protocol: HTTP", "protocol: GRPC")
        http = """
        - match: [{uri: {prefix: /shop.v1.Catalog/}}, {uri: {exact: /shop.v1.Admin/Reindex}}]
          route: [{destination: {host: web, port: {number: 9090}}}]
        """
        [rule] = route_rules(run(tmp_path, gateway + "---" + vs(http)), "grpcroute")
        assert rule["matches"] == [
            {"method": {"type": "Exact", "service": "shop.v1.Catalog"}},
            {"method": {"type": "Exact", "service": "shop.v1.Admin", "method": "Reindex"}},
        ]

    def test_https_redirect_keeps_routes_off_the_plaintext_listener(self, tmp_path: Path) -> None:
        gateway = """
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: public, namespace: edge}
        spec:
          servers:
            - port: {number: 80, name: http, protocol: HTTP}
              hosts: [shop.example.com]
              tls: {httpsRedirect: true}
            - port: {number: 443, name: https, protocol: HTTPS}
              hosts: [shop.example.com]
              tls: {mode: SIMPLE, credentialName: shop-cert}
        """
        http = "- route: [{destination: {host: web, port: {number: 8080}}}]\n"
        result = run(tmp_path, textwrap.dedent(gateway) + "---" + vs(http))
        route = objects(result, "gateway-api/shop/httproute-web.yaml")[
            "gateway-api/shop/httproute-web.yaml"
        ]
        assert route["spec"]["parentRefs"] == [
            {"name": "public", "namespace": "edge", "sectionName": "https-443-1"}
        ]
        redirect = objects(result, "gateway-api/edge/httproute-public-https-redirect.yaml")[
            "gateway-api/edge/httproute-public-https-redirect.yaml"
        ]
        assert redirect["spec"]["parentRefs"] == [{"name": "public", "sectionName": "http-80-0"}]
        assert redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"] == {
            "scheme": "https",
            "statusCode": 301,
        }
        listener = objects(result, "gateway-api/edge/gateway-public.yaml")[
            "gateway-api/edge/gateway-public.yaml"
        ]["spec"]["listeners"][1]
        assert listener["tls"] == {
            "mode": "Terminate",
            "certificateRefs": [{"kind": "Secret", "name": "shop-cert"}],
        }


class TestRouteGaps:
    """What Gateway API v1.1 cannot say is reported with its reason, never silently dropped."""

    def test_timeouts_retries_fault_cors_mirror_percent_subsets(self, tmp_path: Path) -> None:
        http = """
        - route: [{destination: {host: web, port: {number: 8080}, subset: v2}}]
          timeout: 5s
          retries: {attempts: 3}
          fault: {abort: {httpStatus: 503, percentage: {value: 1}}}
          corsPolicy: {allowOrigins: [{exact: "https://a.example"}]}
          mirror: {host: shadow, port: {number: 8080}}
          mirrorPercentage: {value: 5}
        """
        result = run(tmp_path, GATEWAY.format(version="v1") + "---" + vs(http))
        found = gaps(result, "VirtualService", "web")
        assert set(found) == {
            "http[0].timeout",
            "http[0].retries",
            "http[0].fault",
            "http[0].corsPolicy",
            "http[0].mirrorPercentage",
            "http[0].route[0].destination.subset",
        }
        assert "not in Gateway API v1.1 standard" in found["http[0].timeout"]
        assert entry(result, "VirtualService", "web")["status"] == "partly"
        # The route itself still carries over, and is valid without those fields.
        assert route_rules(result)[0]["backendRefs"] == [{"name": "web", "port": 8080}]

    def test_mesh_routing_is_not_migrated(self, tmp_path: Path) -> None:
        http = "- route: [{destination: {host: web}}]\n  fault: {delay: {fixedDelay: 1s}}\n"
        result = run(tmp_path, vs(http, gateways="[mesh]"))
        found = gaps(result, "VirtualService", "web")
        assert "GAMMA" in found["gateways"] and "http[0].fault" in found
        assert entry(result, "VirtualService", "web")["status"] == "not"
        assert not objects(result, "gateway-api/")

    def test_unsupported_matches_drop_the_match_not_widen_it(self, tmp_path: Path) -> None:
        http = """
        - match: [{uri: {prefix: /a}, authority: {exact: a.example.com}}, {uri: {prefix: /b}}]
          route: [{destination: {host: web, port: {number: 8080}}}]
        - match: [{withoutHeaders: {x: {exact: "1"}}}]
          route: [{destination: {host: web, port: {number: 8080}}}]
        - route: [{destination: {host: api.stripe.com, port: {number: 443}}}]
        - directResponse: {status: 503}
        """
        result = run(tmp_path, GATEWAY.format(version="v1") + "---" + vs(http))
        assert route_rules(result) == [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/b"}}],
                "backendRefs": [{"name": "web", "port": 8080}],
            }
        ]
        assert {
            "http[0].match[0].authority",
            "http[1].match",
            "http[1].match[0].withoutHeaders",
            "http[2].route[0].destination.host",
            "http[2].route",
            "http[3].directResponse",
        } <= set(gaps(result, "VirtualService", "web"))

    def test_tcp_tls_routes_and_passthrough_gateways(self, tmp_path: Path) -> None:
        text = """
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: tls, namespace: edge}
        spec:
          servers:
            - port: {number: 443, name: tls, protocol: TLS}
              hosts: [a.example.com]
              tls: {mode: PASSTHROUGH}
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: db, namespace: shop}
        spec:
          hosts: [db]
          tcp: [{route: [{destination: {host: db}}]}]
        """
        result = run(tmp_path, text)
        assert "experimental" in gaps(result, "Gateway", "tls")["servers[0].port.protocol"]
        assert "tcp" in gaps(result, "VirtualService", "db")
        assert result.report.counts["not"] == 2


AP = """
apiVersion: security.istio.io/{version}
kind: AuthorizationPolicy
metadata: {{name: {name}, namespace: shop}}
spec:
{body}
"""
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  selector: {app: orders}
  ports: [{port: 80, targetPort: 8080}]
"""


def ap(body: str, name: str = "orders", version: str = "v1") -> str:
    return AP.format(version=version, name=name, body=textwrap.indent(textwrap.dedent(body), "  "))


def service_file(result: Migration, name: str = "orders") -> dict[str, Any]:
    return yaml.safe_load(result.files[f"traffic/shop/{name}.yaml"])["services"][0]


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


PA = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec:
  mtls: {mode: STRICT}
"""


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


class TestInput:
    """Bad documents are named one by one; the rest still migrates."""

    def test_bad_documents_each_get_a_message(self, tmp_path: Path) -> None:
        text = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: typo, namespace: shop}
        spec: {hostz: [a]}
        ---
        apiVersion: networking.istio.io/v2
        kind: Gateway
        metadata: {name: future, namespace: shop}
        spec: {}
        ---
        kind: Gateway
        metadata: {name: noversion}
        ---
        - just a list
        ---
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: ok, namespace: edge}
        spec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}
        ---
        key: [unclosed
        """
        result = run(tmp_path, text)
        messages = [u.message for u in result.report.unreadable]
        assert len(messages) == 5
        assert messages[0].startswith(
            f"{tmp_path / 'in.yaml'} (document 1): VirtualService shop/typo:"
        )
        assert "hostz" in messages[0]
        assert "networking.istio.io/v2 is not served" in messages[1]
        assert "apiVersion and kind are required" in messages[2]
        assert "not a Kubernetes object" in messages[3]
        assert "not valid YAML" in messages[4]
        assert result.report.counts == {
            "fully": 1,
            "partly": 0,
            "not": 0,
            "unreadable": 5,
            "input": 6,
        }
        assert "gateway-api/edge/gateway-ok.yaml" in result.files

    def test_folders_are_read_recursively_and_sorted(self, tmp_path: Path) -> None:
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "gw.yml").write_text(GATEWAY.format(version="v1"))
        (tmp_path / "a.yaml").write_text(
            vs("- route: [{destination: {host: web, port: {number: 1}}}]\n")
        )
        (tmp_path / "notes.txt").write_text("not yaml")
        result = migrate([tmp_path])
        assert result.report.counts["fully"] == 2


class TestCommand:
    """Exit codes: 0 all fully migrated, 1 anything less, 2 usage; output is deterministic."""

    def invoke(self, *args: str) -> Any:
        return CliRunner().invoke(app, ["migrate", "istio", *args])

    def test_exit_0_when_everything_migrates(self, tmp_path: Path) -> None:
        (tmp_path / "in.yaml").write_text(GATEWAY.format(version="v1"))
        result = self.invoke(str(tmp_path / "in.yaml"), "--out", str(tmp_path / "out"))
        assert result.exit_code == 0, result.output
        assert "1 objects: 1 fully migrated" in result.output

    def test_exit_1_and_usage_errors(self, tmp_path: Path) -> None:
        (tmp_path / "in.yaml").write_text("a: [\n")
        result = self.invoke(str(tmp_path / "in.yaml"), "--out", str(tmp_path / "out"))
        assert result.exit_code == 1
        assert "not valid YAML" in result.output and "Traceback" not in result.output
        assert (
            self.invoke(str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")).exit_code == 2
        )
        assert self.invoke(str(tmp_path / "in.yaml")).exit_code == 2  # --out is required
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "keep.txt").write_text("x")
        clobber = self.invoke(str(tmp_path / "in.yaml"), "--out", str(tmp_path / "mine"))
        assert clobber.exit_code == 2 and (tmp_path / "mine" / "keep.txt").exists()

    def test_same_input_same_bytes_and_rerun_replaces(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        for _ in range(2):
            assert self.invoke(str(EXAMPLES), "--out", str(out)).exit_code == 1
            first = {
                p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
            }
            assert first
        again = migrate([EXAMPLES], display=lambda p: p.relative_to(REPO).as_posix())
        assert (
            again.files
            == migrate([EXAMPLES], display=lambda p: p.relative_to(REPO).as_posix()).files
        )


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Migration, Path]:
    """The committed examples, migrated once and written to a folder."""
    out = tmp_path_factory.mktemp("examples") / "out"
    result = migrate([EXAMPLES], display=lambda p: p.relative_to(REPO).as_posix())
    write_outputs(result, out)
    return result, out


class TestExampleFolder:
    """The committed examples: every output validates, the report adds up, the stack plans."""

    def test_at_least_30_varied_objects_and_counts_add_up(
        self, migrated: tuple[Migration, Path]
    ) -> None:
        result, _ = migrated
        report = json.loads(result.files["report.json"])
        counts = report["counts"]
        documents = sum(
            1 for p in EXAMPLES.glob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d
        )
        assert counts["input"] == documents >= 30
        assert (
            counts["fully"] + counts["partly"] + counts["not"] + counts["unreadable"]
            == counts["input"]
        )
        assert len(report["objects"]) + len(report["unreadable"]) == counts["input"]
        assert {o["kind"] for o in report["objects"]} >= {
            "VirtualService",
            "DestinationRule",
            "Gateway",
            "ServiceEntry",
            "Sidecar",
            "AuthorizationPolicy",
            "PeerAuthentication",
            "RequestAuthentication",
        }
        assert {o["status"] for o in report["objects"]} == {"fully", "partly", "not"}
        assert all(o["notCarriedOver"] for o in report["objects"] if o["status"] != "fully")
        md = result.files["report.md"]
        assert f"{counts['input']} input objects: {counts['fully']} fully migrated" in md

    def test_gateway_api_objects_validate(self, migrated: tuple[Migration, Path]) -> None:
        result, _ = migrated
        found = objects(result, "gateway-api/")
        assert {o["kind"] for o in found.values()} == {
            "Gateway",
            "HTTPRoute",
            "GRPCRoute",
            "ReferenceGrant",
        }
        for name, obj in found.items():
            assert gateway_api_errors(obj) == [], name

    def test_traffic_folder_loads_and_its_cnps_validate(
        self, migrated: tuple[Migration, Path]
    ) -> None:
        _, out = migrated
        policies = load_policy_folder(out / "traffic", root=out)
        cnps = render_policies(policies)
        assert len(cnps) > len(policies.services)  # plus one default deny per namespace
        for cnp in cnps:
            assert cnp_errors(cnp) == [], cnp["metadata"]

    def test_a_stack_using_the_generated_folder_plans_cleanly(
        self, migrated: tuple[Migration, Path], tmp_path: Path, repo_tmp: Path
    ) -> None:
        from infra import plan as offline

        _, out = migrated
        # trafficPolicies must lie inside the repository: copy the folder under out/.
        traffic = repo_tmp / "traffic"
        shutil.copytree(out / "traffic", traffic)
        document = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
        for cluster in document["config"]["meshless:clusters"]:
            cluster["trafficPolicies"] = traffic.relative_to(REPO).as_posix()
        stack_file = tmp_path / "Pulumi.staging.yaml"
        stack_file.write_text(yaml.safe_dump(document), encoding="utf-8")
        code = offline.run("staging", stack_file=stack_file, out_dir=tmp_path / "plan")
        assert code == 0
        manifests = list((tmp_path / "plan" / "manifests").rglob("*.yaml"))
        assert any("bookinfo" in p.read_text() for p in manifests)


class TestOddInput:
    """Values Kubernetes or Gateway API would refuse are reported, not written, not a crash."""

    def test_invalid_labels_and_hostnames(self, tmp_path: Path) -> None:
        body = "selector: {matchLabels: {app: 'Foo Bar!'}}\nrules: [{to: [{operation: {ports: ['8080']}}]}]\n"
        text = (
            ap(body, name="weird")
            + "---"
            + GATEWAY.format(version="v1")
            + "---"
            + vs("- route: [{destination: {host: web, port: {number: 8080}}}]\n").replace(
                "hosts: [shop.example.com]", "hosts: ['shop.example.com:80', ok.example.com]"
            )
        )
        result = run(tmp_path, text)
        assert entry(result, "AuthorizationPolicy", "weird")["status"] == "not"
        assert "not a valid label value" in gaps(result, "AuthorizationPolicy", "weird")["selector"]
        assert not [n for n in result.files if n.startswith("traffic/")]
        route = objects(result, "gateway-api/shop/httproute-web.yaml")[
            "gateway-api/shop/httproute-web.yaml"
        ]
        assert route["spec"]["hostnames"] == ["ok.example.com"]
        assert "hosts" in gaps(result, "VirtualService", "web")


class TestVendoredSchemas:
    """The schemas checked against are the ones vendor/PROVENANCE.json records."""

    def test_a_changed_schema_is_refused(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from migrate import schemas

        copy = tmp_path / "vendor"
        (copy / "crd-schemas").mkdir(parents=True)
        (copy / "PROVENANCE.json").write_bytes((schemas.VENDOR / "PROVENANCE.json").read_bytes())
        (copy / "crd-schemas" / "istio-gateway_v1.json").write_text('{"type": "object"}')
        monkeypatch.setattr(schemas, "VENDOR", copy)
        schemas._validator.cache_clear()
        schemas._recorded.cache_clear()
        try:
            with pytest.raises(
                schemas.VendoredSchemaError, match=r"differs from vendor/PROVENANCE\.json"
            ):
                schemas.istio_errors("Gateway", {"spec": {}})
        finally:
            schemas._validator.cache_clear()
            schemas._recorded.cache_clear()
