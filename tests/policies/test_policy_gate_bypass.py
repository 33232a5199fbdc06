"""Ways around the gate that a platform team must not find: each case takes the compliant prod
stack, does one realistic thing an attacker (or a hurried engineer) would do to run an unpinned
image, a second or non-strict Cilium, kube-proxy, or an open endpoint, and expects a mandatory
violation of the policy that owns that rule. Legitimate variations must stay clean.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from components.common import EndpointAccess
from infra.cli import app
from infra.export_format import SECRET_SIG, SIG_KEY


def _pack_module(name: str) -> ModuleType:
    """A module of the pack, loaded from its file (the pack is not an installed package)."""
    path = Path(__file__).resolve().parents[2] / "policies" / "rules" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pack_rules_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


open_coverage = _pack_module("cidrs").open_coverage

Stack = Any  # tests/policies/conftest.py's Stack, handed in by the `stack` fixture
DIGEST_A = "sha256:" + "a" * 64
EKS_RELEASE = "eks-main-cilium-release"
GKE_RELEASE = "gke-main-cilium-release"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
UNPINNED = "registry.example.com/sidecar:1.0"
PINNED = f"registry.example.com/sidecar:1.0@{DIGEST_A}"


def deployment(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}},
    }


def _provider(stack: Stack, cloud: str = "eks") -> str:
    return stack.urn_of(f"{cloud}-main-k8s")


def _root(stack: Stack) -> str:
    return stack.resources[0]["urn"]


def _text_asset(text: str) -> dict[str, Any]:
    return {SIG_KEY: ASSET_SIG, "hash": "0" * 64, "text": text}


def _container(name: str, image: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **extra}


def _blocked(findings, policy: str, *words: str) -> None:
    hits = [v for v in findings.mandatory if v.policy_name == policy]
    assert hits, f"expected a mandatory {policy} violation, got:\n{findings.text or 'none'}"
    text = "\n".join(v.message for v in hits)
    for word in words:
        assert word in text, f"{word!r} not in:\n{text}"


def _add_object(stack: Stack, type_: str, name: str, inputs: dict, cloud: str = "eks") -> None:
    stack.add(type_, name, inputs, parent=_root(stack), provider=_provider(stack, cloud))


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


KPR_OVERRIDES = {
    "extraConfig": ("values.extraConfig", {"kube-proxy-replacement": "false"}),
    "agent flag": ("values.extraArgs", ["--kube-proxy-replacement=false"]),
    "operator flag": ("values.operator.extraArgs", ["--kube-proxy-replacement", "x"]),
    "agent environment": (
        "values.extraEnv",
        [{"name": "CILIUM_KUBE_PROXY_REPLACEMENT", "value": "false"}],
    ),
}


class TestStrictWhereverItIs:
    """kubeProxyReplacement cannot be undone through the chart's pass-through values."""

    @pytest.mark.parametrize("case", list(KPR_OVERRIDES))
    def test_override_blocks(self, gate, stack, case: str) -> None:
        path, value = KPR_OVERRIDES[case]
        stack.set(EKS_RELEASE, path, value)
        _blocked(gate.run(stack), "kube-proxy-replacement-strict", "behind kubeProxyReplacement")

    def test_post_renderer_blocks(self, gate, stack) -> None:
        stack.set(EKS_RELEASE, "postrender", "./rewrite-images.sh")
        _blocked(gate.run(stack), "cilium-installed-our-way", "post-renderer")

    def test_agreeing_extra_config_passes(self, gate, stack) -> None:
        stack.set(EKS_RELEASE, "values.extraConfig", {"kube-proxy-replacement": "true"})
        assert gate.run(stack).mandatory == []


# --- Kubernetes objects in other shapes ---------------------------------------------------


def _pod_spec(image: str, **extra: Any) -> dict[str, Any]:
    return {"containers": [_container("app", image, **extra)]}


