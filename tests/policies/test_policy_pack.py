"""The pack as the engine sees it (GetAnalyzerInfo), its shipped configs and its pins."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
# Posture: what the issue lets staging report without blocking.
POSTURE = {
    "cluster-api-endpoint-restricted",
    "cluster-secrets-encryption",
    "cluster-control-plane-logging",
    "gke-private-nodes",
    "gke-workload-identity",
    "gke-shielded-nodes",
    "cluster-deletion-protection",
    "prod-resources-protected",
    "helm-release-fails-safely",
    "no-istio-leftovers",
    # Unreadable (encrypted) posture values block in prod only, like the posture they hide.
    "secret-values-readable",
    "eks-node-launch-template",
}
ALWAYS_ADVISORY = {"preview-unverifiable-values"}


def _level(entry) -> str:
    return entry if isinstance(entry, str) else entry["enforcementLevel"]


@pytest.fixture(scope="module")
def info(pack):
    return pack.info()


class TestPackMetadata:
    """Reviewers read names and descriptions in every preview: they must say what is checked."""

    def test_name(self, info) -> None:
        assert info.name == "meshless-guardrails"

    def test_policies_are_kebab_case_unique_and_described(self, info) -> None:
        names = [p.name for p in info.policies]
        assert len(names) == len(set(names)) >= 20
        for policy in info.policies:
            assert KEBAB.match(policy.name), policy.name
            assert len(policy.description) > 40, policy.name

    def test_enforcement_is_explicit_and_blocking_by_default(self, info, pack) -> None:
        """Without a config file (a bare `--policy-pack policies`) everything blocks except the
        preview note; the SDK's own default would have been advisory."""
        from pulumi.runtime.proto import analyzer_pb2

        levels = {
            p.name: analyzer_pb2.EnforcementLevel.Name(p.enforcementLevel).lower()
            for p in info.policies
        }
        assert {n for n, lvl in levels.items() if lvl != "mandatory"} == ALWAYS_ADVISORY

    def test_version_comes_from_pulumipolicy_yaml(self, pack) -> None:
        project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
        assert pack.pack_version() == project["version"]
        assert project["runtime"]["name"] == "python"


class TestShippedConfigs:
    """prod blocks on everything; staging blocks on digests, strict mode and wiring only."""

    @pytest.mark.parametrize("env", ["staging", "prod"])
    def test_config_names_every_policy_and_is_accepted(self, pack, info, env: str) -> None:
        config = json.loads((PACK_DIR / "config" / f"{env}.json").read_text())
        assert set(config) == {p.name for p in info.policies}
        pack.configure(config, f"{env}.json")  # raises GateInputError if the pack rejects it

    def test_prod_is_all_mandatory(self) -> None:
        config = json.loads((PACK_DIR / "config" / "prod.json").read_text())
        for name, entry in config.items():
            assert _level(entry) == ("advisory" if name in ALWAYS_ADVISORY else "mandatory")
        assert config["cluster-deletion-protection"]["environment"] == "prod"

    def test_staging_posture_is_advisory(self) -> None:
        config = json.loads((PACK_DIR / "config" / "staging.json").read_text())
        for name, entry in config.items():
            advisory = name in POSTURE or name in ALWAYS_ADVISORY
            assert _level(entry) == ("advisory" if advisory else "mandatory"), name
        assert config["cluster-deletion-protection"]["environment"] == "staging"

    def test_staging_posture_violation_does_not_block(self, gate, stack) -> None:
        stack.set("eks-main-cluster", "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"])
        findings = gate.run(stack, "staging")
        assert [(v.policy_name, v.enforcement_level) for v in findings] == [
            ("cluster-api-endpoint-restricted", "advisory")
        ]


class TestRequirementsPins:
    """The pack's own environment must run the same SDK the project locks and tests with."""

    def test_requirements_match_installed_versions(self) -> None:
        pins = dict(
            line.split("==")
            for line in (PACK_DIR / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        )
        assert pins == {"pulumi": version("pulumi"), "pulumi-policy": version("pulumi-policy")}
        assert pins == {"pulumi": "3.272.0", "pulumi-policy": "1.21.0"}
