"""The plan diff: what a pull request changes, read from two offline plan directories."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra import export_format as wire
from infra.diff import (
    SECRET_MARKER,
    DiffInputError,
    PlanDiff,
    compare_plans,
    diff_inputs,
)
from infra.export_format import document_of

STACK = "staging"
PREFIX = f"urn:pulumi:{STACK}::meshless::"
SECRET = {wire.SIG_KEY: wire.SECRET_SIG}


def urn(type_chain: str, name: str) -> str:
    return f"{PREFIX}{type_chain}::{name}"


def resource(
    type_chain: str,
    name: str,
    inputs: dict[str, Any] | None = None,
    *,
    custom: bool = True,
    parent: str | None = None,
    deps: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "urn": urn(type_chain, name),
        "type": type_chain.rsplit("$", 1)[-1],
        "custom": custom,
        "parent": parent,
        "provider": None,
        "dependencies": deps or [],
        "inputs": inputs or {},
        "outputs": {},
        "id": f"{name}-id" if custom else None,
    }


def cluster(prefix: str) -> list[dict[str, Any]]:
    """An EKS cluster component, its cluster, a Cilium release and two network policies."""
    comp = resource("meshless:aws:EksCluster", f"{prefix}-eks", custom=False)
    eks = resource(
        "meshless:aws:EksCluster$aws:eks/cluster:Cluster",
        f"{prefix}-eks-cluster",
        {"name": f"{prefix}-eks", "bootstrapSelfManagedAddons": False, "version": "1.31"},
        parent=comp["urn"],
    )
    rel_comp = resource("meshless:cilium:CiliumRelease", f"{prefix}-cilium", custom=False)
    helm = resource(
        "meshless:cilium:CiliumRelease$kubernetes:helm.sh/v3:Release",
        f"{prefix}-cilium",
        {
            "chart": "cilium",
            "version": "1.16.5",
            "namespace": "kube-system",
            "atomic": True,
            "values": {
                "kubeProxyReplacement": True,
                "k8sServicePort": 443,
                "hubble": {"relay": {"enabled": False}, "ui": {"enabled": True}},
                "eni": {"enabled": True},
            },
        },
        parent=rel_comp["urn"],
        deps=[eks["urn"]],
    )
    pols = resource("meshless:cilium:NetworkPolicies", f"{prefix}-policies", custom=False)
    cnps = [
        resource(
            "meshless:cilium:NetworkPolicies$kubernetes:cilium.io/v2:CiliumNetworkPolicy",
            f"{prefix}-{name}",
            {
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumNetworkPolicy",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {
                    "endpointSelector": {"matchLabels": {"app": name}},
                    "ingress": [
                        {
                            "toPorts": [
                                {
                                    "ports": [{"port": "8080", "protocol": "TCP"}],
                                    "rules": {
                                        "http": [
                                            {"method": "GET", "path": "/healthz"},
                                            {"method": "GET", "path": "/api/v1/.*"},
                                        ]
                                    },
                                }
                            ]
                        }
                    ],
                },
            },
            parent=pols["urn"],
            deps=[helm["urn"]],
        )
        for name in ("cart", "checkout")
    ]
    return [comp, eks, rel_comp, helm, pols, *cnps]


def base_resources() -> list[dict[str, Any]]:
    stack = resource("pulumi:pulumi:Stack", f"meshless-{STACK}", custom=False)
    return [stack, *cluster("stg")]


def report(violations: list[dict[str, str]] | None = None) -> dict[str, Any]:
    violations = violations or []
    return {
        "pack": {"name": "meshless-guard", "version": "0.1.0"},
        "stack": STACK,
        "policyConfig": {},
        "mandatory": sum(v["enforcement"] == "mandatory" for v in violations),
        "advisory": sum(v["enforcement"] == "advisory" for v in violations),
        "violations": violations,
    }


def write_plan(
    where: Path, resources: list[dict[str, Any]], violations: list[dict[str, str]] | None = None
) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    doc = document_of(resources)
    (where / "resources.json").write_text(json.dumps(doc, indent=2))
    (where / "policy-report.json").write_text(json.dumps(report(violations), indent=2))
    return where


def find(resources: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The custom resource of that name (a component may share it)."""
    return next(r for r in resources if r["urn"].endswith(f"::{name}") and r["custom"])


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write_plan(tmp_path / "base", base_resources())


