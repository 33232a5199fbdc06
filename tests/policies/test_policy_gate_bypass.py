"""Ways around the gate that a platform team must not find: each case takes the compliant prod
stack, does one realistic thing an attacker (or a hurried engineer) would do to run an unpinned
image, a second or non-strict Cilium, kube-proxy, or an open endpoint, and expects a mandatory
violation of the policy that owns that rule. Legitimate variations must stay clean.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.export_format import SIG_KEY
from tests.policies.bypass_support import (
    ASSET_SIG,
    DIGEST_A,
    EKS_RELEASE,
    GKE_RELEASE,
    PINNED,
    UNPINNED,
    Stack,
    _add_object,
    _blocked,
    _container,
    _provider,
    _root,
    _text_asset,
    deployment,
)

# --- values the chart renders into pods --------------------------------------------------

CHART_VALUE_CASES: dict[str, tuple[str, Any, tuple[str, ...]]] = {
    "agent extraContainers": (
        "values.extraContainers",
        [_container("debug", UNPINNED)],
        ("extraContainers", "'debug'"),
    ),
    "agent extraInitContainers": (
        "values.extraInitContainers",
        [_container("setup", "busybox")],
        ("extraInitContainers", '"busybox"'),
    ),
    "envoy extraContainers": (
        "values.envoy.extraContainers",
        [_container("tap", UNPINNED)],
        ("envoy.extraContainers",),
    ),
    "spire server initContainers": (
        "values.authentication.mutual.spire.install.server.initContainers",
        [_container("wait", "alpine:3")],
        ("spire.install.server.initContainers",),
    ),
    "a *Containers key a newer chart may read": (
        "values.operator.extraContainers",
        [_container("proxy", UNPINNED)],
        ("operator.extraContainers",),
    ),
    "container list that is not a list": (
        "values.extraContainers",
        "- name: x\n  image: y",
        ("extraContainers",),
    ),
    "preflight image block set although preflight is off": (
        "values.preflight.image",
        {"repository": "quay.io/cilium/cilium", "tag": "latest"},
        ("preflight.image",),
    ),
    "SPIRE server image as a plain string": (
        "values.authentication.mutual.spire.install.server.image",
        "ghcr.io/spiffe/spire-server:1.9.6",
        ("spire-server:1.9.6",),
    ),
}


class TestChartValuesThatBecomeContainers:
    """Every value the chart turns into a container is judged, not just the image slots."""

    @pytest.mark.parametrize("case", list(CHART_VALUE_CASES))
    def test_unpinned_container_value_blocks(self, gate, stack, case: str) -> None:
        path, value, words = CHART_VALUE_CASES[case]
        stack.set(EKS_RELEASE, path, value)
        _blocked(gate.run(stack), "cilium-images-digest-pinned", *words)

    def test_pinned_extra_containers_pass(self, gate, stack) -> None:
        stack.set(EKS_RELEASE, "values.extraContainers", [_container("debug", PINNED)])
        stack.set(GKE_RELEASE, "values.envoy.extraContainers", [_container("tap", PINNED)])
        findings = gate.run(stack)
        assert findings.mandatory == [], findings.text


def _files(stack: Stack, name: str, *texts: str) -> None:
    stack.set(name, "valueYamlFiles", [_text_asset(t) for t in texts])


class TestValueYamlFiles:
    """valueYamlFiles are merged under values exactly as Helm merges them."""

    def test_unpinned_image_from_a_file_blocks(self, gate, stack) -> None:
        _files(stack, EKS_RELEASE, "envoy:\n  image:\n    override: envoyproxy/envoy:v1.30\n")
        stack.delete(EKS_RELEASE, "values.envoy.image")
        _blocked(gate.run(stack), "cilium-images-digest-pinned", "envoy.image", "override")

    def test_file_turning_kube_proxy_replacement_off_blocks(self, gate, stack) -> None:
        _files(stack, EKS_RELEASE, "kubeProxyReplacement: false\n")
        stack.delete(EKS_RELEASE, "values.kubeProxyReplacement")
        _blocked(gate.run(stack), "kube-proxy-replacement-strict", "kube-proxy would still")

    def test_later_file_overrides_earlier_and_values_override_files(self, gate, stack) -> None:
        # file 1 pins, file 2 unpins: Helm takes file 2 (deep merge, later wins).
        _files(stack, EKS_RELEASE, "image:\n  useDigest: true\n", "image:\n  useDigest: false\n")
        stack.delete(EKS_RELEASE, "values.image.useDigest")
        _blocked(gate.run(stack), "cilium-images-digest-pinned", "useDigest is false")

    def test_values_win_over_files(self, gate, stack) -> None:
        _files(stack, EKS_RELEASE, "kubeProxyReplacement: false\nextraContainers: []\n")
        findings = gate.run(stack)  # values still say kubeProxyReplacement: true
        assert findings.mandatory == [], findings.text

    def test_null_in_values_deletes_a_key_from_a_file(self, gate, stack) -> None:
        _files(stack, EKS_RELEASE, "kubeProxyReplacement: true\n")
        stack.set(EKS_RELEASE, "values.kubeProxyReplacement", None)
        _blocked(gate.run(stack), "kube-proxy-replacement-strict", "not set")

    def test_file_on_disk_cannot_be_read_and_blocks(self, gate, stack) -> None:
        asset = {SIG_KEY: ASSET_SIG, "hash": "0" * 64, "path": "./cilium-values.yaml"}
        stack.set(EKS_RELEASE, "valueYamlFiles", [asset])
        findings = gate.run(stack)
        _blocked(findings, "cilium-images-digest-pinned", "valueYamlFiles[0]", "cannot read")
        _blocked(findings, "kube-proxy-replacement-strict", "valueYamlFiles[0]")


# --- Cilium installed another way ---------------------------------------------------------


def _v4_chart(stack: Stack) -> None:
    inputs = copy.deepcopy(stack.inputs(EKS_RELEASE))
    for key in ("atomic", "cleanupOnFail", "timeout", "name"):
        inputs.pop(key, None)
    stack.add(
        "kubernetes:helm.sh/v4:Chart",
        "cilium-v4",
        inputs,
        parent=_root(stack),
        provider=_provider(stack),
        custom=False,
    )


def _v3_chart_children(stack: Stack) -> None:
    chart = stack.add(
        "kubernetes:helm.sh/v3:Chart", "cilium-chart", {}, parent=_root(stack), custom=False
    )
    stack.add(
        "kubernetes:core/v1:ConfigMap",
        "kube-system/cilium-config",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cilium-config", "namespace": "kube-system"},
            "data": {"kube-proxy-replacement": "false"},
        },
        parent=chart,
        provider=_provider(stack),
    )


def _second_agent(stack: Stack) -> None:
    agent = deployment("node-agent", f"quay.io/cilium/cilium:v1.16.19@{DIGEST_A}")
    agent["kind"] = "DaemonSet"
    _add_object(stack, "kubernetes:apps/v1:DaemonSet", "node-agent", agent)


def _config_map_patch(stack: Stack) -> None:
    _add_object(
        stack,
        "kubernetes:core/v1:ConfigMapPatch",
        "kpr-off",
        {
            "metadata": {"name": "cilium-config", "namespace": "kube-system"},
            "data": {"kube-proxy-replacement": "false"},
        },
    )


def _local_chart(path: str) -> Callable[[Stack], None]:
    def change(stack: Stack) -> None:
        stack.set(EKS_RELEASE, "chart", path)

    return change


def _renamed_chart(stack: Stack) -> None:
    stack.set(EKS_RELEASE, "chart", "cni")


def _agent_by_binary(stack: Stack) -> None:
    image = f"registry.example.com/netd:2@{DIGEST_A}"
    agent = deployment("netd", image)
    agent["spec"]["template"]["spec"]["containers"][0]["command"] = ["cilium-agent"]
    _add_object(stack, "kubernetes:apps/v1:Deployment", "netd", agent)


def _config_map_in_a_list(stack: Stack) -> None:
    item = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cilium-config", "namespace": "kube-system"},
        "data": {"kube-proxy-replacement": "false"},
    }
    _add_object(stack, "kubernetes:core/v1:ConfigMapList", "maps", {"items": [item]})


OTHER_WAY_CASES: dict[str, Callable[[Stack], None]] = {
    "cilium-config inside a ConfigMapList": _config_map_in_a_list,
    "helm.sh/v4 Chart of Cilium": _v4_chart,
    "v3 Chart's rendered cilium-config": _v3_chart_children,
    "a pinned second agent DaemonSet": _second_agent,
    "cilium-config ConfigMapPatch": _config_map_patch,
    "local chart folder": _local_chart("./charts/cilium/"),
    "local chart archive": _local_chart("/tmp/cilium-1.16.19.tgz"),
    "chart archive by URL": _local_chart("https://example.com/cilium-1.16.19.tar.gz"),
    "chart renamed, from Cilium's repository": _renamed_chart,
    "an agent recognised by its binary": _agent_by_binary,
}


class TestOneCiliumOnlyOurWay:
    """One Cilium per cluster, installed only by its CiliumRelease."""

    @pytest.mark.parametrize("case", list(OTHER_WAY_CASES))
    def test_other_install_blocks(self, gate, stack, case: str) -> None:
        OTHER_WAY_CASES[case](stack)
        _blocked(gate.run(stack), "cilium-installed-our-way", "CiliumRelease")

    def test_v4_chart_is_also_held_to_strict_mode_by_the_stack_policy(self, gate, stack) -> None:
        _v4_chart(stack)
        text = gate.run(stack).text
        assert "helm.sh/v4 Chart" in text or "v4 Chart" in text

    def test_verified_published_archive_is_our_way(self, gate, stack) -> None:
        archive = Path(__file__).resolve().parents[2] / "vendor/cilium-chart/cilium-1.16.19.tgz"
        stack.set(EKS_RELEASE, "chart", str(archive))
        stack.delete(EKS_RELEASE, "repositoryOpts")
        assert gate.run(stack).of("cilium-installed-our-way") == []

    def test_tampered_archive_is_refused(self, gate, stack, tmp_path: Path) -> None:
        archive = Path(__file__).resolve().parents[2] / "vendor/cilium-chart/cilium-1.16.19.tgz"
        tampered = tmp_path / "cilium-1.16.19.tgz"
        tampered.write_bytes(archive.read_bytes() + b"\0")
        stack.set(EKS_RELEASE, "chart", str(tampered))
        stack.delete(EKS_RELEASE, "repositoryOpts")
        _blocked(gate.run(stack), "cilium-installed-our-way", "not the published chart")

    def test_cilium_demo_app_is_not_a_second_cilium(self, gate, stack) -> None:
        app = deployment("deathstar", f"docker.io/cilium/starwars:v1@{DIGEST_A}")
        _add_object(stack, "kubernetes:apps/v1:Deployment", "deathstar", app)
        assert gate.run(stack).mandatory == []

    def test_mirrored_operator_image_is_a_second_cilium(self, gate, stack) -> None:
        image = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/cilium/operator-aws:v1@{DIGEST_A}"
        _add_object(stack, "kubernetes:apps/v1:Deployment", "op", deployment("op", image))
        _blocked(gate.run(stack), "cilium-installed-our-way", "operator-aws")

    def test_second_release_of_cilium_blocks(self, gate, stack) -> None:
        inputs = copy.deepcopy(stack.inputs(EKS_RELEASE))
        inputs["name"] = "cilium-two"
        stack.add(
            "kubernetes:helm.sh/v3:Release",
            "second-cilium",
            inputs,
            parent=_root(stack),
            provider=_provider(stack),
        )
        _blocked(gate.run(stack), "cluster-has-one-cilium-release", "found 2")