SHAPE_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "DeploymentPatch": (
        "kubernetes:apps/v1:DeploymentPatch",
        {"metadata": {"name": "checkout"}, "spec": {"template": {"spec": _pod_spec(UNPINNED)}}},
    ),
    "DaemonSetPatch init container": (
        "kubernetes:apps/v1:DaemonSetPatch",
        {"spec": {"template": {"spec": {"initContainers": [_container("i", UNPINNED)]}}}},
    ),
    "DeploymentList": (
        "kubernetes:apps/v1:DeploymentList",
        {"items": [deployment("listed", UNPINNED)]},
    ),
    "v1 List of Pods": (
        "kubernetes:core/v1:List",
        {"items": [{"apiVersion": "v1", "kind": "Pod", "spec": _pod_spec(UNPINNED)}]},
    ),
    "ReplicationController": (
        "kubernetes:core/v1:ReplicationController",
        {"spec": {"template": {"spec": _pod_spec(UNPINNED)}}},
    ),
    "PodTemplate": ("kubernetes:core/v1:PodTemplate", {"template": {"spec": _pod_spec(UNPINNED)}}),
    "CronJobPatch": (
        "kubernetes:batch/v1:CronJobPatch",
        {"spec": {"jobTemplate": {"spec": {"template": {"spec": _pod_spec(UNPINNED)}}}}},
    ),
    "ephemeral container": (
        "kubernetes:core/v1:Pod",
        {"spec": {**_pod_spec(PINNED), "ephemeralContainers": [_container("dbg", UNPINNED)]}},
    ),
    "custom resource with a pod template": (
        "kubernetes:argoproj.io/v1alpha1:Rollout",
        {"spec": {"template": {"spec": _pod_spec(UNPINNED)}}},
    ),
    "ConfigGroup YAML text": (
        "kubernetes:yaml/v2:ConfigGroup",
        {"yaml": yaml.safe_dump(deployment("from-yaml", UNPINNED))},
    ),
}


class TestEveryShapeOfWorkload:
    """Containers are found by shape in every kind, patch and list."""

    @pytest.mark.parametrize("case", list(SHAPE_CASES))
    def test_unpinned_image_blocks(self, gate, stack, case: str) -> None:
        type_, inputs = SHAPE_CASES[case]
        _add_object(stack, type_, "odd-shape", inputs)
        _blocked(gate.run(stack), "workload-images-digest-pinned", UNPINNED.split("/")[-1])

    def test_patch_that_leaves_images_alone_passes(self, gate, stack) -> None:
        patch = {"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c"}]}}}}
        _add_object(stack, "kubernetes:apps/v1:DeploymentPatch", "scale", patch)
        findings = gate.run(stack)
        assert findings.mandatory == [], findings.text


KUBE_PROXY_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "upstream image under another name": (
        "kubernetes:apps/v1:DaemonSet",
        {
            "metadata": {"name": "node-proxy"},
            "spec": {
                "template": {"spec": _pod_spec(f"registry.k8s.io/kube-proxy:v1.32.0@{DIGEST_A}")}
            },
        },
    ),
    "EKS's ECR image": (
        "kubernetes:apps/v1:DaemonSet",
        {
            "metadata": {"name": "svc-routing"},
            "spec": {
                "template": {
                    "spec": _pod_spec(
                        "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/kube-proxy:"
                        f"v1.32.0-eksbuild.2@{DIGEST_A}"
                    )
                }
            },
        },
    ),
    "binary and --proxy-mode in a custom image": (
        "kubernetes:apps/v1:DaemonSetPatch",
        {
            "spec": {
                "template": {
                    "spec": _pod_spec(
                        PINNED,
                        command=["/usr/local/bin/kube-proxy"],
                        args=["--proxy-mode=ipvs"],
                    )
                }
            }
        },
    ),
    "a List holding a ConfigMap named kube-proxy": (
        "kubernetes:core/v1:List",
        {"items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-proxy"}}]},
    ),
    "a ConfigGroup's YAML": (
        "kubernetes:yaml/v2:ConfigGroup",
        {"yaml": "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kube-proxy\n"},
    ),
    "only --proxy-mode": (
        "kubernetes:core/v1:Pod",
        {"spec": _pod_spec(PINNED, args=["--proxy-mode", "iptables"])},
    ),
}


