"""Stack policies (AnalyzeStack): one Cilium per cluster, and what needs Cilium waits for it."""

from __future__ import annotations

EKS_RELEASE = "eks-main-cilium-release"
GKE_RELEASE = "gke-main-cilium-release"

# Removing a cluster's release legitimately upsets every policy that needs it.
RELEASE_DEPENDENTS = {
    "cluster-has-one-cilium-release",
    "eks-coredns-after-cilium",
    "network-policies-after-cilium",
    "l7-proxy-ready",
    "deploy-rehearsal",
}


def _names(violations) -> list[str]:
    return [v.urn.rsplit("::", 1)[-1] for v in violations]


def _add_release(stack, name: str, provider_of: str, parent: str = "eks-main-cilium") -> None:
    original = stack[EKS_RELEASE]
    stack.add(
        original["type"],
        name,
        dict(original["inputs"]),
        parent=stack.urn_of(parent),
        provider=stack[provider_of]["urn"],
    )


class TestOneCiliumPerCluster:
    """No release means no pod network; two releases overwrite each other's DaemonSets."""

    def test_cluster_without_release(self, gate, stack) -> None:
        stack.remove(EKS_RELEASE)
        findings = gate.run(stack)
        hits = findings.of("cluster-has-one-cilium-release")
        assert _names(hits) == ["eks-main-cluster"]
        assert "found 0 (none)" in hits[0].message
        assert {v.policy_name for v in findings.mandatory} <= RELEASE_DEPENDENTS

    def test_cluster_with_two_releases(self, gate, stack) -> None:
        _add_release(stack, "eks-main-cilium-again", "eks-main-k8s")
        hits = gate.run(stack).of("cluster-has-one-cilium-release")
        assert _names(hits) == ["eks-main-cluster"]
        assert "found 2" in hits[0].message and "'eks-main-cilium-again'" in hits[0].message

    def test_dataplane_v2_cluster_with_a_release(self, gate, stack) -> None:
        stack.to_dataplane_v2()
        _add_release(stack, "gke-main-cilium-release", "gke-main-k8s", parent="gke-main-cilium")
        hits = gate.run(stack).of("cluster-has-one-cilium-release")
        assert _names(hits) == ["gke-main-cluster"]
        assert "dataplane-v2" in hits[0].message

    def test_release_on_no_cluster_provider(self, gate, stack) -> None:
        stack.add("meshless:cilium:CiliumRelease", "stray", custom=False)
        _add_release(stack, "stray-release", "eks-main-k8s", parent="stray")
        del stack["stray-release"]["provider"]
        hits = gate.run(stack).of("cluster-has-one-cilium-release")
        assert _names(hits) == ["stray-release"]
        assert "not bound to any cluster" in hits[0].message

    def test_release_is_found_through_its_component_without_a_provider(self, gate, stack) -> None:
        """A release parented under the cluster component still belongs to that cluster."""
        del stack[EKS_RELEASE]["provider"]
        assert gate.run(stack).of("cluster-has-one-cilium-release") == []


class TestCoreDnsAfterCilium:
    """CoreDNS created before the agent runs has no network and the add-on times out."""

    def test_addon_without_dependency(self, gate, stack) -> None:
        stack["eks-main-coredns"]["dependencies"] = [stack.urn_of("eks-main-cluster")]
        hits = gate.run(stack).of("eks-coredns-after-cilium")
        assert _names(hits) == ["eks-main-coredns"]
        assert "depends_on=[release]" in hits[0].message

    def test_dependency_through_another_resource_counts(self, gate, stack) -> None:
        gate_resource = stack.add(
            "kubernetes:core/v1:ConfigMap",
            "cilium-ready",
            {"metadata": {"name": "cilium-ready"}},
            provider=stack.urn_of("eks-main-k8s"),
            deps=[stack.urn_of(EKS_RELEASE)],
        )
        stack["eks-main-coredns"]["dependencies"] = [gate_resource]
        assert gate.run(stack).of("eks-coredns-after-cilium") == []

    def test_dependency_on_the_release_component_counts(self, gate, stack) -> None:
        stack["eks-main-coredns"]["dependencies"] = [stack.urn_of("eks-main-cilium")]
        assert gate.run(stack).of("eks-coredns-after-cilium") == []


class TestNetworkPoliciesAfterCilium:
    """The cilium.io CRDs come from the operator: a policy applied first fails on a new cluster."""

    def test_policy_without_dependency(self, gate, stack) -> None:
        stack["eks-main-checkout-l7"]["dependencies"] = []
        hits = gate.run(stack).of("network-policies-after-cilium")
        assert _names(hits) == ["eks-main-checkout-l7"]
        assert "'eks-main-cilium-release'" in hits[0].message

    def test_namespaced_policy_on_dataplane_v2(self, gate, stack) -> None:
        stack.to_dataplane_v2()
        stack.add(
            "kubernetes:cilium.io/v2:CiliumNetworkPolicy",
            "dpv2-cnp",
            {"metadata": {"name": "deny"}, "spec": {"endpointSelector": {}}},
            provider=stack.urn_of("gke-main-k8s"),
        )
        hits = gate.run(stack).of("network-policies-after-cilium")
        assert _names(hits) == ["dpv2-cnp"]
        assert "not supported" in hits[0].message

    def test_clusterwide_policy_on_dataplane_v2_needs_the_flag(self, gate, stack) -> None:
        stack.to_dataplane_v2()
        stack.add(
            "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy",
            "dpv2-ccnp",
            {"metadata": {"name": "deny"}, "spec": {"endpointSelector": {}}},
            provider=stack.urn_of("gke-main-k8s"),
        )
        assert gate.run(stack).of("network-policies-after-cilium") == []
        stack.set("gke-main-cluster", "enableCiliumClusterwideNetworkPolicy", False)
        hits = gate.run(stack).of("network-policies-after-cilium")
        assert "enableCiliumClusterwideNetworkPolicy is false" in hits[0].message

    def test_policy_that_cannot_be_placed(self, gate, stack) -> None:
        del stack["eks-main-checkout-l7"]["provider"]
        hits = gate.run(stack).of("network-policies-after-cilium")
        assert _names(hits) == ["eks-main-checkout-l7"]
        assert "cannot be tied to a cluster" in hits[0].message


