"""Config mistakes: each one exits 2 with the config path in the message, before any resource.

Pure config rules are tested without the Pulumi runtime; the end-to-end cases go through the
`meshless plan` command the way `make plan` calls it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli import app
from infra.config import ConfigError, parse_stack_config
from infra.program import load, raw_config

REPO = Path(__file__).resolve().parents[1]


def staging() -> dict[str, Any]:
    document = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
    return copy.deepcopy(document)


def _raw(document: dict[str, Any]) -> dict[str, Any]:
    return {k.partition(":")[2]: v for k, v in document["config"].items()}


def _set(document: dict[str, Any], path: list[Any], value: Any) -> None:
    target = document["config"]["meshless:clusters"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


_DELETE = object()

# (id, cluster index, key path, new value, expected start of the message)
MISTAKES: list[tuple[str, int, list[Any], Any, str]] = [
    ("unknown-key", 0, ["nodePool"], [], "meshless:clusters[0].nodePool:"),
    (
        "wrong-type",
        0,
        ["nodePools", 0, "maxSize"],
        "four",
        "meshless:clusters[0].nodePools[0].maxSize:",
    ),
    (
        "min-over-max",
        1,
        ["nodePools", 0, "minSize"],
        5,
        "meshless:clusters[1].nodePools[0].minSize: must be <= maxSize",
    ),
    (
        "malformed-cidr",
        0,
        ["network", "vpcCidr"],
        "10.20.0.0/33",
        "meshless:clusters[0].network.vpcCidr:",
    ),
    (
        "overlapping-cidrs",
        1,
        ["network", "serviceCidr"],
        "10.32.0.0/20",
        "meshless:clusters[1].network.serviceCidr:",
    ),
    (
        "kubernetes-version",
        0,
        ["kubernetesVersion"],
        "1.29",
        "meshless:clusters[0].kubernetesVersion:",
    ),
    ("empty-node-pools", 1, ["nodePools"], [], "meshless:clusters[1].nodePools: must not be empty"),
    ("duplicate-names", 1, ["name"], "stg-eks-usw2", "meshless:clusters[1].name:"),
    ("unknown-region", 0, ["region"], "us-west-9", "meshless:clusters[0].region:"),
    ("missing-field", 0, ["network"], _DELETE, "meshless:clusters[0].network: required"),
    ("unknown-cloud", 0, ["cloud"], "aks", "meshless:clusters[0]: cloud must be"),
    (
        "open-endpoint",
        0,
        ["endpoint", "allowedCidrs"],
        ["0.0.0.0/0"],
        "meshless:clusters[0].endpoint.allowedCidrs:",
    ),
    ("unknown-chart", 0, ["cilium", "version"], "1.15.0", "meshless:clusters[0].cilium.version:"),
]


def mutate(document: dict[str, Any], index: int, path: list[Any], value: Any) -> None:
    if value is _DELETE:
        target = document["config"]["meshless:clusters"][index]
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    else:
        _set(document, [index, *path], value)


class TestConfigMistakes:
    """Every mistake is named by its path, as the user wrote it, with what to do."""

    @pytest.mark.parametrize(
        ("index", "path", "value", "expected"),
        [m[1:] for m in MISTAKES],
        ids=[m[0] for m in MISTAKES],
    )
    def test_message_names_the_path(
        self, index: int, path: list, value: Any, expected: str
    ) -> None:
        document = staging()
        mutate(document, index, path, value)
        with pytest.raises(ConfigError) as caught:
            parse_stack_config(_raw(document))
        assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems

    def test_every_problem_reported_at_once(self) -> None:
        document = staging()
        _set(document, [0, "region"], "us-west-9")
        _set(document, [1, "nodePools", 0, "minSize"], 5)
        with pytest.raises(ConfigError) as caught:
            parse_stack_config(_raw(document))
        assert len(caught.value.problems) == 2

    def test_suggests_the_key_meant(self) -> None:
        document = staging()
        _set(document, [0, "nodePool"], [])
        with pytest.raises(ConfigError, match="did you mean 'nodePools'"):
            parse_stack_config(_raw(document))

    def test_unknown_chart_lists_known_versions(self) -> None:
        document = staging()
        _set(document, [0, "cilium", "version"], "1.15.0")
        with pytest.raises(ConfigError, match=r"1\.16\.5, 1\.16\.19"):
            parse_stack_config(_raw(document))

    def test_missing_traffic_folder(self) -> None:
        document = staging()
        _set(document, [0, "trafficPolicies"], "traffic/nowhere")
        values = {
            k: v if isinstance(v, str) else yaml.safe_dump(v) for k, v in document["config"].items()
        }
        with pytest.raises(
            ConfigError, match=r"clusters\[0\]\.trafficPolicies: folder 'traffic/nowhere'"
        ):
            load({k: __import__("json").dumps(yaml.safe_load(v)) for k, v in values.items()})


class TestDeployerMistakes:
    """Where `pulumi up` runs is config too: a wrong deployer is named by its key."""

    @pytest.mark.parametrize(
        ("deployer", "expected"),
        [
            (
                {"kind": "github-hosted", "runnerLabel": "x"},
                "meshless:deployer.egressCidrs: required",
            ),
            (
                {"kind": "github-hosted", "runnerLabel": "x", "egressCidrs": ["10.0.0.0/33"]},
                "meshless:deployer.egressCidrs:",
            ),
            ({"kind": "laptop", "runnerLabel": "x"}, "meshless:deployer: kind must be"),
            (
                {"kind": "self-hosted", "runnerLabel": "x", "reaches": ["prod-gke-usc1"]},
                "meshless:deployer.reaches[0]: 'prod-gke-usc1' is not a cluster of this stack",
            ),
        ],
        ids=["no-egress", "bad-cidr", "unknown-kind", "unknown-cluster"],
    )
    def test_message_names_the_key(self, deployer: dict[str, Any], expected: str) -> None:
        document = staging()
        document["config"]["meshless:deployer"] = deployer
        with pytest.raises(ConfigError) as caught:
            parse_stack_config(_raw(document))
        assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


class TestShippedStacks:
    """The stack files in the repository are valid as shipped."""

    @pytest.mark.parametrize("stack", ["staging", "prod"])
    def test_valid(self, stack: str) -> None:
        document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
        config = parse_stack_config(_raw(document))
        assert config.environment == stack
        assert {c.kubernetes_version for c in config.clusters} == {"1.32"}

    def test_prod_gke_is_142_nodes_in_us_central1(self) -> None:
        document = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
        config = parse_stack_config(_raw(document))
        gke = next(c for c in config.clusters if c.cloud == "gke")
        assert gke.region == "us-central1"
        assert sum(p.initial_size for p in gke.node_pools) == 142
        eks = next(c for c in config.clusters if c.cloud == "eks")
        assert len(eks.network.availability_zones) >= 3

    def test_raw_config_decodes_json_and_ignores_other_namespaces(self) -> None:
        raw = raw_config(
            {"meshless:environment": "prod", "meshless:clusters": "[]", "aws:region": "x"}
        )
        assert raw == {"environment": "prod", "clusters": []}


class TestPlanCommandOnBadConfig:
    """`meshless plan` on a broken stack file: exit 2, the path, no traceback, nothing written."""

    def test_exit_2_and_nothing_written(self, tmp_path: Path) -> None:
        document = staging()
        _set(document, [1, "nodePools", 0, "minSize"], 5)
        stack_file = tmp_path / "Pulumi.staging.yaml"
        stack_file.write_text(yaml.safe_dump(document))
        out = tmp_path / "out"
        result = CliRunner().invoke(
            app, ["plan", "--stack", "staging", "--stack-file", str(stack_file), "--out", str(out)]
        )
        assert result.exit_code == 2, result.output
        assert "meshless:clusters[1].nodePools[0].minSize" in result.output
        assert "Traceback" not in result.output
        assert not out.exists()

    def test_unreadable_yaml(self, tmp_path: Path) -> None:
        stack_file = tmp_path / "Pulumi.staging.yaml"
        stack_file.write_text("config: [unclosed\n")
        result = CliRunner().invoke(
            app, ["plan", "--stack-file", str(stack_file), "--out", str(tmp_path / "o")]
        )
        assert result.exit_code == 2
        assert "not valid YAML" in result.output

    def test_malformed_policy_config(self, tmp_path: Path) -> None:
        policy_config = tmp_path / "staging.json"
        policy_config.write_text("{not json")
        out = tmp_path / "out"
        result = CliRunner().invoke(
            app, ["plan", "--policy-config", str(policy_config), "--out", str(out)]
        )
        assert result.exit_code == 2
        assert str(policy_config) in result.output.replace("\n", "")
        assert not out.exists()