class TestKubeProxyByWhatItRuns:
    @pytest.mark.parametrize("case", list(KUBE_PROXY_CASES))
    def test_kube_proxy_blocks(self, gate, stack, case: str) -> None:
        type_, inputs = KUBE_PROXY_CASES[case]
        _add_object(stack, type_, "sneaky", inputs)
        _blocked(gate.run(stack), "no-kube-proxy-objects", "deploys kube-proxy")


# --- other providers ----------------------------------------------------------------------

PROVIDER_CASES = {
    "aws-native EKS add-on": ("aws-native:eks:Addon", {"addonName": "kube-proxy"}, True),
    "aws-native EKS cluster": ("aws-native:eks:Cluster", {"name": "shadow"}, True),
    "google-native GKE cluster": ("google-native:container/v1:Cluster", {"name": "g"}, True),
    "pulumi-eks cluster component": ("eks:index:Cluster", {}, False),
}


class TestOtherProviders:
    @pytest.mark.parametrize("case", list(PROVIDER_CASES))
    def test_cluster_resource_of_another_provider_is_refused(self, gate, stack, case) -> None:
        type_, inputs, custom = PROVIDER_CASES[case]
        stack.add(type_, "other", inputs, parent=_root(stack), custom=custom)
        _blocked(gate.run(stack), "supported-cluster-providers", "does not support")

    def test_unrelated_resource_of_another_provider_passes(self, gate, stack) -> None:
        stack.add("aws-native:s3:Bucket", "logs", {}, parent=_root(stack))
        assert gate.run(stack).mandatory == []


# --- open in pieces -----------------------------------------------------------------------

OPEN_LISTS = {
    "two halves": ["0.0.0.0/1", "128.0.0.0/1"],
    "sixteen /4s": [f"{i * 16}.0.0.0/4" for i in range(16)],
    "IPv4-mapped IPv6": ["::ffff:0:0/96"],
    "IPv6 halves": ["::/1", "8000::/1"],
    "a few public /7s": ["2.0.0.0/7", "4.0.0.0/7"],
}
CLOSED_LISTS = {
    "office": ["203.0.113.0/24"],
    "corporate private /8": ["10.0.0.0/8"],
    "all private space": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
    "a public /9": ["44.0.0.0/9"],
}


class TestOpenInPieces:
    """An allow-list that together covers a /8's worth of public addresses is open."""

    @pytest.mark.parametrize("case", list(OPEN_LISTS))
    def test_eks_open_in_pieces_blocks(self, gate, stack, case: str) -> None:
        stack.set("eks-main-cluster", "vpcConfig.publicAccessCidrs", OPEN_LISTS[case])
        _blocked(gate.run(stack), "cluster-api-endpoint-restricted", "counts as open")

    def test_gke_open_in_pieces_blocks(self, gate, stack) -> None:
        blocks = [{"cidrBlock": c} for c in OPEN_LISTS["two halves"]]
        stack.set("gke-main-cluster", "masterAuthorizedNetworksConfig.cidrBlocks", blocks)
        _blocked(gate.run(stack), "cluster-api-endpoint-restricted", "counts as open")

    def test_gke_google_public_ranges_block(self, gate, stack) -> None:
        stack.set(
            "gke-main-cluster", "masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled", True
        )
        _blocked(gate.run(stack), "cluster-api-endpoint-restricted", "Google Cloud public IP")

    @pytest.mark.parametrize("case", list(CLOSED_LISTS))
    def test_reasonable_lists_pass(self, gate, stack, case: str) -> None:
        stack.set("eks-main-cluster", "vpcConfig.publicAccessCidrs", CLOSED_LISTS[case])
        assert gate.run(stack).mandatory == []

    @pytest.mark.parametrize("cidrs", [*OPEN_LISTS.values(), *CLOSED_LISTS.values()])
    def test_stack_config_applies_the_same_rule(self, cidrs: list[str]) -> None:
        """The loader refuses exactly what the pack blocks (one rule, two copies)."""
        pack_open = open_coverage(cidrs) is not None
        try:
            EndpointAccess.model_validate({"public": True, "allowedCidrs": cidrs})
            loader_open = False
        except ValueError:
            loader_open = True
        assert pack_open == loader_open


