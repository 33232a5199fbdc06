"""prod-resources-protected, through the pack's gRPC server with `protect` as the engine sends it.

The gate hands each resource's `protect` to the pack in AnalyzeRequest.options, exactly where
the engine puts it during `pulumi preview`; the policy reads ResourceValidationArgs.opts.
"""

from __future__ import annotations

import pytest

POLICY = "prod-resources-protected"


class TestProdProtection:
    """In prod, nothing whose deletion takes the cluster or its data plane down goes unprotected."""

    @pytest.mark.parametrize(
        ("resource", "words"),
        [
            ("eks-main-cluster", ("aws:eks/cluster:Cluster 'eks-main-cluster'", "the cluster")),
            ("gke-main-cluster", ("gcp:container/cluster:Cluster",)),
            ("eks-main-general", ("node group",)),
            ("gke-main-general", ("node pool",)),
            ("eks-main-cilium-release", ("the Cilium release", "every Service")),
            ("gke-main-cilium-release", ("the Cilium release",)),
        ],
    )
    def test_missing_protect_is_a_mandatory_violation(self, gate, stack, resource, words) -> None:
        stack.protect(resource, on=False)
        findings = gate.run(stack)
        hits = findings.of(POLICY)
        assert [v.urn for v in hits] == [stack.urn_of(resource)], findings.text
        assert hits[0].enforcement_level == "mandatory"
        for word in ("not protected in environment prod", "protect: true", *words):
            assert word in hits[0].message
        assert {v.policy_name for v in findings.mandatory} == {POLICY}

    def test_kms_key_without_protect_is_reported(self, gate, stack) -> None:
        stack.add("aws:kms/key:Key", "eks-main-secrets-key", {"enableKeyRotation": True})
        hits = gate.run(stack).of(POLICY)
        assert [v.urn for v in hits] == [stack.urn_of("eks-main-secrets-key")]
        assert "Secrets" in hits[0].message
        stack.protect("eks-main-secrets-key")
        assert gate.run(stack).of(POLICY) == []

    def test_other_releases_and_staging_are_not_checked(self, gate, stack) -> None:
        stack.add("kubernetes:helm.sh/v3:Release", "metrics", {"chart": "metrics-server"})
        assert gate.run(stack).of(POLICY) == []
        stack.protect("eks-main-cluster", on=False)
        staging = gate.run(stack, "staging")
        assert staging.of(POLICY) == []