def head_with(tmp_path: Path, resources: list[dict[str, Any]], violations=None) -> Path:
    return write_plan(tmp_path / "head", resources, violations)


class TestIdenticalPlans:
    """A pull request that changes nothing must say so, not list noise."""

    def test_no_change(self, tmp_path: Path, base: Path) -> None:
        head = head_with(tmp_path, base_resources())
        diff = compare_plans(base, head)
        assert diff.is_empty
        assert (diff.added, diff.removed, diff.changed) == ([], [], [])
        assert "No changes" in diff.to_markdown()

    def test_outputs_and_ids_are_ignored(self, tmp_path: Path, base: Path) -> None:
        res = base_resources()
        for r in res:
            r["outputs"] = {"endpoint": "https://changed.example"}
            r["id"] = "other-id"
        assert compare_plans(base, head_with(tmp_path, res)).is_empty

    def test_same_violations_are_not_new(self, tmp_path: Path) -> None:
        v = [violation("hubble-relay-enabled", "stg-cilium")]
        b = write_plan(tmp_path / "b", base_resources(), v)
        h = write_plan(tmp_path / "h", base_resources(), copy.deepcopy(v))
        assert compare_plans(b, h).is_empty


class TestAddedAndRemoved:
    """Added and removed resources are reported by URN, never as changes."""

    def test_added_cluster(self, tmp_path: Path, base: Path) -> None:
        new = cluster("stg2")
        diff = compare_plans(base, head_with(tmp_path, base_resources() + new))
        assert diff.added == sorted(r["urn"] for r in new)
        assert diff.removed == [] and diff.changed == []
        md = diff.to_markdown()
        assert "7 to add, 0 to change, 0 to remove" in md
        assert "stg2-eks-cluster" in md and "aws:eks/cluster:Cluster" in md

    def test_removed_policy(self, tmp_path: Path, base: Path) -> None:
        res = [r for r in base_resources() if not r["urn"].endswith("::stg-checkout")]
        diff = compare_plans(base, head_with(tmp_path, res))
        assert diff.removed == [find(base_resources(), "stg-checkout")["urn"]]
        assert diff.added == [] and diff.changed == []
        assert "#### Removed (1)" in diff.to_markdown()


