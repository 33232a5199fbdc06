"""Preview's unknown values: literal-only values fail, computed ones are reported, none pass.

During `pulumi preview` the engine sends values it cannot know yet as sentinel strings. The
SDK would turn a validator's access to one into an advisory "can't run policy" note, so a
tag-only image hidden behind an unknown could slip through a mandatory gate. These cases
prove it does not, and that nothing surfaces as a gRPC error.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.export_format import SECRET_SIG, SIG_KEY, UNKNOWN_SENTINEL

# The Pulumi engine's unknown sentinels (pulumi_policy/proxy.py).
UNKNOWN = UNKNOWN_SENTINEL
UNKNOWN_BOOL = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
UNKNOWN_NUMBER = "3eeb2bf0-c639-47a8-9e75-3b44932eb421"
UNKNOWN_ARRAY = "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2"
UNKNOWN_OBJECT = "dd056dcd-154b-4c76-9bd3-c8f88648b5ff"

EKS_RELEASE = "eks-main-cilium-release"
GKE_RELEASE = "gke-main-cilium-release"

# (policy, resource, path, sentinel): a literal-only value unknown during preview must fail.
LITERAL_CASES: list[tuple[str, str, str, str]] = [
    ("cilium-images-digest-pinned", EKS_RELEASE, "values.image.digest", UNKNOWN),
    ("cilium-images-digest-pinned", EKS_RELEASE, "values.envoy.image", UNKNOWN_OBJECT),
    ("cilium-images-digest-pinned", EKS_RELEASE, "values.eni.enabled", UNKNOWN_BOOL),
    ("cilium-images-digest-pinned", EKS_RELEASE, "values", UNKNOWN_OBJECT),
    ("cilium-chart-version-exact", EKS_RELEASE, "version", UNKNOWN),
    ("cilium-digests-match-catalog", EKS_RELEASE, "version", UNKNOWN),
    ("kube-proxy-replacement-strict", EKS_RELEASE, "values.kubeProxyReplacement", UNKNOWN_BOOL),
    ("kube-proxy-replacement-strict", GKE_RELEASE, "values.k8sServicePort", UNKNOWN_NUMBER),
    ("eks-no-conflicting-addons", "eks-main-coredns", "addonName", UNKNOWN),
    ("eks-no-bootstrap-addons", "eks-main-cluster", "bootstrapSelfManagedAddons", UNKNOWN_BOOL),
    (
        "workload-images-digest-pinned",
        "eks-main-checkout",
        "spec.template.spec.containers",
        UNKNOWN_ARRAY,
    ),
    ("hubble-relay-enabled", GKE_RELEASE, "values.hubble.relay.enabled", UNKNOWN_BOOL),
    ("helm-release-fails-safely", EKS_RELEASE, "atomic", UNKNOWN_BOOL),
    ("gke-mode-stated", "gke-main-cluster", "datapathProvider", UNKNOWN),
    ("cluster-control-plane-logging", "eks-main-cluster", "enabledClusterLogTypes", UNKNOWN_ARRAY),
    ("cluster-deletion-protection", "eks-main-cluster", "deletionProtection", UNKNOWN_BOOL),
    ("cilium-node-taint", "eks-main-general", "taints", UNKNOWN_ARRAY),
]


@pytest.mark.parametrize("case", LITERAL_CASES, ids=lambda c: f"{c[0]}:{c[2]}")
def test_unknown_literal_value_is_a_mandatory_violation(gate, stack, case) -> None:
    policy, resource, path, sentinel = case
    stack.set(resource, path, sentinel)
    findings = gate.run(stack)
    hits = [v for v in findings.of(policy) if v.enforcement_level == "mandatory"]
    assert hits, f"{policy} let an unknown {path} pass:\n{findings.text}"
    assert any("unknown" in v.message for v in hits), findings.text
    assert not any("can't run policy" in v.message for v in findings)


# (resource, path, owning policy): computed from another resource, reported as unverifiable.
COMPUTED_CASES: list[tuple[str, str, str]] = [
    (EKS_RELEASE, "values.k8sServiceHost", "kube-proxy-replacement-strict"),
    ("eks-main-cluster", "encryptionConfig.provider.keyArn", "cluster-secrets-encryption"),
    ("eks-main-cluster", "vpcConfig.publicAccessCidrs", "cluster-api-endpoint-restricted"),
    ("gke-main-cluster", "workloadIdentityConfig.workloadPool", "gke-workload-identity"),
    ("gke-main-cluster", "databaseEncryption.keyName", "cluster-secrets-encryption"),
]


@pytest.mark.parametrize("case", COMPUTED_CASES, ids=lambda c: c[1])
def test_unknown_computed_value_is_reported_not_verifiable(gate, stack, case) -> None:
    resource, path, owner = case
    stack.set(resource, path, UNKNOWN)
    findings = gate.run(stack)
    assert findings.mandatory == [], findings.text
    notes = findings.of("preview-unverifiable-values")
    assert len(notes) == 1, findings.text
    note = notes[0]
    assert note.enforcement_level == "advisory"
    assert note.urn == stack.urn_of(resource)
    assert path in note.message and f"policy '{owner}'" in note.message


def test_unknown_element_of_a_cidr_list_is_reported(gate, stack) -> None:
    blocks = [{"cidrBlock": UNKNOWN, "displayName": "nat"}, {"cidrBlock": "0.0.0.0/0"}]
    stack.set("gke-main-cluster", "masterAuthorizedNetworksConfig.cidrBlocks", blocks)
    findings = gate.run(stack)
    note = findings.of("preview-unverifiable-values")
    assert len(note) == 1
    assert "masterAuthorizedNetworksConfig.cidrBlocks[0].cidrBlock is computed" in note[0].message
    # The known element is still judged.
    assert "0.0.0.0/0" in findings.of("cluster-api-endpoint-restricted")[0].message


def test_unverifiable_stays_advisory_even_if_configured_with_everything_else(gate, stack) -> None:
    """The shipped configs keep it advisory: a new stack's first preview must not block."""
    stack.set(EKS_RELEASE, "values.k8sServiceHost", UNKNOWN)
    for env in ("staging", "prod"):
        notes = gate.run(stack, env).of("preview-unverifiable-values")
        assert [n.enforcement_level for n in notes] == ["advisory"]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.sampled_from(
        ["", "auto", "true", "strict", UNKNOWN, UNKNOWN_OBJECT, "sha256:x", "0.0.0.0/0"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "image",
                    "digest",
                    "enabled",
                    "relay",
                    "rules",
                    "http",
                    "spec",
                    "ingress",
                    "toPorts",
                    "useDigest",
                    "containers",
                    "cidrBlock",
                ]
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=12,
)
TARGETS = [
    (EKS_RELEASE, "values"),
    (EKS_RELEASE, "values.hubble"),
    ("eks-main-cluster", "vpcConfig"),
    ("gke-main-cluster", "masterAuthorizedNetworksConfig"),
    ("eks-main-checkout-l7", "spec"),
    ("eks-main-checkout", "spec.template"),
    ("gke-main-general", "nodeConfig"),
]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(target=st.sampled_from(TARGETS), value=JSON)
def test_odd_input_never_breaks_the_pack(gate, stack, target: tuple[str, str], value: Any) -> None:
    """A validator that raises becomes a gRPC error and aborts the preview: never allowed.
    (A policy the pack itself could not evaluate would say 'could not evaluate'.)"""
    fresh = stack.copy()  # hypothesis reuses the function-scoped fixture across examples
    resource, path = target
    fresh.set(resource, path, value)
    findings = gate.run(fresh)  # raises GateError on any gRPC error
    assert not any("could not evaluate" in v.message for v in findings), findings.text


