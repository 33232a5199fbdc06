"""`meshless migrate istio`: VirtualServices and Gateways to Gateway API routes, and every
route field that cannot carry over reported, not dropped."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.migrate_support import (
    GATEWAY,
    entry,
    gaps,
    objects,
    route_rules,
    run,
    vs,
)


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
