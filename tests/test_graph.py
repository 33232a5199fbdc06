"""The call graph: who may call whom, read from the planned CiliumNetworkPolicies, drawn in
Mermaid and parsed by Mermaid 11's own parser."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from components.network_policy import render_policies
from components.traffic import load_policy_folder
from infra.callgraph import call_graphs, l7_summary
from infra.graph import MAX_EDGES, MAX_SERVICES, render_mermaid

REPO_TRAFFIC = "traffic/shop"
PREFIX = "urn:pulumi:prod::meshless::"
Parse = Callable[[list[str]], list[dict[str, Any]]]


def cluster_resources(cluster: str, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A cluster component and its CNP objects, linked by parent like the plan's export."""
    comp = f"{PREFIX}meshless:aws:EksCluster::{cluster}"
    out = [{"urn": comp, "type": "meshless:aws:EksCluster", "custom": False}]
    for obj in objects:
        name = f"{cluster}-{obj['metadata']['namespace']}-{obj['metadata']['name']}"
        out.append(
            {
                "urn": f"{PREFIX}meshless:aws:EksCluster$kubernetes:cilium.io/v2:"
                f"CiliumNetworkPolicy::{name}",
                "type": "kubernetes:cilium.io/v2:CiliumNetworkPolicy",
                "custom": True,
                "parent": comp,
                "inputs": obj,
            }
        )
    return out


@pytest.fixture(scope="module")
def shop() -> list[dict[str, Any]]:
    from infra.program import REPO_ROOT

    return render_policies(load_policy_folder(REPO_ROOT / REPO_TRAFFIC))


def edges_of(text: str) -> list[tuple[str, str, str, str]]:
    return re.findall(r"^\s+(\w+) (-->|-\.->)\|\"([^\"]*)\"\| (\w+)$", text, re.M)


def many_services(n: int, namespaces: int, *, fqdns: bool = False) -> list[dict[str, Any]]:
    """``n`` services spread over ``namespaces``; each is called by the next service and by
    one in the namespace ``i * 7`` further on (deterministic), on HTTP 8080; with ``fqdns``
    each also calls a host of its own."""
    objects = []
    for i in range(n):
        caller = (i + 1) % n, (i * 7 + 3) % n
        objects.append(
            {
                "metadata": {"name": f"s{i}", "namespace": f"ns{i % namespaces}"},
                "spec": {
                    "endpointSelector": {"matchLabels": {"app": f"s{i}"}},
                    "ingress": [
                        {
                            "fromEndpoints": [
                                {
                                    "matchLabels": {
                                        "app": f"s{c}",
                                        "k8s:io.kubernetes.pod.namespace": f"ns{c % namespaces}",
                                    }
                                }
                                for c in caller
                            ],
                            "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
                        }
                    ],
                    "egress": [{"toFQDNs": [{"matchName": f"api{i}.example.com"}]}]
                    if fqdns
                    else [],
                },
            }
        )
    return objects


class TestWhoMayCallWhom:
    """The shop's graph says what the policies allow, not what the bullets already say."""

    def test_shop_edges(self, shop: list[dict[str, Any]]) -> None:
        graph = call_graphs(cluster_resources("eks-a", shop))["eks-a"]
        found = {(e.src, e.dst): e.label for e in graph}
        assert found[(("entity", "ingress"), ("svc", "shop", "frontend"))].startswith(
            "8080 GET,HEAD /*"
        )
        checkout = found[(("svc", "shop", "frontend"), ("svc", "shop", "checkout"))]
        assert "GET /api/v1/cart/*" in checkout and "POST /api/v1/orders +headers" in checkout
        assert (
            found[(("svc", "shop", "checkout"), ("svc", "shop", "payments"))]
            == "9090 gRPC Payments/{Authorize,Capture,Refund}"
        )
        assert found[(("svc", "shop", "payments"), ("fqdn", "api.stripe.com"))] == "443"
        assert found[(("svc", "shop", "payments"), ("cidr", "198.51.100.0/24"))] == "443"
        prometheus = ("sel", "monitoring", "app.kubernetes.io/name=prometheus")
        assert found[(prometheus, ("svc", "shop", "payments"))] == "9102 GET /metrics"
        # The caller's derived egress and the DNS lookups are not drawn a second time.
        assert len(found) == 6

    def test_services_grouped_by_namespace(self, shop: list[dict[str, Any]]) -> None:
        text = render_mermaid(cluster_resources("eks-a", shop))
        block = re.search(r'subgraph \w+\["shop"\]\n(.*?)\n\s+end', text, re.S)
        assert block and all(n in block.group(1) for n in ("frontend", "checkout", "payments"))

    def test_clusters_with_the_same_policies_share_one_picture(
        self, shop: list[dict[str, Any]]
    ) -> None:
        same = render_mermaid(cluster_resources("a", shop) + cluster_resources("b", shop))
        assert "subgraph g_" not in same and len(edges_of(same)) == 6
        other = [o for o in shop if o["metadata"]["name"] != "payments"]
        differ = render_mermaid(cluster_resources("a", shop) + cluster_resources("b", other))
        assert '["cluster a"]' in differ and '["cluster b"]' in differ

    @pytest.mark.parametrize(
        ("rules", "expected"),
        [
            ({"http": [{"method": "GET", "path": "/api/v1/cart/.*"}]}, ["GET /api/v1/cart/*"]),
            ({"http": [{"method": "POST", "path": r"/a\.b(\?.*)?"}]}, ["POST /a.b"]),
            ({"http": [{"method": "POST", "path": r"/pkg\.Svc/[^/]+"}]}, ["gRPC Svc/*"]),
            ({"http": [{"path": "/x/[0-9]+"}]}, ["* ~/x/[0-9]+"]),
            ({"kafka": [{"role": "produce", "topic": "orders"}]}, ["Kafka produce orders"]),
        ],
    )
    def test_short_l7_forms(self, rules: dict[str, Any], expected: list[str]) -> None:
        assert l7_summary(rules) == expected