class TestChangedInputs:
    """A changed value is reported with its input path, so a reviewer sees what moved."""

    def test_changed_cilium_value(self, tmp_path: Path, base: Path) -> None:
        res = base_resources()
        find(res, "stg-cilium")["inputs"]["values"]["hubble"]["relay"]["enabled"] = True
        diff = compare_plans(base, head_with(tmp_path, res))
        assert [c.urn for c in diff.changed] == [find(res, "stg-cilium")["urn"]]
        change = diff.changed[0]
        assert change.type == "kubernetes:helm.sh/v3:Release"
        assert change.paths == ["values.hubble.relay.enabled"]
        assert change.values["values.hubble.relay.enabled"] == ("false", "true")
        md = diff.to_markdown()
        assert "values.hubble.relay.enabled" in md
        assert "0 to add, 1 to change, 0 to remove" in md

    def test_list_paths_are_indexed(self, tmp_path: Path, base: Path) -> None:
        res = base_resources()
        spec = find(res, "stg-cart")["inputs"]["spec"]
        spec["ingress"][0]["toPorts"][0]["rules"]["http"][1]["path"] = "/api/v2/.*"
        diff = compare_plans(base, head_with(tmp_path, res))
        assert diff.changed[0].paths == ["spec.ingress[0].toPorts[0].rules.http[1].path"]

    def test_added_and_removed_keys_and_items(self) -> None:
        before = {"urn": "u", "inputs": {"a": {"b": 1}, "l": [1, 2]}}
        after = {"urn": "u", "inputs": {"a": {"c": 1}, "l": [1, 2, 3]}}
        change = diff_inputs(before, after)
        assert change is not None
        assert change.paths == ["a.b", "a.c", "l[2]"]
        assert change.values["a.b"] == ("1", "(absent)")
        assert change.values["l[2]"] == ("(absent)", "3")

    def test_keys_that_are_not_identifiers_are_bracketed(self) -> None:
        before = {"urn": "u", "inputs": {"metadata": {"labels": {"app.kubernetes.io/name": "a"}}}}
        after = {"urn": "u", "inputs": {"metadata": {"labels": {"app.kubernetes.io/name": "b"}}}}
        change = diff_inputs(before, after)
        assert change is not None
        assert change.paths == ['metadata.labels["app.kubernetes.io/name"]']

    def test_int_and_float_of_one_value_are_equal(self) -> None:
        """Pulumi's wire format makes every number a double; 4 and 4.0 are the same input."""
        before = {"urn": "u", "inputs": {"scaling": {"maxSize": 4}}}
        assert diff_inputs(before, {"urn": "u", "inputs": {"scaling": {"maxSize": 4.0}}}) is None
        change = diff_inputs(before, {"urn": "u", "inputs": {"scaling": {"maxSize": 6.0}}})
        assert change is not None and change.values["scaling.maxSize"] == ("4", "6")

    def test_true_is_not_one(self) -> None:
        change = diff_inputs({"urn": "u", "inputs": {"x": 1}}, {"urn": "u", "inputs": {"x": True}})
        assert change is not None and change.paths == ["x"]

    def test_type_change_of_equal_looking_values_counts(self) -> None:
        change = diff_inputs(
            {"urn": "u", "inputs": {"port": 443}}, {"urn": "u", "inputs": {"port": "443"}}
        )
        assert change is not None and change.paths == ["port"]

    def test_long_path_lists_are_capped_in_markdown(self, tmp_path: Path, base: Path) -> None:
        res = base_resources()
        values = find(res, "stg-cilium")["inputs"]["values"]
        for i in range(20):
            values[f"extra{i}"] = i
        md = compare_plans(base, head_with(tmp_path, res)).to_markdown()
        assert "…and 12 more" in md


class TestSecrets:
    """Secret plaintext never reaches the summary; changes to secrets still show."""

    def envelope(self, plaintext: str) -> dict[str, str]:
        return {**SECRET, "plaintext": json.dumps(plaintext)}

    def test_changed_secret_shows_marker_only(self, tmp_path: Path) -> None:
        b_res, h_res = base_resources(), base_resources()
        find(b_res, "stg-cilium")["inputs"]["values"]["token"] = self.envelope("hunter2-old")
        find(h_res, "stg-cilium")["inputs"]["values"]["token"] = self.envelope("hunter2-new")
        diff = compare_plans(write_plan(tmp_path / "b", b_res), write_plan(tmp_path / "h", h_res))
        assert diff.changed[0].paths == ["values.token"]
        md = diff.to_markdown()
        assert "hunter2" not in md
        assert md.count(SECRET_MARKER) >= 2

    def test_unchanged_secret_is_no_change(self, tmp_path: Path) -> None:
        b_res, h_res = base_resources(), base_resources()
        find(b_res, "stg-cilium")["inputs"]["kubeconfig"] = self.envelope("same")
        find(h_res, "stg-cilium")["inputs"]["kubeconfig"] = self.envelope("same")
        b, h = write_plan(tmp_path / "b", b_res), write_plan(tmp_path / "h", h_res)
        assert compare_plans(b, h).is_empty

    def test_encrypted_secrets_compare_equal(self) -> None:
        before = {"urn": "u", "inputs": {"k": {**SECRET, "ciphertext": "v1:aaa"}}}
        after = {"urn": "u", "inputs": {"k": {**SECRET, "ciphertext": "v1:bbb"}}}
        assert diff_inputs(before, after) is None

    def test_redacted_exports_compare_equal(self) -> None:
        before = {"urn": "u", "inputs": {"k": SECRET_MARKER}}
        assert diff_inputs(before, copy.deepcopy(before)) is None

    def test_secret_inside_added_subtree_is_redacted(self, tmp_path: Path, base: Path) -> None:
        res = base_resources()
        find(res, "stg-cilium")["inputs"]["values"]["auth"] = {"key": self.envelope("s3cr3t")}
        diff = compare_plans(base, head_with(tmp_path, res))
        assert diff.changed[0].paths == ["values.auth"]
        md = diff.to_markdown()
        assert "s3cr3t" not in md and SECRET_MARKER in md

    def test_secret_becoming_plain_is_reported_without_old_value(self) -> None:
        before = {"urn": "u", "inputs": {"k": self.envelope("old")}}
        after = {"urn": "u", "inputs": {"k": "new"}}
        change = diff_inputs(before, after)
        assert change is not None
        assert change.values["k"] == (SECRET_MARKER, '"new"')


