"""No lie from the loader: every broken stack file ends in exit 2 naming the key, with nothing
written; what a cloud or the chart would refuse is refused before a plan pretends otherwise.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from typer.testing import CliRunner

from infra import plan as offline
from infra.cli import app
from infra.config import ConfigError, parse_stack_config
from infra.plan import PlanInputError, read_stack_file
from infra.program import load, raw_config

REPO = Path(__file__).resolve().parents[1]


def _doc(stack: str = "staging") -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text()))


def _clusters(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["config"]["meshless:clusters"]


def _problems(doc: dict[str, Any]) -> list[str]:
    raw = {k.partition(":")[2]: v for k, v in doc["config"].items()}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw)
    return caught.value.problems


def _plan_cli(tmp_path: Path, text: str | bytes, *extra: str) -> Any:
    stack_file = tmp_path / "Pulumi.test.yaml"
    if isinstance(text, bytes):
        stack_file.write_bytes(text)
    else:
        stack_file.write_text(text, encoding="utf-8")
    args = ["plan", "--stack", "staging", "--stack-file", str(stack_file)]
    args += ["--out", str(tmp_path / "out"), *extra]
    return CliRunner().invoke(app, args, env={"COLUMNS": "400"})


class TestDuplicateKeys:
    """As with the Pulumi CLI, a key given twice is an error, never "last one wins"."""

    @pytest.mark.parametrize(
        ("text", "words"),
        [
            (
                "config:\n  meshless:environment: staging\n  meshless:environment: prod\n",
                ("duplicate key 'meshless:environment'", "line 3", "first given on line 2"),
            ),
            (
                "config:\n  meshless:clusters:\n    - cloud: eks\n      name: a\n      name: b\n",
                ("duplicate key 'name'",),
            ),
            ("config: {}\nconfig: {}\n", ("duplicate key 'config'",)),
        ],
    )
    def test_duplicate_key_is_refused(self, tmp_path: Path, text: str, words) -> None:
        path = tmp_path / "Pulumi.dup.yaml"
        path.write_text(text)
        with pytest.raises(PlanInputError) as caught:
            read_stack_file(path)
        for word in words:
            assert word in str(caught.value)

    def test_bare_and_namespaced_key_together_are_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "Pulumi.dup.yaml"
        path.write_text("config:\n  environment: staging\n  meshless:environment: prod\n")
        with pytest.raises(PlanInputError, match="given twice"):
            read_stack_file(path)

    def test_plan_exits_2_and_writes_nothing(self, tmp_path: Path) -> None:
        text = (REPO / "Pulumi.staging.yaml").read_text() + "  meshless:environment: prod\n"
        result = _plan_cli(tmp_path, text)
        assert result.exit_code == 2, result.output
        assert "duplicate key 'meshless:environment'" in result.output
        assert not (tmp_path / "out").exists()


class TestUnreadableFiles:
    @pytest.mark.parametrize(
        ("content", "words"),
        [
            (b"config:\n  meshless:environment: st\xe4ging\n", ("not UTF-8", "0xe4")),
            (b"\xff\xfe c\x00o\x00", ("not UTF-8",)),
            (b"config:\n  meshless:clusters: [\n", ("not valid YAML", "line")),
            (b"- just\n- a list\n", ("mapping with a `config:` key",)),
            (b"config: [1, 2]\n", ("`config:` must be a mapping",)),
            (b"config:\n  ? [a, b]\n  : x\n", ("mapping key must be a plain value",)),
        ],
    )
    def test_clear_error_exit_2(self, tmp_path: Path, content: bytes, words) -> None:
        result = _plan_cli(tmp_path, content)
        assert result.exit_code == 2, result.output
        for word in words:
            assert word in result.output
        assert "Traceback" not in result.output

    @pytest.mark.parametrize(
        ("text", "word"),
        [
            ("confg:\n  meshless:environment: prod\n", "is not `config:`"),
            ("config:\n  meshles:environment: prod\n", "did you mean meshless:environment"),
        ],
    )
    def test_misspelt_config_or_namespace(self, tmp_path: Path, text: str, word: str) -> None:
        path = tmp_path / "Pulumi.typo.yaml"
        path.write_text(text)
        with pytest.raises(PlanInputError, match=word.replace("`", ".")):
            read_stack_file(path)

    def test_folder_instead_of_a_file(self, tmp_path: Path) -> None:
        with pytest.raises(PlanInputError, match="not a file"):
            read_stack_file(tmp_path)


class TestKeysAsDocumented:
    """Keys are camelCase exactly as Pulumi.yaml documents them; no snake_case aliases."""

    @pytest.mark.parametrize(
        ("path", "key", "camel"),
        [
            ([0], "node_pools", "nodePools"),
            ([0], "kubernetes_version", "kubernetesVersion"),
            ([0, "endpoint"], "allowed_cidrs", "allowedCidrs"),
            ([0, "nodePools", 0], "machine_type", "machineType"),
        ],
    )
    def test_snake_case_key_is_unknown(self, path: list, key: str, camel: str) -> None:
        doc = _doc()
        node: Any = _clusters(doc)
        for step in path:
            node = node[step]
        node[key] = node.pop(camel)
        problems = _problems(doc)
        assert any(key in p and f"did you mean '{camel}'" in p for p in problems), problems

    def test_traffic_file_fields_as_documented(self, tmp_path: Path) -> None:
        from components.traffic import TrafficPolicyError, load_policy_folder

        folder = tmp_path / "traffic"
        folder.mkdir()
        text = (REPO / "traffic/shop/checkout.yaml").read_text()
        (folder / "checkout.yaml").write_text(text.replace("pathPrefix:", "path_prefix:"))
        with pytest.raises(TrafficPolicyError) as caught:
            load_policy_folder(folder, root=tmp_path)
        assert any("path_prefix" in p and "unknown field" in p for p in caught.value.problems)


class TestPlainTextMessages:
    """Messages are printed as text: markup-looking parts survive, internal names never show."""

    def test_brackets_survive_the_printer(self, tmp_path: Path) -> None:
        doc = _doc()
        _clusters(doc)[0]["name"] = "[/]"
        _clusters(doc)[1]["nodePools"][0]["name"] = "[bold]x[/bold]"
        result = _plan_cli(tmp_path, yaml.safe_dump(doc))
        assert result.exit_code == 2, result.output
        assert "'[/]'" in result.output or '"[/]"' in result.output
        assert "^[a-z]" in result.output  # the name pattern, quoted by the message
        assert "[bold]x[/bold]" in result.output

    def test_no_internal_model_names_and_long_values_cut(self) -> None:
        doc = _doc()
        _clusters(doc)[0]["cilium"]["kubeProxyReplacement"] = "y" * 3000
        _clusters(doc)[0]["cilium"]["imageOverrides"] = {"agent": 1}
        _clusters(doc)[1]["zones"] = ["z" * 400]
        problems = _problems(doc)
        text = "\n".join(problems)
        for internal in ("literal[", "function-after", "ImageOverride", "GkeClusterConfig"):
            assert internal not in text, text
        assert "(3002 chars)" in text and "y" * 200 not in text
        assert "z" * 200 not in text
        assert all(len(p) < 600 for p in problems), problems


class TestWhatACloudRefuses:
    @pytest.mark.parametrize(
        ("cloud_index", "machine_type", "words"),
        [
            (0, "e2-standard-4", ("not an EC2 instance type", "Compute Engine")),
            (0, "m6i.huge", ("not an EC2 instance type",)),
            (0, "m7g.large", ("ARM (Graviton)", "nodeImage")),
            (1, "m6i.large", ("not a Compute Engine machine type", "EC2 instance type")),
            (1, "e2 standard 4", ("not a Compute Engine machine type",)),
        ],
    )
    def test_machine_type_of_the_right_cloud_and_shape(
        self, cloud_index: int, machine_type: str, words
    ) -> None:
        doc = _doc()
        _clusters(doc)[cloud_index]["nodePools"][0]["machineType"] = machine_type
        problems = _problems(doc)
        assert any(f"clusters[{cloud_index}].nodePools[0].machineType" in p for p in problems)
        for word in words:
            assert any(word in p for p in problems), problems

    def test_arm_instance_with_arm_image_is_fine(self) -> None:
        doc = _doc()
        _clusters(doc)[0]["nodePools"][0]["machineType"] = "m7g.large"
        _clusters(doc)[0]["nodeImage"] = "AL2023_ARM_64_STANDARD"
        parse_stack_config({k.partition(":")[2]: v for k, v in doc["config"].items()})

    @pytest.mark.parametrize(
        ("labels", "word"),
        [
            ({"a b": "x"}, "label key 'a b'"),
            ({"Example.com/team": "x"}, "prefix must be a DNS subdomain"),
            ({"team": "x" * 64}, "values are empty or 1-63"),
            ({"team": "-x"}, "which Kubernetes refuses"),
            ({"/team": "x"}, "prefix"),
        ],
    )
    def test_kubernetes_label_keys_and_values(self, labels: dict, word: str) -> None:
        doc = _doc()
        _clusters(doc)[1]["nodePools"][0]["labels"] = labels
        problems = _problems(doc)
        assert any("nodePools[0].labels" in p and word in p for p in problems), problems

    def test_good_labels_pass(self) -> None:
        doc = _doc()
        _clusters(doc)[1]["nodePools"][0]["labels"] = {"example.com/team": "shop", "tier": ""}
        parse_stack_config({k.partition(":")[2]: v for k, v in doc["config"].items()})

    def test_clustermesh_ids_unique(self) -> None:
        doc = _doc()
        for cluster in _clusters(doc):
            cluster["cilium"] |= {"clusterMesh": True, "clusterId": 7}
        problems = _problems(doc)
        assert any("clusters[1].cilium.clusterId" in p and "already" in p for p in problems)
        _clusters(doc)[1]["cilium"]["clusterId"] = 8
        parse_stack_config({k.partition(":")[2]: v for k, v in doc["config"].items()})

    def test_cluster_id_the_chart_refuses_in_eni_mode(self) -> None:
        doc = _doc()
        _clusters(doc)[0]["cilium"] |= {"clusterMesh": True, "clusterId": 200}
        assert any("21330" in p for p in _problems(doc))

    def test_cilium_cluster_name_over_32_characters(self) -> None:
        doc = _doc()
        _clusters(doc)[1]["name"] = "a" + "b" * 34 + "c"
        assert any("over 32" in p and "clusters[1].name" in p for p in _problems(doc))

    @pytest.mark.parametrize(
        "cidrs", [["0.0.0.0/1", "128.0.0.0/1"], ["::ffff:0:0/96"], ["2.0.0.0/7", "4.0.0.0/7"]]
    )
    def test_allow_list_open_in_pieces(self, cidrs: list[str]) -> None:
        doc = _doc()
        _clusters(doc)[0]["endpoint"]["allowedCidrs"] = cidrs
        problems = _problems(doc)
        assert any("endpoint.allowedCidrs" in p and "counts as open" in p for p in problems)

    def test_zone_given_twice(self) -> None:
        doc = _doc()
        _clusters(doc)[0]["network"]["availabilityZones"] = ["us-west-2a", "us-west-2a"]
        assert any("availabilityZones[1]" in p and "twice" in p for p in _problems(doc))

    @pytest.mark.parametrize("folder", ["../outside", "/etc", "traffic/../../x", "traffic/\x00"])
    def test_traffic_policies_inside_the_repository(self, folder: str) -> None:
        doc = _doc()
        _clusters(doc)[0]["trafficPolicies"] = folder
        values = {k: json.dumps(v) for k, v in doc["config"].items()}
        with pytest.raises(ConfigError) as caught:
            load(values)
        assert any("clusters[0].trafficPolicies" in p for p in caught.value.problems)

    def test_raw_config_round_trip_of_the_shipped_stacks(self) -> None:
        for stack in ("staging", "prod"):
            values = read_stack_file(REPO / f"Pulumi.{stack}.yaml")
            assert load(values).config.environment == stack
            assert raw_config(values)["environment"] == stack


class TestRecordingMonitor:
    """Two resources with one URN are refused, as the engine refuses them."""

    def test_duplicate_urn_is_an_error(self, monkeypatch) -> None:
        def declare(_plan: Any) -> None:
            pulumi.CustomResource("meshless:test:Thing", "same", {})
            pulumi.CustomResource("meshless:test:Thing", "same", {})

        monkeypatch.setattr(offline, "declare", declare)
        with pytest.raises(PlanInputError, match=r"Duplicate resource URN .*::same'"):
            offline.record_program("staging", None, {})  # type: ignore[arg-type]


class TestNothingHalfWritten:
    """The plan appears whole or not at all; an old plan survives a failed one."""

    def _old_plan(self, out: Path) -> None:
        out.mkdir(parents=True)
        (out / "resources.json").write_text("{}")

    def test_bad_policy_config_fails_before_writing(self, tmp_path: Path) -> None:
        config = tmp_path / "policy.json"
        config.write_text("[not json")
        result = _plan_cli(
            tmp_path, (REPO / "Pulumi.staging.yaml").read_text(), "--policy-config", str(config)
        )
        assert result.exit_code == 2, result.output
        assert not (tmp_path / "out").exists()

    def test_gate_failure_leaves_the_old_plan_and_no_temp_folder(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        self._old_plan(out)
        config = tmp_path / "policy.json"
        config.write_text(json.dumps({"no-such-policy": "mandatory"}))
        result = _plan_cli(
            tmp_path, (REPO / "Pulumi.staging.yaml").read_text(), "--policy-config", str(config)
        )
        assert result.exit_code == 2, result.output
        assert "no-such-policy" in result.output
        assert (out / "resources.json").read_text() == "{}"
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "Pulumi.test.yaml",
            "out",
            "policy.json",
        ]

    @pytest.mark.parametrize("stack", ["../escape", "a/b", "..", ""])
    def test_stack_name_cannot_reach_a_path(self, tmp_path: Path, stack: str) -> None:
        with pytest.raises(PlanInputError, match="not a stack name"):
            offline.run(stack, out_dir=tmp_path / "out")

    def test_out_folder_that_is_not_a_plan_is_not_replaced(self, tmp_path: Path) -> None:
        keep = tmp_path / "keep"
        keep.mkdir()
        (keep / "notes.txt").write_text("mine")
        with pytest.raises(PlanInputError, match="not a previous plan"):
            offline.run("staging", out_dir=keep)
        assert (keep / "notes.txt").read_text() == "mine"