class TestL7ProxyReady:
    """An L7 rule without its proxy is not enforced; the cluster looks protected but is not."""

    def test_envoy_off_with_http_rules(self, gate, stack) -> None:
        stack.set(EKS_RELEASE, "values.envoy.enabled", False)
        hits = gate.run(stack).of("l7-proxy-ready")
        assert _names(hits) == [EKS_RELEASE]
        assert "envoy.enabled false" in hits[0].message and "http" in hits[0].message

    def test_l7_proxy_off_with_http_rules(self, gate, stack) -> None:
        stack.set(GKE_RELEASE, "values.l7Proxy", False)
        hits = gate.run(stack).of("l7-proxy-ready")
        assert _names(hits) == [GKE_RELEASE]
        assert "l7Proxy false" in hits[0].message

    def test_dns_rules_need_only_the_l7_proxy(self, gate, stack) -> None:
        rules = stack.inputs("eks-main-checkout-l7")["spec"]["ingress"][0]["toPorts"][0]
        rules["rules"] = {"dns": [{"matchPattern": "*.example.com"}]}
        stack.set(EKS_RELEASE, "values.envoy.enabled", False)
        assert gate.run(stack).of("l7-proxy-ready") == []
        stack.set(EKS_RELEASE, "values.l7Proxy", False)
        assert _names(gate.run(stack).of("l7-proxy-ready")) == [EKS_RELEASE]

    def test_no_l7_rules_needs_no_envoy(self, gate, stack) -> None:
        del stack.inputs("eks-main-checkout-l7")["spec"]["ingress"][0]["toPorts"][0]["rules"]
        stack.set(EKS_RELEASE, "values.envoy.enabled", False)
        assert gate.run(stack).of("l7-proxy-ready") == []

    def test_l7_rules_in_specs_list_count(self, gate, stack) -> None:
        policy = stack.inputs("eks-main-checkout-l7")
        policy["specs"] = [policy.pop("spec")]
        stack.set(EKS_RELEASE, "values.envoy.enabled", False)
        assert _names(gate.run(stack).of("l7-proxy-ready")) == [EKS_RELEASE]

    def test_l7_rules_on_dataplane_v2(self, gate, stack) -> None:
        stack.to_dataplane_v2()
        stack.add(
            "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy",
            "dpv2-l7",
            {"spec": stack.inputs("eks-main-checkout-l7")["spec"]},
            provider=stack.urn_of("gke-main-k8s"),
        )
        hits = gate.run(stack).of("l7-proxy-ready")
        assert _names(hits) == ["dpv2-l7"]
        assert "Dataplane V2" in hits[0].message


class TestCiliumNodeTaint:
    """Without the taint, pods land on a node before Cilium manages it and run unpoliced."""

    def test_node_group_without_taint(self, gate, stack) -> None:
        stack.set("eks-main-general", "taints", [])
        hits = gate.run(stack).of("cilium-node-taint")
        assert _names(hits) == ["eks-main-general"]
        assert "node.cilium.io/agent-not-ready=true:NoExecute" in hits[0].message

    def test_kubernetes_spelling_of_the_effect_passes(self, gate, stack) -> None:
        taint = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NoExecute"}
        stack.set("gke-main-general", "nodeConfig.taints", [taint])
        assert gate.run(stack).of("cilium-node-taint") == []

    def test_wrong_effect_fails(self, gate, stack) -> None:
        taint = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_SCHEDULE"}
        stack.set("gke-main-general", "nodeConfig.taints", [taint])
        assert _names(gate.run(stack).of("cilium-node-taint")) == ["gke-main-general"]

    def test_gke_default_pool_kept(self, gate, stack) -> None:
        stack.set("gke-main-cluster", "removeDefaultNodePool", False)
        hits = gate.run(stack).of("cilium-node-taint")
        assert _names(hits) == ["gke-main-cluster"]
        assert "default node pool" in hits[0].message

    def test_dataplane_v2_pools_need_no_taint(self, gate, stack) -> None:
        stack.to_dataplane_v2()
        stack.set("gke-main-general", "nodeConfig.taints", [])
        assert gate.run(stack).of("cilium-node-taint") == []

    def test_gke_default_pool_with_the_taint_passes(self, gate, stack) -> None:
        taint = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"}
        stack.set("gke-main-cluster", "removeDefaultNodePool", False)
        stack.set("gke-main-cluster", "nodeConfig.taints", [taint])
        assert gate.run(stack).of("cilium-node-taint") == []
