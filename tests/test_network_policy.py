"""Traffic policies as CiliumNetworkPolicy objects: valid for the CRD, right for each rule
kind, default deny with DNS per namespace, and created only after the Cilium release.

The schema is the Cilium 1.16 CNP CRD's (vendor/crd-schemas), checked the way
kubeconform does, with the CRD's own formats (cidr, idn-hostname) enforced too.
"""

from __future__ import annotations

import ipaddress
import json
import re
import textwrap
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pulumi
import pulumi_kubernetes as k8s

from components.network_policy import (
    CNP_API_VERSION,
    DEFAULT_DENY_NAME,
    KUBE_DNS,
    NAMESPACE_LABEL,
    NetworkPolicies,
    render_policies,
)
from components.traffic import load_policy_folder
from tests.recording import Recording

REPO = Path(__file__).resolve().parents[1]
CNP_SCHEMA = REPO / "vendor" / "crd-schemas" / "ciliumnetworkpolicy_v2.json"
_HOST = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_PORTS = [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]


@cache
def validator() -> jsonschema.Draft7Validator:
    formats = jsonschema.FormatChecker()
    formats.checks("cidr", raises=ValueError)(lambda value: bool(ipaddress.ip_network(value)))
    formats.checks("idn-hostname")(lambda value: bool(_HOST.fullmatch(value)))
    return jsonschema.Draft7Validator(json.loads(CNP_SCHEMA.read_text()), format_checker=formats)


def schema_errors(obj: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(obj)]


def render(tmp_path: Path, **files: str) -> dict[str, dict[str, Any]]:
    """``namespace/name`` -> spec of every rendered CNP (each also checked against the CRD)."""
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    objects = render_policies(load_policy_folder(tmp_path, root=tmp_path))
    for obj in objects:
        assert schema_errors(obj) == [], obj
    return {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o["spec"] for o in objects}


def service(name: str, body: str, namespace: str = "shop", ports: str = "[{port: 8080}]") -> str:
    head = f"services:\n  - name: {name}\n    namespace: {namespace}\n    ports: {ports}\n"
    return head + textwrap.indent(textwrap.dedent(body), "    ")


CLIENT = service("client", "ingress: [{from: [{entity: host}]}]\n")


class TestSchema:
    """Every generated CNP is valid for the CRD the API server will check it against."""

    def test_shop_examples(self) -> None:
        objects = render_policies(load_policy_folder(REPO / "traffic" / "shop"))
        assert [o["metadata"]["name"] for o in objects] == [
            DEFAULT_DENY_NAME,
            "checkout",
            "frontend",
            "payments",
        ]
        for obj in objects:
            assert obj["apiVersion"] == CNP_API_VERSION
            assert obj["kind"] == "CiliumNetworkPolicy"
            assert schema_errors(obj) == []

    def test_generated_127_services(self, tmp_path: Path, service_generator: ModuleType) -> None:
        service_generator.write(127, tmp_path / "services")
        policies = load_policy_folder(tmp_path / "services", root=tmp_path)
        assert policies.warnings == []
        objects = render_policies(policies)
        assert len(objects) == 127 + len(policies.namespaces)
        assert [name for obj in objects for name in schema_errors(obj)] == []

    def test_the_check_is_not_vacuous(self) -> None:
        obj = render_policies(load_policy_folder(REPO / "traffic" / "shop"))[1]
        port = obj["spec"]["ingress"][0]["toPorts"][0]
        port["rules"]["kafka"] = [{"topic": "orders"}]  # http and kafka in one port rule
        obj["spec"]["egress"][0]["toCIDRSet"] = [{"cidr": "10.0.0.0/33"}]
        found = schema_errors(obj)
        assert any("is valid under each of" in e for e in found), found
        assert any("is not a 'cidr'" in e for e in found), found


class TestDefaultDeny:
    """Each namespace with policies denies by default, except DNS and node probes."""

    def test_one_per_namespace_with_dns(self, tmp_path: Path) -> None:
        other = service("api", "ingress: [{from: [{service: client, namespace: shop}]}]\n", "ops")
        specs = render(tmp_path, client=CLIENT, other=other)
        assert [k for k in specs if k.endswith(DEFAULT_DENY_NAME)] == [
            f"ops/{DEFAULT_DENY_NAME}",
            f"shop/{DEFAULT_DENY_NAME}",
        ]
        deny = specs[f"shop/{DEFAULT_DENY_NAME}"]
        assert deny["endpointSelector"] == {}
        assert deny["enableDefaultDeny"] == {"ingress": True, "egress": True}
        assert deny["ingress"] == [{"fromEntities": ["host", "health"]}]
        assert deny["egress"] == [
            {
                "toEndpoints": [KUBE_DNS],
                "toPorts": [{"ports": DNS_PORTS, "rules": {"dns": [{"matchPattern": "*"}]}}],
            }
        ]
        assert KUBE_DNS["matchLabels"] == {
            NAMESPACE_LABEL: "kube-system",
            "k8s:k8s-app": "kube-dns",
        }


