"""What the mock monitor accepts but the Pulumi engine refuses is a plan error (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra import plan as offline
from infra.cli import app
from infra.engine_rules import EngineRuleError, check_engine_rules, engine_urn, find_cycle
from infra.mocks import RecordedResource

STACK = "urn:pulumi:staging::meshless::"


def res(name: str, typ: str = "aws:ec2/vpc:Vpc", **kwargs: object) -> RecordedResource:
    fields = {"parent": "", "provider": "", "dependencies": [], "property_dependencies": {}}
    fields.update(kwargs)
    return RecordedResource(
        urn=f"{STACK}{typ}::{name}", type=typ, name=name, custom=True, inputs={}, **fields
    )


PROVIDER = res("aws-usw2", "pulumi:providers:aws")
REF = f"{PROVIDER.urn}::3f1c"


def problems(resources: list[RecordedResource]) -> list[str]:
    with pytest.raises(EngineRuleError) as caught:
        check_engine_rules(resources)
    return caught.value.problems


class TestProviderBeforeItExists:
    def test_provider_registered_first_is_fine(self) -> None:
        check_engine_rules([PROVIDER, res("vpc", provider=REF)])

    def test_provider_registered_after_its_user(self) -> None:
        (problem,) = problems([res("vpc", provider=REF), PROVIDER])
        assert problem.startswith(f"{STACK}aws:ec2/vpc:Vpc::vpc: provider {PROVIDER.urn}")
        assert "used before it exists" in problem

    def test_provider_never_registered(self) -> None:
        (problem,) = problems([res("vpc", provider=REF)])
        assert "used before it exists" in problem

    def test_provider_reference_to_a_plain_resource(self) -> None:
        vpc = res("vpc")
        (problem,) = problems([vpc, res("subnet", provider=f"{vpc.urn}::vpc-1")])
        assert "is a aws:ec2/vpc:Vpc, not a provider resource" in problem


class TestCycles:
    def test_dependency_cycle_is_named(self) -> None:
        a = res("a", dependencies=[f"{STACK}aws:ec2/vpc:Vpc::b"])
        b = res("b", property_dependencies={"vpcId": [a.urn]})
        (problem,) = problems([a, b])
        assert problem.startswith("dependency cycle")
        assert problem.endswith(f"{a.urn} -> {b.urn} -> {a.urn}")

    def test_parent_cycle(self) -> None:
        a = res("a", "meshless:aws:EksCluster", parent=f"{STACK}meshless:aws:EksCluster::b")
        b = res("b", "meshless:aws:EksCluster", parent=a.urn)
        assert find_cycle([a, b]) == [a.urn, b.urn, a.urn]

    def test_diamond_is_not_a_cycle(self) -> None:
        top = res("top")
        left = res("left", dependencies=[top.urn])
        right = res("right", dependencies=[top.urn])
        bottom = res("bottom", dependencies=[left.urn, right.urn], parent=top.urn)
        assert find_cycle([bottom, right, left, top]) is None


def test_plan_refuses_and_writes_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`meshless plan` exits 2 naming the resource, and leaves no half-written output."""
    a = res("a", dependencies=[f"{STACK}aws:ec2/vpc:Vpc::b"])
    b = res("b", dependencies=[a.urn])
    monkeypatch.setattr(offline, "record_program", lambda *args: [a, b])
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["plan", "--stack", "staging", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "engine would refuse" in result.output and "dependency cycle" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_real_plans_pass_the_rules() -> None:
    for stack in ("staging", "prod"):
        result = offline.plan_stack(stack)
        check_engine_rules(result.resources)


class TestUrns:
    """The plan's URNs are the engine's (the SDK's MockMonitor builds them differently)."""

    def test_child_of_the_stack_has_no_stack_prefix(self) -> None:
        stack_urn = "urn:pulumi:prod::meshless::pulumi:pulumi:Stack::meshless-prod"
        assert (
            engine_urn("prod", "meshless", stack_urn, "meshless:aws:EksCluster", "c")
            == "urn:pulumi:prod::meshless::meshless:aws:EksCluster::c"
        )

    def test_grandchild_carries_the_whole_type_chain(self) -> None:
        parent = (
            "urn:pulumi:prod::meshless::meshless:aws:EksCluster$meshless:cilium:CiliumRelease::r"
        )
        assert engine_urn("prod", "meshless", parent, "kubernetes:helm.sh/v3:Release", "x") == (
            "urn:pulumi:prod::meshless::meshless:aws:EksCluster$meshless:cilium:CiliumRelease"
            "$kubernetes:helm.sh/v3:Release::x"
        )

    def test_planned_urns_follow_the_engine_rule(self) -> None:
        result = offline.plan_stack("staging")
        by_urn = {r.urn: r for r in result.resources}
        for r in result.resources:
            assert "pulumi:pulumi:Stack$" not in r.urn
            if r.parent and r.parent in by_urn and by_urn[r.parent].type != "pulumi:pulumi:Stack":
                assert r.urn.split("::")[2] == f"{r.parent.split('::')[2]}${r.type}"