def violation(policy: str, name: str, message: str = "", level: str = "mandatory") -> dict:
    return {
        "policy": policy,
        "enforcement": level,
        "urn": find(base_resources(), name)["urn"],
        "message": message or f"{policy} failed on {name}",
    }


class TestViolations:
    """New and resolved violations are keyed by policy, URN and message."""

    def test_new_violation(self, tmp_path: Path, base: Path) -> None:
        v = violation("hubble-relay-enabled", "stg-cilium", "Hubble relay is off | fix: on")
        diff = compare_plans(base, head_with(tmp_path, base_resources(), [v]))
        assert [x.policy for x in diff.new_violations] == ["hubble-relay-enabled"]
        assert diff.new_violations[0].enforcement == "mandatory"
        assert diff.resolved_violations == []
        assert not diff.is_empty
        md = diff.to_markdown()
        assert "1 new policy violation, 0 resolved" in md
        assert "Hubble relay is off \\| fix: on" in md

    def test_resolved_violation(self, tmp_path: Path) -> None:
        v = violation("images-pinned-by-digest", "stg-cilium")
        b = write_plan(tmp_path / "b", base_resources(), [v])
        h = write_plan(tmp_path / "h", base_resources(), [])
        diff = compare_plans(b, h)
        assert [x.policy for x in diff.resolved_violations] == ["images-pinned-by-digest"]
        assert diff.new_violations == []

    def test_changed_message_is_one_new_one_resolved(self, tmp_path: Path) -> None:
        b = write_plan(tmp_path / "b", base_resources(), [violation("p", "stg-cilium", "x=1")])
        h = write_plan(tmp_path / "h", base_resources(), [violation("p", "stg-cilium", "x=2")])
        diff = compare_plans(b, h)
        assert len(diff.new_violations) == len(diff.resolved_violations) == 1

    def test_stack_level_violation_without_urn(self, tmp_path: Path, base: Path) -> None:
        v = {"policy": "stack-rule", "enforcement": "advisory", "urn": "", "message": "m"}
        md = compare_plans(base, head_with(tmp_path, base_resources(), [v])).to_markdown()
        assert "(stack)" in md


