"""Ways around the gate, continued: kube-proxy replacement set anywhere it can be, every shape
of workload that runs an image, kube-proxy recognised by what it runs, other Kubernetes
providers, and an open API endpoint allow-list built from pieces. Each must be a mandatory
violation; legitimate variations stay clean.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from components.common import EndpointAccess
from infra.cli import app
from infra.export_format import SECRET_SIG, SIG_KEY
from tests.policies.bypass_support import (
    DIGEST_A,
    EKS_RELEASE,
    PINNED,
    UNPINNED,
    _add_object,
    _blocked,
    _container,
    _root,
    deployment,
    open_coverage,
)

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
