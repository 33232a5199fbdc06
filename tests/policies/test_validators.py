"""Validators called directly, the way the pulumi-policy SDK's own tests call them.

``policy.validate(args, report)`` with SDK argument objects and a report that collects, beside
the gRPC tests that drive the whole pack as the engine does. A failure here points at one
validator or helper instead of a whole analyzer session, and runs without a subprocess.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from infra.export_format import UNKNOWN_SENTINEL

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"
UNKNOWN = UNKNOWN_SENTINEL  # the engine's unknown-value sentinel
DIGEST_B = "sha256:" + "b" * 64
EKS_RELEASE = "eks-main-cilium-release"
GKE_RELEASE = "gke-main-cilium-release"


def pack_module(name: str) -> ModuleType:
    """A module of the pack, imported as the engine imports it (the pack dir on sys.path)."""
    if str(PACK_DIR) not in sys.path:
        sys.path.insert(0, str(PACK_DIR))
    return importlib.import_module(name)


def _opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


class Collected(list[str]):
    """The report callback: collects each violation's message (URN unused by resource policies)."""

    def __call__(self, message: str, urn: str | None = None) -> None:
        self.append(message)


def validate(policy: Any, res: dict[str, Any], config: dict[str, Any] | None = None) -> Collected:
    """Run one resource policy on one stack-export resource."""
    args = ResourceValidationArgs(
        res["type"],
        res["inputs"],
        res["urn"],
        res["urn"].rsplit("::", 1)[-1],
        _opts(bool(res.get("protect"))),
        None,
        config,
    )
    report = Collected()
    policy.validate(args, report)
    return report