class TestCompare:
    """With a base plan, added arrows are green and removed ones red and dashed."""

    def test_added_and_removed_edges_are_styled(self, shop: list[dict[str, Any]]) -> None:
        base = [o for o in shop if o["metadata"]["name"] != "payments"]
        text = render_mermaid(cluster_resources("a", shop), base=cluster_resources("a", base))
        edges = edges_of(text)
        styles = dict(re.findall(r"^\s+linkStyle (\d+) (\S+)", text, re.M))
        added = {int(i) for i, s in styles.items() if "#1a7f37" in s}
        removed = {int(i) for i, s in styles.items() if "#cf222e" in s}
        by_index = {i: e for i, e in enumerate(edges)}
        assert {by_index[i][3] for i in added} >= {"svc_shop_payments", "fqdn_api_stripe_com"}
        assert all(by_index[i][1] == "-.->" for i in removed) and removed
        # payments was no declared service in the base: checkout's L3/L4 egress to its pods.
        assert any(by_index[i][3] == "sel_shop_app_payments" for i in removed)

    def test_no_base_no_colours(self, shop: list[dict[str, Any]]) -> None:
        assert "linkStyle" not in render_mermaid(cluster_resources("a", shop))


class TestScale:
    """Large sets collapse to one node per namespace with counts."""

    def test_127_services_collapse(self, tmp_path, service_generator) -> None:
        service_generator.write(127, tmp_path)
        objects = render_policies(load_policy_folder(tmp_path))
        text = render_mermaid(cluster_resources("prod", objects))
        assert "svc_team" not in text  # no single service is drawn
        counts = re.findall(r'nsgroup_(team_\d+)\["team-\d+<br/>(\d+) services"\]', text)
        assert sum(int(n) for _, n in counts) == 127 and len(counts) == 8
        assert all(int(n) <= 16 for _, n in counts)
        assert re.search(r'\|"\d+ calls?"\|', text)
        assert len(text) < 50_000  # Mermaid's default maxTextSize

    def test_thousands_stay_inside_mermaids_limits(self) -> None:
        text = render_mermaid(cluster_resources("a", many_services(1500, 100)))
        assert text.count("-->") <= MAX_EDGES and len(text) < 50_000
        assert re.search(r'more\["80 more namespaces<br/>1200 services"\]', text), text[:2000]
        assert "more arrows" not in text
        hosts = render_mermaid(cluster_resources("a", many_services(1500, 100, fqdns=True)))
        assert hosts.count("-->") == MAX_EDGES and len(hosts) < 50_000
        assert re.search(r'\["\d+ more arrows \(\d+ calls\) not drawn"\]', hosts)

    def test_small_sets_stay_per_service(self, shop: list[dict[str, Any]]) -> None:
        assert len({o["metadata"]["name"] for o in shop}) < MAX_SERVICES
        assert "nsgroup_" not in render_mermaid(cluster_resources("a", shop))


class TestMermaidParses:
    """GitHub draws these with Mermaid 11: its parser must accept every one of them."""

    def test_graphs_parse_and_broken_ones_do_not(
        self, shop: list[dict[str, Any]], tmp_path, service_generator, mermaid_parse: Parse
    ) -> None:
        service_generator.write(127, tmp_path)
        big = render_policies(load_policy_folder(tmp_path))
        base = [o for o in shop if o["metadata"]["name"] != "payments"]
        awkward = [
            {
                "metadata": {"name": "odd", "namespace": "x"},
                "spec": {
                    "endpointSelector": {"matchLabels": {"app": "odd"}},
                    "ingress": [
                        {
                            "fromEndpoints": [{"matchLabels": {"a": 'q"<b>|&{x}'}}],
                            "toPorts": [
                                {
                                    "ports": [{"port": "80", "protocol": "TCP"}],
                                    "rules": {"http": [{"path": '/[a"|]{2}<x>'}]},
                                }
                            ],
                        }
                    ],
                },
            }
        ]
        good = [
            render_mermaid(cluster_resources("a", shop)),
            render_mermaid(cluster_resources("a", shop), base=cluster_resources("a", base)),
            render_mermaid(cluster_resources("a", shop) + cluster_resources("b", base)),
            render_mermaid(cluster_resources("a", big)),
            render_mermaid(cluster_resources("a", awkward)),
            render_mermaid(cluster_resources("a", many_services(1500, 100, fqdns=True))),
            render_mermaid([]),
        ]
        broken = [
            good[0].replace('"]:::svc', "]:::svc", 1),  # an unclosed label
            good[1] + "    linkStyle 99 stroke:red\n",  # a style for an edge that is not there
        ]
        results = mermaid_parse(good + broken)
        assert all(r["ok"] for r in results[: len(good)]), results
        assert not any(r["ok"] for r in results[len(good) :]), results
