"""The Mermaid picture of a plan: clusters → Cilium release → network policies."""

from __future__ import annotations

import re
from typing import Any

from infra.graph import GROUP_OVER, MAX_NAMESPACES, render_mermaid

PREFIX = "urn:pulumi:prod::meshless::"
NODE_DEF = re.compile(r'^    ([A-Za-z][A-Za-z0-9_]*)\["([^"\[\]]*)"\](?::::(\w+))?$')
EDGE = re.compile(r"^    ([A-Za-z][A-Za-z0-9_]*) --> ([A-Za-z][A-Za-z0-9_]*)$")


def res(
    type_chain: str,
    name: str,
    inputs: dict[str, Any] | None = None,
    *,
    parent: str | None = None,
    provider: str | None = None,
    deps: list[str] | None = None,
    custom: bool = True,
) -> dict[str, Any]:
    return {
        "urn": f"{PREFIX}{type_chain}::{name}",
        "type": type_chain.rsplit("$", 1)[-1],
        "custom": custom,
        "parent": parent,
        "provider": provider,
        "dependencies": deps or [],
        "inputs": inputs or {},
        "outputs": {},
        "id": name if custom else None,
    }


def cnp(name: str, namespace: str, parent: str, release: str) -> dict[str, Any]:
    return res(
        "meshless:cilium:NetworkPolicies$kubernetes:cilium.io/v2:CiliumNetworkPolicy",
        f"{namespace}-{name}",
        {"metadata": {"name": name, "namespace": namespace}, "spec": {}},
        parent=parent,
        deps=[release],
    )


def stack_with(cloud: str, name: str, policies: dict[str, int]) -> list[dict[str, Any]]:
    """A cluster component, its provider, a Cilium release and `policies` CNPs per namespace."""
    comp_type, custom_type = {
        "eks": ("meshless:aws:EksCluster", "aws:eks/cluster:Cluster"),
        "gke": ("meshless:gcp:GkeCluster", "gcp:container/cluster:Cluster"),
    }[cloud]
    comp = res(comp_type, name, custom=False)
    cluster = res(f"{comp_type}${custom_type}", f"{name}-cluster", parent=comp["urn"])
    provider = res(
        f"{comp_type}$pulumi:providers:kubernetes",
        f"{name}-k8s",
        parent=comp["urn"],
        deps=[cluster["urn"]],
    )
    rel_comp = res("meshless:cilium:CiliumRelease", f"{name}-cilium", custom=False)
    helm = res(
        "meshless:cilium:CiliumRelease$kubernetes:helm.sh/v3:Release",
        f"{name}-cilium",
        {"chart": "cilium", "version": "1.16.5", "namespace": "kube-system"},
        parent=rel_comp["urn"],
        provider=f"{provider['urn']}::04da6b54-80e4-46f7-96ec-b56ff0331ba9",
    )
    pols = res("meshless:cilium:NetworkPolicies", f"{name}-policies", custom=False)
    out = [comp, cluster, provider, rel_comp, helm, pols]
    for ns, count in policies.items():
        out += [cnp(f"p{i}", ns, pols["urn"], helm["urn"]) for i in range(count)]
    return out


