"""The pieces of `make conformance` that need no Pulumi CLI: version pins, the export
comparison and the stand-in provider's outputs (the real run is `make conformance`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.proto import provider_pb2

from conformance.compare import compare_exports
from conformance.events import read_events, rehearsal_order_problems
from conformance.stand_in_provider import StandInProvider, _to_python, _to_struct
from infra.export_format import REDACTED, SECRET_SIG, SIG_KEY, document_of
from infra.mocks import MeshlessMocks

REPO = Path(__file__).resolve().parents[1]
STACK = "urn:pulumi:staging::meshless::"
PROVIDER = f"{STACK}pulumi:providers:aws::aws-usw2"


def make_var(name: str) -> str:
    match = re.search(rf"^{name} := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert match, name
    return match.group(1)


def test_make_builds_the_versions_go_mod_pins() -> None:
    cli = (REPO / "tools" / "pulumi" / "go.mod").read_text()
    assert f"github.com/pulumi/pulumi/pkg/v3 v{make_var('PULUMI_VERSION')}\n" in cli
    k8s = (REPO / "tools" / "pulumi-kubernetes" / "go.mod").read_text()
    provider = (
        f"github.com/pulumi/pulumi-kubernetes/provider/v4 v{make_var('K8S_PROVIDER_VERSION')}"
    )
    assert provider in k8s


def doc(*resources: dict) -> dict:
    return document_of(list(resources))


def vpc(**extra: object) -> dict:
    base = {
        "urn": f"{STACK}aws:ec2/vpc:Vpc::vpc",
        "type": "aws:ec2/vpc:Vpc",
        "custom": True,
        "provider": f"{PROVIDER}::mock-id",
        "inputs": {"cidrBlock": "10.0.0.0/16"},
        "dependencies": [],
    }
    return {**base, **extra}


class TestCompareExports:
    def test_same_resources_with_engine_ids_match(self) -> None:
        engine = vpc(provider=f"{PROVIDER}::0c2e6c1a-uuid", id="vpc-123", created="2026-12-02")
        assert compare_exports(doc(vpc()), doc(engine)) == []

    def test_changed_input_is_reported(self) -> None:
        engine = vpc(inputs={"cidrBlock": "10.1.0.0/16"})
        (problem,) = compare_exports(doc(vpc()), doc(engine))
        assert "input cidrBlock" in problem and "10.1.0.0/16" in problem

    def test_missing_and_extra_resources(self) -> None:
        other = vpc(urn=f"{STACK}aws:ec2/vpc:Vpc::other")
        problems = compare_exports(doc(vpc()), doc(other))
        assert any("only in the plan" in p for p in problems)
        assert any("only in the engine's export" in p for p in problems)

    def test_dependencies_and_parent_are_compared(self) -> None:
        engine = vpc(dependencies=[PROVIDER], parent=f"{STACK}meshless:aws:EksCluster::c")
        problems = compare_exports(doc(vpc()), doc(engine))
        assert {p.split(": ", 1)[1].split(" ", 1)[0] for p in problems} == {
            "parent",
            "dependencies",
        }

    def test_default_provider_stands_for_no_provider(self) -> None:
        default = f"{STACK}pulumi:providers:aws::default_7_51_1"
        engine_provider = {"urn": default, "type": "pulumi:providers:aws", "custom": True}
        plan = vpc()
        del plan["provider"]
        engine = vpc(provider=f"{default}::uuid")
        assert compare_exports(doc(plan), doc(engine_provider, engine)) == []
        wrong = vpc(provider=f"{STACK}pulumi:providers:gcp::default_10_2_0::uuid")
        assert compare_exports(doc(plan), doc(wrong))

    def test_secret_ciphertext_is_not_compared_but_secrecy_is(self) -> None:
        sig = SIG_KEY
        secret = {sig: SECRET_SIG, "ciphertext": REDACTED}
        plan = vpc(inputs={"password": secret})
        engine = vpc(inputs={"password": {**secret, "ciphertext": "v1:abc"}})
        assert compare_exports(doc(plan), doc(engine)) == []
        assert compare_exports(doc(plan), doc(vpc(inputs={"password": "hunter2"})))


@pytest.mark.parametrize(
    ("typ", "name", "inputs"),
    [
        ("aws:eks/cluster:Cluster", "stg", {"name": "stg", "region": "us-west-2"}),
        ("gcp:container/cluster:Cluster", "gke", {"name": "gke", "project": "p"}),
        ("kubernetes:helm.sh/v3:Release", "cilium", {"name": "cilium", "namespace": "kube-system"}),
    ],
)
def test_stand_in_provider_creates_what_the_mocks_return(typ: str, name: str, inputs: dict) -> None:
    """One fake cloud: the provider the real engine talks to answers with MeshlessMocks."""
    package = typ.split(":", 1)[0]
    request = provider_pb2.CreateRequest(urn=f"{STACK}{typ}::{name}", properties=_to_struct(inputs))
    response = StandInProvider(package).Create(request, None)
    expected_id, expected = MeshlessMocks().new_resource(
        pulumi_mocks.MockResourceArgs(typ=typ, name=name, inputs=inputs, custom=True)
    )
    assert response.id == expected_id
    # Both go over the wire the same way (None dropped, numbers as doubles), as under mocks.
    assert _to_python(response.properties) == _to_python(_to_struct(expected))
    assert response.properties.fields.keys() >= inputs.keys()


def test_engine_provider_bookkeeping_is_not_a_difference() -> None:
    provider = {"urn": PROVIDER, "type": "pulumi:providers:aws", "custom": True, "inputs": {}}
    engine = {**provider, "inputs": {"version": "7.51.1", "__internal": {}}}
    assert compare_exports(doc(provider), doc(engine)) == []
    changed = {**provider, "inputs": {"version": "7.51.1", "region": "eu-west-1"}}
    assert compare_exports(doc(provider), doc(changed)) == [
        f"{PROVIDER}: input region: plan=None engine='eu-west-1'"
    ]


class TestRehearsalAgainstTheEventLog:
    """`pulumi up --event-log` order vs the deploy rehearsal's 'finished before it starts'."""

    cluster = f"{STACK}aws:eks/cluster:Cluster::c"
    group = f"{STACK}aws:eks/nodeGroup:NodeGroup::g"
    resources = (
        {"urn": cluster, "type": "aws:eks/cluster:Cluster", "inputs": {"name": "c"}},
        {"urn": group, "type": "aws:eks/nodeGroup:NodeGroup", "dependencies": [cluster]},
    )

    def events(self, tmp_path: Path, order: list[tuple[str, str]]) -> Path:
        log = tmp_path / "events.jsonl"
        lines = []
        for seq, (kind, urn) in enumerate(order):
            event = {"metadata": {"op": "create", "urn": urn}}
            lines.append(json.dumps({"sequence": seq, kind: event}))
        log.write_text("\n".join(lines) + "\n")
        return log

    def test_engine_order_that_keeps_the_claims(self, tmp_path: Path) -> None:
        order = [
            ("resourcePreEvent", self.cluster),
            ("resOutputsEvent", self.cluster),
            ("resourcePreEvent", self.group),
            ("resOutputsEvent", self.group),
        ]
        started, finished = read_events(self.events(tmp_path, order))
        assert rehearsal_order_problems(list(self.resources), started, finished) == []

    def test_a_resource_started_before_its_dependency_finished(self, tmp_path: Path) -> None:
        order = [
            ("resourcePreEvent", self.cluster),
            ("resourcePreEvent", self.group),
            ("resOutputsEvent", self.cluster),
            ("resOutputsEvent", self.group),
        ]
        started, finished = read_events(self.events(tmp_path, order))
        (problem,) = rehearsal_order_problems(list(self.resources), started, finished)
        assert problem.startswith(f"{self.group}: started (event 1) before {self.cluster}")