def validate_stack(policy: Any, resources: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """Run one stack policy on stack-export resources, edges resolved to PolicyResources."""
    by_urn: dict[str, PolicyResource] = {}
    for res in resources:
        by_urn[res["urn"]] = PolicyResource(
            res["type"],
            res["inputs"],
            res["urn"],
            res["urn"].rsplit("::", 1)[-1],
            _opts(),
            None,
            None,
            [],
            {},
        )
    for res in resources:
        node = by_urn[res["urn"]]
        node.parent = by_urn.get(res.get("parent", ""))
        node.dependencies = [by_urn[d] for d in res.get("dependencies", []) if d in by_urn]
        provider = res.get("provider", "").rsplit("::", 1)[0]
        if provider in by_urn:
            target = by_urn[provider]
            node.provider = PolicyProviderResource(
                target.resource_type, target.props, target.urn, target.name
            )
    found: list[tuple[str, str | None]] = []
    policy.validate(
        StackValidationArgs(list(by_urn.values())),
        lambda message, urn=None: found.append((message, urn)),
    )
    return found


@pytest.fixture(scope="module")
def digests() -> ModuleType:
    return pack_module("rules.digests")


@pytest.fixture(scope="module")
def strict_mode() -> ModuleType:
    return pack_module("rules.strict_mode")


class TestDigestValidators:
    """A tag can be moved; only a digest the catalog knows pins what runs."""

    def test_compliant_releases_pass(self, digests, stack) -> None:
        for name in (EKS_RELEASE, GKE_RELEASE):
            assert validate(digests.CILIUM_IMAGES_DIGEST_PINNED, stack[name]) == []
            assert validate(digests.CILIUM_DIGESTS_MATCH_CATALOG, stack[name]) == []

    def test_tag_only_agent_image(self, digests, stack) -> None:
        stack.set(EKS_RELEASE, "values.image.useDigest", False)
        stack.delete(EKS_RELEASE, "values.image.digest")
        (message,) = validate(digests.CILIUM_IMAGES_DIGEST_PINNED, stack[EKS_RELEASE])
        assert "Cilium agent image (image)" in message and "image.useDigest: true" in message

    def test_unknown_digest_fails_rather_than_passes(self, digests, stack) -> None:
        stack.set(GKE_RELEASE, "values.envoy.image.digest", UNKNOWN)
        (message,) = validate(digests.CILIUM_IMAGES_DIGEST_PINNED, stack[GKE_RELEASE])
        assert "envoy.image" in message and "unknown" in message

    def test_digest_outside_catalog_unless_allowed(self, digests, stack) -> None:
        stack.set(EKS_RELEASE, "values.operator.image.awsDigest", DIGEST_B)
        (message,) = validate(digests.CILIUM_DIGESTS_MATCH_CATALOG, stack[EKS_RELEASE])
        assert DIGEST_B in message and "operator.image" in message
        allowed = {"allowedDigests": [DIGEST_B]}
        assert validate(digests.CILIUM_DIGESTS_MATCH_CATALOG, stack[EKS_RELEASE], allowed) == []

    def test_other_resource_types_are_not_judged(self, digests, stack) -> None:
        assert validate(digests.CILIUM_IMAGES_DIGEST_PINNED, stack["eks-main-cluster"]) == []


class TestStrictModeValidators:
    """Cilium 1.16 accepts only kubeProxyReplacement true; GKE states which Cilium it runs."""

    def test_removed_strict_spelling(self, strict_mode, stack) -> None:
        stack.set(EKS_RELEASE, "values.kubeProxyReplacement", "strict")
        (message,) = validate(strict_mode.KUBE_PROXY_REPLACEMENT_STRICT, stack[EKS_RELEASE])
        assert '"strict"' in message and "kubeProxyReplacement: true" in message

    def test_gke_mode_label_missing(self, strict_mode, stack) -> None:
        stack.set("gke-main-cluster", "resourceLabels", {})
        (message,) = validate(strict_mode.GKE_MODE_STATED, stack["gke-main-cluster"])
        assert "resourceLabels[meshless-gke-mode]" in message

    def test_gke_mode_and_datapath_disagree(self, strict_mode, stack) -> None:
        stack.set("gke-main-cluster", "datapathProvider", "ADVANCED_DATAPATH")
        (message,) = validate(strict_mode.GKE_MODE_STATED, stack["gke-main-cluster"])
        assert "mode cilium but datapathProvider is ADVANCED_DATAPATH" in message

    def test_malformed_labels_are_reported_not_passed(self, strict_mode, stack) -> None:
        stack["gke-main-cluster"]["inputs"] = {"resourceLabels": ["not", "a", "map"]}
        (message,) = validate(strict_mode.GKE_MODE_STATED, stack["gke-main-cluster"])
        assert "resourceLabels[meshless-gke-mode] is not set" in message


class TestPolicyGlue:
    """A raising validator would abort the preview with a gRPC error naming no resource."""

    def test_exception_becomes_a_violation_of_that_policy(self, stack) -> None:
        glue = pack_module("rules._policy")

        def broken(_res: Any, _report: Any, _config: Any) -> None:
            raise KeyError("surprise")

        policy = glue.resource_policy(
            name="always-broken",
            description="raises",
            enforcement_level=EnforcementLevel.MANDATORY,
            validate=broken,
            applies_to=lambda _type: True,
        )
        (message,) = validate(policy, stack["gke-main-cluster"])
        assert message.startswith("policy 'always-broken' could not evaluate this input (KeyError")


class TestNodeValidators:
    """Stack policies see edges: a node group is judged by the launch template it waits for."""

    def test_compliant_stack_passes(self, stack) -> None:
        nodes = pack_module("rules.nodes")
        assert validate_stack(nodes.EKS_NODE_LAUNCH_TEMPLATE, stack.resources) == []

    def test_default_launch_template(self, stack) -> None:
        nodes = pack_module("rules.nodes")
        stack.delete("eks-main-general", "launchTemplate")
        ((message, urn),) = validate_stack(nodes.EKS_NODE_LAUNCH_TEMPLATE, stack.resources)
        assert urn == stack.urn_of("eks-main-general") and "systemd-networkd" in message

    def test_taint_missing_on_a_node_pool(self, stack) -> None:
        wiring = pack_module("rules.wiring")
        stack.set("eks-main-general", "taints", [])
        ((message, urn),) = validate_stack(wiring.CILIUM_NODE_TAINT, stack.resources)
        assert urn == stack.urn_of("eks-main-general")
        assert "node.cilium.io/agent-not-ready=true:NoExecute" in message


class TestChartHelpers:
    """Which images the chart renders and which operator digest it picks, from values alone."""

    @pytest.mark.parametrize(
        ("values", "key"),
        [
            ({"eni": {"enabled": True}}, "awsDigest"),
            ({"azure": {"enabled": "true"}}, "azureDigest"),
            ({"gke": {"enabled": True}}, "genericDigest"),
            ({"eni": {"enabled": UNKNOWN}}, None),
        ],
    )
    def test_operator_digest_key(self, values: dict[str, Any], key: str | None) -> None:
        assert pack_module("rules.cilium").operator_digest_key(values) == key

    @pytest.mark.parametrize(
        ("values", "rendered"),
        [
            ({}, False),  # the chart's default hubble.tls.auto.method is helm (values.yaml)
            ({"hubble": {"tls": {"auto": {"method": "helm"}}}}, False),
            ({"hubble": {"tls": {"auto": {"method": "cronJob"}}}}, True),
            ({"hubble": {"tls": {"auto": {"method": UNKNOWN}}}}, None),
            ({"hubble": {"enabled": False, "tls": {"auto": {"method": "cronJob"}}}}, False),
        ],
    )
    def test_certgen_rendered_only_for_cronjob_tls(self, values, rendered) -> None:
        slots = {s.path: s for s in pack_module("rules.cilium").IMAGE_SLOTS}
        assert slots["certgen.image"].enabled(values) is rendered

    @pytest.mark.parametrize(
        ("chart", "cilium"),
        [
            ("cilium", True),
            ("oci://registry.example/charts/cilium", True),
            ("/repo/vendor/cilium-chart/cilium-1.16.19.tgz", True),
            ("cilium-operator", False),
            ("not-cilium", False),
        ],
    )
    def test_is_cilium_release(self, chart: str, cilium: bool) -> None:
        assert pack_module("rules.cilium").is_cilium_release({"chart": chart}) is cilium