# --- values the gate cannot read ----------------------------------------------------------


def _encrypted() -> dict[str, str]:
    return {SIG_KEY: SECRET_SIG, "ciphertext": "v1:AAAABBBBCCCC"}


ENCRYPTED_CASES = {
    "EKS allow-list": ("eks-main-cluster", "vpcConfig.publicAccessCidrs"),
    "EKS KMS key": ("eks-main-cluster", "encryptionConfig.provider.keyArn"),
    "GKE KMS key": ("gke-main-cluster", "databaseEncryption.keyName"),
    "GKE authorized networks": ("gke-main-cluster", "masterAuthorizedNetworksConfig"),
    "Cilium values": (EKS_RELEASE, "values.k8sServiceHost"),
}


class TestEncryptedSecretsNeverPassSilently:
    """In prod a posture value the export holds only as ciphertext is not "clean"."""

    @pytest.mark.parametrize("case", list(ENCRYPTED_CASES))
    def test_prod_blocks_and_says_how_to_read_it(self, gate, stack, case: str) -> None:
        resource, path = ENCRYPTED_CASES[case]
        stack.set(resource, path, _encrypted())
        _blocked(gate.run(stack), "secret-values-readable", path, "--show-secrets")

    def test_staging_reports_without_blocking(self, gate, stack) -> None:
        stack.set("eks-main-cluster", "vpcConfig.publicAccessCidrs", _encrypted())
        findings = gate.run(stack, "staging")
        assert findings.of("secret-values-readable")
        assert findings.mandatory == [], findings.text

    def test_plaintext_export_is_judged_by_its_value(self, gate, stack) -> None:
        secret = {SIG_KEY: SECRET_SIG, "plaintext": '["203.0.113.0/24"]'}
        stack.set("eks-main-cluster", "vpcConfig.publicAccessCidrs", secret)
        assert gate.run(stack).mandatory == []
        open_secret = {SIG_KEY: SECRET_SIG, "plaintext": '["0.0.0.0/1", "128.0.0.0/1"]'}
        stack.set("eks-main-cluster", "vpcConfig.publicAccessCidrs", open_secret)
        _blocked(gate.run(stack), "cluster-api-endpoint-restricted", "counts as open")


class TestGateCommandOnAnExportWithCiphertext:
    """`meshless gate` on an export taken without --show-secrets: prod blocks, staging reports."""

    @pytest.mark.parametrize(("env", "code"), [("prod", 1), ("staging", 0)])
    def test_exit_code(self, stack, tmp_path: Path, env: str, code: int) -> None:
        stack.set("eks-main-cluster", "encryptionConfig.provider.keyArn", _encrypted())
        export = tmp_path / "export.json"
        export.write_text(json.dumps(stack.export()))
        config = Path(__file__).resolve().parents[2] / "policies" / "config" / f"{env}.json"
        result = CliRunner().invoke(
            app, ["gate", str(export), "--policy-config", str(config)], env={"COLUMNS": "300"}
        )
        assert result.exit_code == code, result.output
        assert "secret-values-readable" in result.output
        assert "--show-secrets" in " ".join(result.output.split())