class TestRuleKinds:
    """Each kind of rule users write becomes the Cilium rule that enforces it."""

    def test_http(self, tmp_path: Path) -> None:
        body = """\
        ingress:
          - from: [{service: client}]
            http:
              - method: [GET, HEAD]
                pathPrefix: /api/v1/
                host: shop.example.com
                headers:
                  - name: X-Request-Id
                  - {name: X-Tenant, value: acme}
              - {method: POST, path: /api/v1/orders.json}
              - {pathRegex: "/items/[0-9]+"}
        """
        spec = render(tmp_path, api=service("api", body), client=CLIENT)["shop/api"]
        [rule] = spec["ingress"]
        assert rule["fromEndpoints"] == [{"matchLabels": {"app": "client"}}]
        [port] = rule["toPorts"]
        assert port["ports"] == [{"port": "8080", "protocol": "TCP"}]
        shared = {
            "path": "/api/v1/.*",
            "host": "shop.example.com",
            "headers": ["X-Request-Id"],
            "headerMatches": [{"name": "X-Tenant", "value": "acme"}],
        }
        assert port["rules"]["http"] == [
            {"method": "GET", **shared},
            {"method": "HEAD", **shared},
            {"method": "POST", "path": "/api/v1/orders\\.json(\\?.*)?"},
            {"path": "/items/[0-9]+"},
        ]

    def test_grpc(self, tmp_path: Path) -> None:
        body = """\
        ingress:
          - from: [{service: client}]
            grpc:
              - {service: shop.v1.Payments, methods: [Authorize, Refund]}
              - {service: grpc.health.v1.Health}
        """
        spec = render(tmp_path, api=service("api", body), client=CLIENT)["shop/api"]
        assert spec["ingress"][0]["toPorts"][0]["rules"]["http"] == [
            {"method": "POST", "path": "/shop\\.v1\\.Payments/Authorize"},
            {"method": "POST", "path": "/shop\\.v1\\.Payments/Refund"},
            {"method": "POST", "path": "/grpc\\.health\\.v1\\.Health/[^/]+"},
        ]

    def test_kafka(self, tmp_path: Path) -> None:
        body = """\
        ingress:
          - from: [{service: client}]
            kafka:
              - {role: produce, topic: orders, clientID: checkout}
              - {role: consume, topic: orders.dlq}
        """
        spec = render(tmp_path, kafka=service("kafka", body, ports="[{port: 9092}]"), c=CLIENT)
        [port] = spec["shop/kafka"]["ingress"][0]["toPorts"]
        assert port == {
            "ports": [{"port": "9092", "protocol": "TCP"}],
            "rules": {
                "kafka": [
                    {"role": "produce", "topic": "orders", "clientID": "checkout"},
                    {"role": "consume", "topic": "orders.dlq"},
                ]
            },
        }

    def test_fqdn_egress_gets_its_dns_lookup_rule(self, tmp_path: Path) -> None:
        body = """\
        egress:
          - to: [{fqdn: api.stripe.com}, {fqdnPattern: "*.s3.amazonaws.com"}]
            ports: [443]
        """
        spec = render(tmp_path, api=service("api", body))["shop/api"]
        assert spec["egress"] == [
            {
                "toFQDNs": [
                    {"matchName": "api.stripe.com"},
                    {"matchPattern": "*.s3.amazonaws.com"},
                ],
                "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
            },
            {
                "toEndpoints": [KUBE_DNS],
                "toPorts": [
                    {
                        "ports": DNS_PORTS,
                        "rules": {
                            "dns": [
                                {"matchName": "api.stripe.com"},
                                {"matchPattern": "*.s3.amazonaws.com"},
                            ]
                        },
                    }
                ],
            },
        ]

    def test_cidr_entities_and_dns_rules(self, tmp_path: Path) -> None:
        body = """\
        egress:
          - to:
              - {cidr: 198.51.100.0/24, except: [198.51.100.128/25]}
              - {entity: kube-apiserver}
            ports: [443]
          - to: [{cidr: 192.0.2.53/32}]
            dns: [{matchPattern: "*.corp.example"}]
        """
        spec = render(tmp_path, api=service("api", body))["shop/api"]
        https = {"toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}
        # Cilium refuses toCIDRSet and toEntities in one rule: one rule each, same ports.
        assert spec["egress"] == [
            {"toEntities": ["kube-apiserver"], **https},
            {"toCIDRSet": [{"cidr": "198.51.100.0/24", "except": ["198.51.100.128/25"]}], **https},
            {
                "toCIDRSet": [{"cidr": "192.0.2.53/32"}],
                "toPorts": [
                    {"ports": DNS_PORTS, "rules": {"dns": [{"matchPattern": "*.corp.example"}]}}
                ],
            },
        ]

    def test_mutual_authentication(self, tmp_path: Path) -> None:
        body = "ingress: [{from: [{service: client}], authentication: required}]\n"
        spec = render(tmp_path, api=service("api", body), client=CLIENT)["shop/api"]
        assert spec["ingress"][0]["authentication"] == {"mode": "required"}

    def test_callers_by_namespace_labels_and_entity(self, tmp_path: Path) -> None:
        body = """\
        ingress:
          - from:
              - {service: client}
              - {service: web, namespace: edge}
              - {namespace: monitoring, labels: {app: prometheus}}
              - {namespace: batch}
              - {entity: ingress}
            ports: [8080]
        """
        spec = render(tmp_path, api=service("api", body), client=CLIENT)["shop/api"]
        port = [{"ports": [{"port": "8080", "protocol": "TCP"}]}]
        assert spec["ingress"] == [
            {
                "fromEndpoints": [
                    {"matchLabels": {"app": "client"}},
                    {"matchLabels": {"app": "web", NAMESPACE_LABEL: "edge"}},
                    {"matchLabels": {"app": "prometheus", NAMESPACE_LABEL: "monitoring"}},
                    {"matchLabels": {NAMESPACE_LABEL: "batch"}},
                ],
                "toPorts": port,
            },
            {"fromEntities": ["ingress"], "toPorts": port},
        ]

    def test_explicit_egress_to_a_service_uses_its_ports(self, tmp_path: Path) -> None:
        ledger = service(
            "ledger", "ingress: [{from: [{service: client, namespace: shop}]}]\n", "finance"
        )
        client = service("client", "egress: [{to: [{service: ledger, namespace: finance}]}]\n")
        specs = render(tmp_path, ledger=ledger, client=client)
        derived, explicit = specs["shop/client"]["egress"]
        assert (
            derived
            == explicit
            == {
                "toEndpoints": [{"matchLabels": {"app": "ledger", NAMESPACE_LABEL: "finance"}}],
                "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
            }
        )

    def test_service_without_rules_gets_only_the_default_deny(self, tmp_path: Path) -> None:
        specs = render(tmp_path, batch=service("batch", "description: nightly job\n"))
        assert list(specs) == [f"shop/{DEFAULT_DENY_NAME}"]


class TestDerivedEgress:
    """A declared caller gets the egress half of its callee's rule (L3/L4; L7 at the callee)."""

    def test_across_namespaces(self, tmp_path: Path) -> None:
        body = """\
        selector: {app.kubernetes.io/name: ledger}
        ingress:
          - from: [{service: client, namespace: shop}]
            http: [{method: GET}]
        """
        specs = render(tmp_path, ledger=service("ledger", body, "finance"), client=CLIENT)
        assert specs["shop/client"]["egress"] == [
            {
                "toEndpoints": [
                    {
                        "matchLabels": {
                            "app.kubernetes.io/name": "ledger",
                            NAMESPACE_LABEL: "finance",
                        }
                    }
                ],
                "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
            }
        ]
        assert specs["finance/ledger"]["endpointSelector"] == {
            "matchLabels": {"app.kubernetes.io/name": "ledger"}
        }


def _policies_after_a_release() -> NetworkPolicies:
    """The shop's policies on a provider, after that provider's Cilium release."""
    provider = k8s.Provider("stg-eks", kubeconfig="{}")
    release = k8s.helm.v3.Release(
        "stg-eks-cilium-release",
        k8s.helm.v3.ReleaseArgs(chart="cilium", version="1.16.19", namespace="kube-system"),
        opts=pulumi.ResourceOptions(provider=provider),
    )
    policies = load_policy_folder(REPO / "traffic" / "shop")
    return NetworkPolicies("stg-eks-policies", policies, provider, release)


class TestComponentWaitsForCilium:
    """Every CNP depends on the Cilium release: its operator installs the CRD."""

    def test_every_policy_depends_on_the_release(self, record: Callable[..., Recording]) -> None:
        built: list[NetworkPolicies] = []
        recording = record(lambda: built.append(_policies_after_a_release()))
        (component,) = built
        assert component.names == [
            "shop/checkout",
            "shop/frontend",
            "shop/meshless-default-deny",
            "shop/payments",
        ]
        (release,) = recording.of_type("kubernetes:helm.sh/v3:Release")
        (provider,) = recording.of_type("pulumi:providers:kubernetes")
        (registered,) = recording.of_type("meshless:cilium:NetworkPolicies")
        policies = recording.of_type("kubernetes:cilium.io/v2:CiliumNetworkPolicy")
        assert len(policies) == 4
        for policy in policies:
            assert release.urn in policy.dependencies, policy.urn
            assert policy.parent == registered.urn, policy.urn
            assert policy.provider == f"{provider.urn}::{provider.id}", policy.urn
        assert registered.outputs == {"policies": component.names, "count": 4}