def parse(text: str) -> tuple[dict[str, tuple[str, str | None]], list[tuple[str, str]]]:
    """A strict reading of the subset of Mermaid the renderer emits."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes: dict[str, tuple[str, str | None]] = {}
    edges: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line.startswith("    classDef "):
            continue
        if m := NODE_DEF.match(line):
            assert m.group(1) not in nodes, f"node defined twice: {line}"
            nodes[m.group(1)] = (m.group(2), m.group(3))
        elif m := EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        else:
            raise AssertionError(f"unexpected Mermaid line: {line!r}")
    for a, b in edges:
        assert a in nodes and b in nodes, f"edge to an undefined node: {a} --> {b}"
    return nodes, edges


def node_by_label(nodes: dict[str, tuple[str, str | None]], fragment: str) -> str:
    matches = [n for n, (label, _) in nodes.items() if fragment in label]
    assert len(matches) == 1, f"{fragment!r} matched {matches}"
    return matches[0]


class TestShape:
    """Each cluster leads to its own release, and each release to its own policies."""

    def test_two_clusters(self) -> None:
        resources = stack_with("eks", "prd-eks", {"shop": 2}) + stack_with(
            "gke", "prd-gke", {"payments": 1}
        )
        nodes, edges = parse(render_mermaid(resources))
        eks = node_by_label(nodes, "EKS prd-eks")
        gke = node_by_label(nodes, "GKE prd-gke")
        eks_rel = node_by_label(nodes, "prd-eks-cilium")
        gke_rel = node_by_label(nodes, "prd-gke-cilium")
        assert (eks, eks_rel) in edges and (gke, gke_rel) in edges
        assert (eks, gke_rel) not in edges
        assert (eks_rel, node_by_label(nodes, "shop/p0")) in edges
        assert (gke_rel, node_by_label(nodes, "payments/p0")) in edges
        assert nodes[eks][1] == "cluster" and nodes[eks_rel][1] == "release"
        assert "Helm cilium 1.16.5" in nodes[eks_rel][0]

    def test_bare_cluster_custom_is_not_drawn_twice(self) -> None:
        nodes, _ = parse(render_mermaid(stack_with("eks", "prd-eks", {})))
        assert [label for label, cls in nodes.values() if cls == "cluster"] == ["EKS prd-eks"]

    def test_clusterwide_policy_on_dataplane_v2_hangs_off_the_cluster(self) -> None:
        comp = res("meshless:gcp:GkeCluster", "dpv2", custom=False)
        cluster = res(
            "meshless:gcp:GkeCluster$gcp:container/cluster:Cluster", "dpv2-c", parent=comp["urn"]
        )
        ccnp = res(
            "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy",
            "deny-all",
            {"metadata": {"name": "deny-all"}},
            deps=[cluster["urn"]],
        )
        nodes, edges = parse(render_mermaid([comp, cluster, ccnp]))
        gke = node_by_label(nodes, "GKE dpv2")
        assert (gke, node_by_label(nodes, "(cluster-wide)/deny-all")) in edges

    def test_unlinked_release_is_shown_not_dropped(self) -> None:
        helm = res("kubernetes:helm.sh/v3:Release", "stray", {"chart": "cilium"})
        nodes, edges = parse(render_mermaid([helm]))
        orphan = node_by_label(nodes, "not linked to a cluster")
        assert (orphan, node_by_label(nodes, "stray")) in edges

    def test_empty_plan(self) -> None:
        nodes, edges = parse(render_mermaid([]))
        assert edges == [] and len(nodes) == 1


class TestScale:
    """1,270 policies must stay a picture a person can read on GitHub."""

    def test_many_policies_are_grouped_per_namespace(self) -> None:
        per_ns = {f"team-{i:02d}": 40 for i in range(30)}
        per_ns.update({"tiny-a": 2, "tiny-b": GROUP_OVER})
        total = sum(per_ns.values()) + 65
        per_ns["team-29"] += 65
        assert total == 1270
        resources = stack_with("gke", "prd-gke", per_ns)
        text = render_mermaid(resources)
        nodes, edges = parse(text)
        policy_nodes = [label for label, cls in nodes.values() if cls == "policy"]
        assert len(policy_nodes) <= MAX_NAMESPACES + 1
        assert len(text) < 20_000 and len(edges) < 100
        counted = 0
        for label in policy_nodes:
            if m := re.search(r"(\d+) policies$", label):
                counted += int(m.group(1))
            else:
                counted += 1
        assert counted == 1270
        assert any(label.startswith("+") and "more namespaces" in label for label in policy_nodes)

    def test_small_namespaces_list_policies_by_name(self) -> None:
        nodes, _ = parse(render_mermaid(stack_with("eks", "e", {"ns": GROUP_OVER})))
        assert {label for label, cls in nodes.values() if cls == "policy"} == {
            f"ns/p{i}" for i in range(GROUP_OVER)
        }


class TestIds:
    """Node ids are Mermaid-safe and unique whatever the resource names contain."""

    def test_awkward_names(self) -> None:
        resources = stack_with("eks", 'we"ird [name] end', {"a-b.c": 1, "a_b_c": 1})
        text = render_mermaid(resources)
        nodes, _ = parse(text)
        assert len(nodes) == len(set(nodes))
        labels = [label for label, _ in nodes.values()]
        assert any("we#quot;ird #91;name#93; end" in label for label in labels)
        assert not any(n == "end" for n in nodes)

    def test_deterministic(self) -> None:
        resources = stack_with("eks", "e", {"x": 5, "y": 1})
        assert render_mermaid(resources) == render_mermaid(list(reversed(resources)))