SECRET_SIG_KEY = SIG_KEY


class TestExportSecrets:
    """A `pulumi stack export` holds secrets as plaintext (--show-secrets) or ciphertext."""

    def test_plaintext_secret_is_judged_by_its_value(self, gate, stack) -> None:
        secret = {SECRET_SIG_KEY: SECRET_SIG, "plaintext": '"strict"'}
        stack.set(EKS_RELEASE, "values.kubeProxyReplacement", secret)
        hits = gate.run(stack).of("kube-proxy-replacement-strict")
        assert hits and '"strict"' in hits[0].message

    def test_ciphertext_is_not_verifiable_and_fails_a_literal_policy(self, gate, stack) -> None:
        secret = {SECRET_SIG_KEY: SECRET_SIG, "ciphertext": "AAABAM..."}
        stack.set(EKS_RELEASE, "values.kubeProxyReplacement", secret)
        hits = gate.run(stack).of("kube-proxy-replacement-strict")
        assert hits and "unknown" in hits[0].message


# The stack policies that look for a cluster's Cilium release and what it waits for.
RELEASE_WIRING = (
    "cluster-has-one-cilium-release",
    "eks-coredns-after-cilium",
    "network-policies-after-cilium",
    "deploy-rehearsal",
)


def test_preview_of_a_new_cluster_does_not_block_on_empty_releases(gate, stack) -> None:
    """`pulumi preview` of a new cluster: the Kubernetes provider's kubeconfig is unknown, so
    the engine sends the releases (and everything else on that provider) to AnalyzeStack with
    no properties at all (seen in `make conformance`). The wiring policies and the deploy
    rehearsal must not report "no Cilium release" then; `pulumi up` checks them with the real
    values."""
    assert not gate.run(stack).of("deploy-rehearsal")  # the compliant stack rehearses clean
    for name in (EKS_RELEASE, GKE_RELEASE):
        stack[name]["inputs"] = {}
    findings = gate.run(stack)
    for policy in RELEASE_WIRING:
        assert not findings.of(policy), findings.text


def test_a_cluster_without_any_release_still_fails(gate, stack) -> None:
    stack.remove(EKS_RELEASE)
    findings = gate.run(stack)
    assert [
        v
        for v in findings.of("cluster-has-one-cilium-release")
        if v.enforcement_level == "mandatory"
    ]