class TestMarkdown:
    """The section renders well as a GitHub comment."""

    def test_verdict_first_and_long_lists_collapsed(self, tmp_path: Path, base: Path) -> None:
        extra = [cluster(f"c{i}") for i in range(3)]
        res = base_resources() + [r for group in extra for r in group]
        md = compare_plans(base, head_with(tmp_path, res)).to_markdown()
        lines = md.splitlines()
        assert lines[0].startswith("### ")
        assert lines[2] == "**21 to add, 0 to change, 0 to remove.**"
        assert "<details>" in md and "<summary>Added (21)</summary>" in md
        assert md.count("<details>") == md.count("</details>")

    def test_without_title_the_verdict_is_the_first_line(self, tmp_path: Path, base: Path) -> None:
        md = compare_plans(base, head_with(tmp_path, base_resources())).to_markdown(title=None)
        assert md.splitlines()[0] == "**No changes against the base plan.**"

    def test_html_in_values_is_code_not_markup(self, github_text) -> None:
        """A name like <script> is shown, as code, and never becomes a tag."""
        diff = PlanDiff(added=["urn:pulumi:s::p::t::<script>"], types={})
        markdown = diff.to_markdown()
        assert "`<script>`" in markdown  # a code span: verbatim, no entities
        assert "<script>" in github_text(markdown)
        assert "<script>" not in github_text(markdown, drop_code=True)

    def test_huge_diffs_stay_under_a_comment(self, tmp_path: Path, base: Path) -> None:
        res = base_resources()
        template = find(res, "stg-cart")
        for i in range(1270):
            extra = copy.deepcopy(template)
            extra["urn"] = template["urn"] + f"-{i}"
            res.append(extra)
        md = compare_plans(base, head_with(tmp_path, res)).to_markdown()
        assert len(md) < 40_000
        assert "1120 more not shown" in md


class TestInputErrors:
    """A missing or broken plan directory is a clear error, not a traceback."""

    def test_missing_base_dir(self, tmp_path: Path) -> None:
        head = head_with(tmp_path, base_resources())
        with pytest.raises(DiffInputError, match=r"base plan directory .*nope does not exist"):
            compare_plans(tmp_path / "nope", head)

    def test_missing_policy_report(self, tmp_path: Path, base: Path) -> None:
        (base / "policy-report.json").unlink()
        with pytest.raises(DiffInputError, match=r"policy-report\.json does not exist"):
            compare_plans(base, head_with(tmp_path, base_resources()))

    def test_a_file_given_for_the_folder(self, tmp_path: Path, base: Path) -> None:
        head = head_with(tmp_path, base_resources())
        with pytest.raises(
            DiffInputError, match=r"resources\.json is a file; give the plan's folder"
        ):
            compare_plans(base / "resources.json", head)

    def test_missing_head_resources(self, tmp_path: Path, base: Path) -> None:
        head = head_with(tmp_path, base_resources())
        (head / "resources.json").unlink()
        with pytest.raises(DiffInputError, match=r"head plan: .*resources\.json does not exist"):
            compare_plans(base, head)

    def test_bad_json(self, tmp_path: Path, base: Path) -> None:
        (base / "resources.json").write_text("{not json")
        with pytest.raises(DiffInputError, match=r"base plan is not valid JSON \(line 1"):
            compare_plans(base, head_with(tmp_path, base_resources()))

    def test_wrong_shape(self, tmp_path: Path, base: Path) -> None:
        (base / "resources.json").write_text(json.dumps({"deployment": {"resources": [1]}}))
        with pytest.raises(DiffInputError, match="pulumi stack export"):
            compare_plans(base, head_with(tmp_path, base_resources()))

    def test_entry_without_urn_is_named_by_its_path(self, tmp_path: Path, base: Path) -> None:
        head = head_with(tmp_path, [*base_resources(), {"type": "x"}])
        with pytest.raises(DiffInputError, match=r"deployment\.resources\[\d+\] has no 'urn'"):
            compare_plans(base, head)

    def test_bare_resource_list_is_not_a_stack_export(self, tmp_path: Path, base: Path) -> None:
        head = head_with(tmp_path, base_resources())
        (head / "resources.json").write_text(json.dumps(base_resources()))
        with pytest.raises(DiffInputError, match=r"not a stack export.*pulumi stack export"):
            compare_plans(base, head)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


class TestProperties:
    """The diff finds a change exactly when the inputs differ."""

    @settings(max_examples=200, deadline=None)
    @given(a=json_values, b=json_values)
    def test_change_iff_inputs_differ(self, a: Any, b: Any) -> None:
        before, after = {"urn": "u", "inputs": {"x": a}}, {"urn": "u", "inputs": {"x": b}}
        change = diff_inputs(before, after)
        same = json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
        assert (change is None) == same
        assert diff_inputs(before, copy.deepcopy(before)) is None
