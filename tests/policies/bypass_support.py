"""What the gate-bypass tests share: the prod stack's names, containers and assets, and the
assertion that a finding is a mandatory violation of the policy that owns the rule."""

from __future__ import annotations

from typing import Any

from components.pack_rules import load_pack_module
from infra.export_format import SIG_KEY

open_coverage = load_pack_module("cidrs").open_coverage

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
