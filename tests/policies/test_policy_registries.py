"""cilium-image-registries through the pack's gRPC server: a mirror must carry the catalog's
digest, and an environment's allow-list keeps images on registries someone operates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from components.registry import RegistryMirror

PROD_CONFIG = Path(__file__).resolve().parents[2] / "policies" / "config" / "prod.json"

EKS_RELEASE = "eks-main-cilium-release"
GKE_RELEASE = "gke-main-cilium-release"
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
MIRROR = RegistryMirror(
    registries={"quay.io": f"{ECR}/quay.io", "ghcr.io": f"{ECR}/ghcr.io", "docker.io": f"{ECR}/hub"}
)
DIGEST_B = "sha256:" + "b" * 64
POLICY = "cilium-image-registries"


def _mirror_blocks(node: Any) -> None:
    """Move every image block of a values tree to the mirror, as components/registry.py does."""
    if isinstance(node, dict):
        if isinstance(node.get("repository"), str):
            node["repository"] = MIRROR.repository(node["repository"]) or node["repository"]
        for value in node.values():
            _mirror_blocks(value)


def mirrored(stack):
    for release in (EKS_RELEASE, GKE_RELEASE):
        _mirror_blocks(stack.inputs(release)["values"])
    return stack


def prod_with(**policy: Any) -> dict[str, Any]:
    cfg = json.loads(PROD_CONFIG.read_text(encoding="utf-8"))
    cfg[POLICY] = {"enforcementLevel": "mandatory", **policy}
    return cfg


class TestMirroredRelease:
    """A mirror changes where bytes come from, never which bytes."""

    def test_mirrored_release_passes_with_the_mirror_allow_listed(self, gate, stack) -> None:
        findings = gate.run(mirrored(stack), prod_with(allowedRegistries=[ECR]))
        assert findings.mandatory == [], findings.text
        values = stack.inputs(EKS_RELEASE)["values"]
        assert values["image"]["repository"] == f"{ECR}/quay.io/cilium/cilium"

    def test_mirror_with_another_digest_fails_even_if_allow_listed(self, gate, stack) -> None:
        mirrored(stack).set(EKS_RELEASE, "values.envoy.image.digest", DIGEST_B)
        cfg = prod_with(allowedRegistries=[ECR])
        cfg["cilium-digests-match-catalog"] = {
            "enforcementLevel": "mandatory",
            "allowedDigests": [DIGEST_B],
        }
        hits = gate.run(stack, cfg).of(POLICY)
        assert len(hits) == 1, hits
        message = hits[0].message
        assert f"{ECR}/quay.io/cilium/cilium-envoy mirrors quay.io/cilium/cilium-envoy" in message
        assert DIGEST_B in message and "the catalog pins sha256:" in message
        assert hits[0].urn == stack.urn_of(EKS_RELEASE)

    def test_mirrored_operator_digest_is_checked_per_cloud(self, gate, stack) -> None:
        mirrored(stack).set(GKE_RELEASE, "values.operator.image.genericDigest", DIGEST_B)
        hits = gate.run(stack, prod_with(allowedRegistries=[ECR])).of(POLICY)
        assert [h.urn for h in hits] == [stack.urn_of(GKE_RELEASE)]
        assert "operator.image" in hits[0].message and "genericDigest" in hits[0].message


class TestAllowedRegistries:
    """Per environment, images only from listed registries."""

    def test_prod_config_refuses_an_unlisted_mirror(self, gate, stack) -> None:
        hits = gate.run(mirrored(stack)).of(POLICY)  # prod.json lists the upstream registries
        assert hits, "prod accepted images from a registry its allow-list does not name"
        assert all("is not under an allowed registry" in h.message for h in hits)
        assert any("Cilium agent" in h.message and ECR in h.message for h in hits)

    def test_prefix_matches_whole_path_segments(self, gate, stack) -> None:
        # quay.io/cilium must not admit quay.io/ciliumevil/...
        stack.set(EKS_RELEASE, "values.image.repository", "quay.io/ciliumevil/cilium")
        hits = gate.run(stack).of(POLICY)
        assert len(hits) == 1 and "quay.io/ciliumevil/cilium" in hits[0].message

    def test_images_not_rendered_are_not_judged(self, gate, stack) -> None:
        # SPIRE is off: its (upstream) blocks may stay outside a mirror-only allow-list.
        mirrored(stack)
        spire = stack.inputs(EKS_RELEASE)["values"]["authentication"]["mutual"]["spire"]
        spire["install"] = {"agent": {"image": {"repository": "ghcr.io/spiffe/spire-agent"}}}
        assert gate.run(stack, prod_with(allowedRegistries=[ECR])).of(POLICY) == []

    def test_staging_has_no_allow_list(self, gate, stack) -> None:
        assert gate.run(mirrored(stack), "staging").of(POLICY) == []
