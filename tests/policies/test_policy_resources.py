"""Resource policies, driven through the pack's gRPC Analyze as `pulumi preview` drives them.

Each case breaks one thing in an otherwise compliant prod stack and expects exactly that
policy to report it, with a message naming the resource, the offending value and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

EKS_RELEASE = "eks-main-cilium-release"
GKE_RELEASE = "gke-main-cilium-release"
EKS = "eks-main-cluster"
GKE = "gke-main-cluster"
DIGEST_B = "sha256:" + "b" * 64


class TestCompliantStack:
    """The baseline every other test breaks must itself be clean, or the cases prove nothing."""

    @pytest.mark.parametrize("env", ["prod", "staging"])
    def test_compliant_stack_has_no_violation(self, gate, stack, env: str) -> None:
        findings = gate.run(stack, env)
        assert findings == [], findings.text

    def test_dataplane_v2_cluster_is_compliant_without_a_release(self, gate, stack) -> None:
        findings = gate.run(stack.to_dataplane_v2())
        assert findings == [], findings.text


# (policy, resource, input path, bad value, words the message must contain)
SET_CASES: list[tuple[str, str, str, Any, tuple[str, ...]]] = [
    # digests
    (
        "cilium-images-digest-pinned",
        EKS_RELEASE,
        "values.image.useDigest",
        False,
        ("'eks-main-cilium-release'", "useDigest is false", "image.useDigest: true"),
    ),
    (
        "cilium-images-digest-pinned",
        EKS_RELEASE,
        "values.envoy.image.digest",
        "v1.34",
        ("envoy.image", '"v1.34"'),
    ),
    (
        "cilium-images-digest-pinned",
        GKE_RELEASE,
        "values.nodeinit.image",
        {"repository": "quay.io/cilium/startup-script", "tag": "1755531540-60ee83e"},
        ("node-init", "nodeinit.image.useDigest: true"),
    ),
    (
        "cilium-images-digest-pinned",
        EKS_RELEASE,
        "values.hubble.relay.image.override",
        "quay.io/cilium/hubble-relay:v1.16.19",
        ("override", "not an @sha256: reference"),
    ),
    (
        "cilium-digests-match-catalog",
        EKS_RELEASE,
        "values.image.digest",
        DIGEST_B,
        (DIGEST_B, "catalog pins", "allowedDigests"),
    ),
    (
        "cilium-digests-match-catalog",
        EKS_RELEASE,
        "version",
        "1.16.4",
        ('"1.16.4"', "no entry in the digest catalog"),
    ),
    ("cilium-chart-version-exact", EKS_RELEASE, "version", "~1.16", ('"~1.16"', "exact")),
    (
        "cilium-chart-version-exact",
        EKS_RELEASE,
        "repositoryOpts.repo",
        "http://helm.cilium.io",
        ('"http://helm.cilium.io"', "https://helm.cilium.io"),
    ),
    (
        "workload-images-digest-pinned",
        "eks-main-checkout",
        "spec.template.spec.containers",
        [{"name": "checkout", "image": "nginx:1.27"}],
        ("container 'checkout'", '"nginx:1.27"', "@sha256:"),
    ),
    (
        "workload-images-digest-pinned",
        "eks-main-checkout",
        "spec.template.spec.initContainers",
        [{"name": "migrate", "image": "migrate:latest"}],
        ("'migrate' in initContainers", '"migrate:latest"'),
    ),
    # strict mode
    (
        "kube-proxy-replacement-strict",
        EKS_RELEASE,
        "values.kubeProxyReplacement",
        "strict",
        ('"strict"', "1.16 removed", "kubeProxyReplacement: true"),
    ),
    (
        "kube-proxy-replacement-strict",
        GKE_RELEASE,
        "values.kubeProxyReplacement",
        "partial",
        ('"partial"', "1.16 removed"),
    ),
    (
        "kube-proxy-replacement-strict",
        EKS_RELEASE,
        "values.kubeProxyReplacement",
        False,
        ("false", "kube-proxy would still be needed"),
    ),
    (
        "kube-proxy-replacement-strict",
        EKS_RELEASE,
        "values.k8sServiceHost",
        "auto",
        ('k8sServiceHost is "auto"',),
    ),
    (
        "kube-proxy-replacement-strict",
        EKS_RELEASE,
        "values.k8sServiceHost",
        "https://ABC.eks.amazonaws.com",
        ("without scheme",),
    ),
    (
        "eks-no-conflicting-addons",
        "eks-main-coredns",
        "addonName",
        "kube-proxy",
        ('"kube-proxy"', "Remove it from the cluster's `addons:`"),
    ),
    (
        "eks-no-conflicting-addons",
        "eks-main-coredns",
        "addonName",
        "vpc-cni",
        ('"vpc-cni"', "ENI mode"),
    ),
    (
        "eks-no-bootstrap-addons",
        EKS,
        "bootstrapSelfManagedAddons",
        True,
        ("bootstrapSelfManagedAddons is true", "bootstrapSelfManagedAddons: false"),
    ),
    (
        "no-kube-proxy-objects",
        "eks-main-checkout",
        "metadata.name",
        "kube-proxy",
        ('"kube-proxy"', "Remove it"),
    ),
    ("gke-mode-stated", GKE, "resourceLabels", {}, ("meshless-gke-mode", "not set")),
    (
        "gke-mode-stated",
        GKE,
        "datapathProvider",
        "ADVANCED_DATAPATH",
        ("mode cilium but datapathProvider is ADVANCED_DATAPATH",),
    ),
    # hubble
    (
        "hubble-relay-enabled",
        EKS_RELEASE,
        "values.hubble.relay.enabled",
        False,
        ("hubble.relay.enabled is false", "hubble.relay.enabled: true"),
    ),
    # posture
    (
        "cluster-api-endpoint-restricted",
        EKS,
        "vpcConfig.publicAccessCidrs",
        ["0.0.0.0/0"],
        ('"0.0.0.0/0"', "whole internet", "endpointPublicAccess: false"),
    ),
    (
        "cluster-api-endpoint-restricted",
        EKS,
        "vpcConfig.publicAccessCidrs",
        [],
        ("treats as 0.0.0.0/0",),
    ),
    (
        "cluster-api-endpoint-restricted",
        GKE,
        "masterAuthorizedNetworksConfig",
        None,
        ("masterAuthorizedNetworksConfig is null", "cidrBlocks"),
    ),
    (
        "cluster-secrets-encryption",
        EKS,
        "encryptionConfig.resources",
        [],
        ("encryptionConfig is", 'resources: ["secrets"]'),
    ),
    (
        "cluster-secrets-encryption",
        GKE,
        "databaseEncryption.state",
        "DECRYPTED",
        ('"DECRYPTED"', "ENCRYPTED"),
    ),
    (
        "cluster-control-plane-logging",
        EKS,
        "enabledClusterLogTypes",
        ["api"],
        ('missing ["audit", "authenticator"]',),
    ),
    (
        "cluster-control-plane-logging",
        GKE,
        "loggingConfig.enableComponents",
        ["SYSTEM_COMPONENTS"],
        ('missing ["APISERVER"]',),
    ),
    (
        "gke-private-nodes",
        GKE,
        "privateClusterConfig.enablePrivateNodes",
        False,
        ("enablePrivateNodes is false", "enablePrivateNodes: true"),
    ),
    (
        "gke-workload-identity",
        GKE,
        "workloadIdentityConfig",
        {},
        ("workloadPool is not set", "svc.id.goog"),
    ),
    ("gke-shielded-nodes", GKE, "enableShieldedNodes", False, ("enableShieldedNodes is false",)),
    (
        "cluster-deletion-protection",
        EKS,
        "deletionProtection",
        False,
        ("deletionProtection is false in environment prod", "deletionProtection: true"),
    ),
    (
        "cluster-deletion-protection",
        GKE,
        "deletionProtection",
        False,
        ("deletionProtection is false",),
    ),
    (
        "helm-release-fails-safely",
        GKE_RELEASE,
        "atomic",
        False,
        ("atomic is false", "atomic: true"),
    ),
    ("helm-release-fails-safely", GKE_RELEASE, "cleanupOnFail", False, ("cleanupOnFail is false",)),
    (
        "no-istio-leftovers",
        "eks-main-checkout",
        "metadata.labels.istio-injection",
        "enabled",
        ("istio-injection", "Remove it"),
    ),
    (
        "no-istio-leftovers",
        "eks-main-checkout",
        "spec.template.metadata.annotations",
        {"sidecar.istio.io/inject": "true"},
        ("sidecar.istio.io/inject",),
    ),
]


# A version that is not exact cannot be looked up in the catalog either: both say so.
COMPANIONS = {
    "cilium-chart-version-exact": {"cilium-digests-match-catalog"},
    # Renaming the coredns add-on also removes the EKS cluster's readiness point.
    "eks-no-conflicting-addons": {"deploy-rehearsal"},
}


def _readable(case: tuple) -> str:
    return f"{case[0]}:{case[1]}:{case[2]}"


@pytest.mark.parametrize("case", SET_CASES, ids=_readable)
def test_violation_is_reported_by_its_policy(gate, stack, case) -> None:
    policy, resource, path, value, words = case
    stack.set(resource, path, value)
    findings = gate.run(stack)
    hits = findings.of(policy)
    assert hits, f"{policy} did not report {path}={value!r}:\n{findings.text}"
    assert all(v.enforcement_level == "mandatory" for v in hits)
    assert all(v.urn == stack.urn_of(resource) for v in hits)
    message = "\n".join(v.message for v in hits)
    assert resource in message
    for word in words:
        assert word in message
    others = {v.policy_name for v in findings.mandatory} - {policy} - COMPANIONS.get(policy, set())
    assert not others, f"unrelated mandatory violations:\n{findings.text}"


# (policy, resource, input path) whose removal is a violation
DELETE_CASES = [
    ("cilium-images-digest-pinned", EKS_RELEASE, "values.operator.image.awsDigest"),
    ("cilium-images-digest-pinned", GKE_RELEASE, "values.operator.image.genericDigest"),
    ("cilium-chart-version-exact", EKS_RELEASE, "version"),
    ("kube-proxy-replacement-strict", EKS_RELEASE, "values.kubeProxyReplacement"),
    ("kube-proxy-replacement-strict", EKS_RELEASE, "values.k8sServicePort"),
    ("eks-no-bootstrap-addons", EKS, "bootstrapSelfManagedAddons"),
    ("hubble-relay-enabled", GKE_RELEASE, "values.hubble.enabled"),
    ("cluster-api-endpoint-restricted", EKS, "vpcConfig.publicAccessCidrs"),
    ("cluster-secrets-encryption", EKS, "encryptionConfig"),
    ("cluster-control-plane-logging", EKS, "enabledClusterLogTypes"),
    ("gke-private-nodes", GKE, "privateClusterConfig"),
    ("cluster-deletion-protection", EKS, "deletionProtection"),
    ("helm-release-fails-safely", GKE_RELEASE, "atomic"),
]


@pytest.mark.parametrize("case", DELETE_CASES, ids=_readable)
def test_absent_setting_is_judged_by_its_default(gate, stack, case) -> None:
    policy, resource, path = case
    stack.delete(resource, path)
    findings = gate.run(stack)
    assert findings.of(policy), f"{policy} accepted a missing {path}:\n{findings.text}"
    assert "not set" in " ".join(v.message for v in findings.of(policy))


class TestCompliantVariants:
    """Settings that look unusual but are right must pass: a false positive blocks a deploy."""

    VARIANTS: tuple[tuple[str, str, str, Any], ...] = (
        (
            "string true is what Helm --set gives",
            EKS_RELEASE,
            "values.kubeProxyReplacement",
            "true",
        ),
        (
            "a private-only EKS endpoint needs no CIDRs",
            EKS,
            "vpcConfig",
            {"endpointPrivateAccess": True, "endpointPublicAccess": False, "subnetIds": ["s"]},
        ),
        ("GKE protects clusters by default", GKE, "deletionProtection", None),
        ("GKE shields nodes by default", GKE, "enableShieldedNodes", None),
        (
            "SPIRE images need no pin while SPIRE is off",
            EKS_RELEASE,
            "values.authentication",
            {"mutual": {"spire": {"enabled": False}}},
        ),
        (
            "an OCI chart needs no repositoryOpts",
            EKS_RELEASE,
            "chart",
            "oci://quay.io/cilium/charts/cilium",
        ),
        ("the helm TLS method never runs certgen", EKS_RELEASE, "values.certgen", {}),
    )

    @pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v[0])
    def test_variant_passes(self, gate, stack, variant) -> None:
        _, resource, path, value = variant
        if value is None:
            stack.delete(resource, path)
        else:
            stack.set(resource, path, value)
        if path == "values.certgen":
            stack.set(resource, "values.hubble.tls.auto.method", "helm")
        if path == "chart":
            stack.delete(resource, "repositoryOpts")
        findings = gate.run(stack)
        assert findings.mandatory == [], findings.text

    def test_allow_listed_digest_passes(self, gate, stack) -> None:
        stack.set(EKS_RELEASE, "values.image.digest", DIGEST_B)
        cfg = {"cilium-digests-match-catalog": {"allowedDigests": [DIGEST_B]}}
        assert gate.run(stack, cfg).of("cilium-digests-match-catalog") == []

    def test_endpoint_outside_configured_allow_list_fails(self, gate, stack) -> None:
        cfg = {"cluster-api-endpoint-restricted": {"allowedCidrs": ["198.51.100.0/24"]}}
        hits = gate.run(stack, cfg).of("cluster-api-endpoint-restricted")
        assert len(hits) == 2  # the EKS CIDR and the GKE authorized network
        assert all("not inside the allow-list" in v.message for v in hits)

    def test_staging_does_not_require_deletion_protection(self, gate, stack) -> None:
        stack.set(EKS, "deletionProtection", False)
        assert gate.run(stack, "staging").of("cluster-deletion-protection") == []


class TestIstioLeftovers:
    """A mesh-less stack must not keep Istio objects around: they do nothing but mislead."""

    def test_istio_custom_resource(self, gate, stack) -> None:
        stack.add(
            "kubernetes:networking.istio.io/v1:VirtualService",
            "reviews",
            {"metadata": {"name": "reviews"}, "spec": {"hosts": ["reviews"]}},
        )
        hits = gate.run(stack).of("no-istio-leftovers")
        assert len(hits) == 1 and "Istio custom resource" in hits[0].message

    def test_istio_chart(self, gate, stack) -> None:
        stack.add(
            "kubernetes:helm.sh/v3:Release",
            "istiod",
            {
                "chart": "istiod",
                "version": "1.24.0",
                "atomic": True,
                "cleanupOnFail": True,
                "repositoryOpts": {"repo": "https://istio-release.storage.googleapis.com/charts"},
            },
        )
        assert gate.run(stack).of("no-istio-leftovers")

    def test_namespace_with_injection_label(self, gate, stack) -> None:
        stack.add(
            "kubernetes:core/v1:Namespace",
            "shop",
            {"metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}},
        )
        hits = gate.run(stack).of("no-istio-leftovers")
        assert "metadata.labels[istio-injection]" in hits[0].message


class TestWorkloadKinds:
    """Every workload kind has its pod spec in a different place; each one is checked."""

    KINDS: tuple[tuple[str, Callable[[dict], dict]], ...] = (
        ("kubernetes:core/v1:Pod", lambda pod: {"spec": pod}),
        ("kubernetes:apps/v1:DaemonSet", lambda pod: {"spec": {"template": {"spec": pod}}}),
        ("kubernetes:apps/v1:StatefulSet", lambda pod: {"spec": {"template": {"spec": pod}}}),
        ("kubernetes:batch/v1:Job", lambda pod: {"spec": {"template": {"spec": pod}}}),
        (
            "kubernetes:batch/v1:CronJob",
            lambda pod: {"spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}},
        ),
    )

    @pytest.mark.parametrize("kind", KINDS, ids=lambda k: k[0].rsplit(":", 1)[-1])
    def test_tag_only_image_fails_and_digest_passes(self, gate, stack, kind) -> None:
        type_, wrap = kind
        stack.add(
            type_,
            "bad",
            {
                "metadata": {"name": "bad"},
                **wrap({"containers": [{"name": "app", "image": "busybox:1.36"}]}),
            },
        )
        stack.add(
            type_,
            "good",
            {
                "metadata": {"name": "good"},
                **wrap({"containers": [{"name": "app", "image": f"busybox:1.36@{DIGEST_B}"}]}),
            },
        )
        hits = gate.run(stack).of("workload-images-digest-pinned")
        assert [v.urn.rsplit("::", 1)[-1] for v in hits] == ["bad"]
