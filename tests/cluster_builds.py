"""Test clusters for the GKE and EKS component tests: their configs and how they are built.

Configs come from stack files in tests/fixtures (the shape of Pulumi.<stack>.yaml), so a test
starts from what a user writes. Builds run the component the way infra/program.py does, under
the offline plan's own mocks and recording monitor (tests/recording.py), and are cached: each
(config, environment) is recorded once per session. tests/conftest.py exposes ``build_gke``
and ``build_eks`` as fixtures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.common import type_token
from components.eks import EksCluster, EksClusterConfig
from components.gke import GkeCluster, GkeClusterConfig
from infra.config import ConfigError, parse_stack_config
from infra.mocks import RecordedResource
from tests.recording import Recording, record_program, reveal

__all__ = [
    "EKS_FIXTURE",
    "GKE_FIXTURE",
    "EksBuilt",
    "GkeBuilt",
    "eks",
    "eks_raw",
    "fixture_stack",
    "gke",
    "gke_raw",
    "make_eks_builder",
    "make_gke_builder",
    "stack_error",
    "stack_problem",
]

FIXTURES = Path(__file__).parent / "fixtures"
GKE_FIXTURE = FIXTURES / "gke-modes.yaml"
EKS_FIXTURE = FIXTURES / "eks-clusters.yaml"


# --- configs -----------------------------------------------------------------------------------


@cache
def _config(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())["config"]


def fixture_stack(path: Path) -> dict[str, Any]:
    """A fixture stack file's config as the stack parser takes it (no ``meshless:`` prefix)."""
    config = json.loads(json.dumps(_config(path)))
    return {k.removeprefix("meshless:"): v for k, v in config.items() if k.startswith("meshless:")}


def _clusters(path: Path) -> list[dict[str, Any]]:
    return _config(path)["meshless:clusters"]


def _raw(path: Path, key: str, value: str) -> dict[str, Any]:
    """A deep copy of the fixture cluster whose ``key`` is ``value``, as the user wrote it."""
    return json.loads(json.dumps(next(c for c in _clusters(path) if c[key] == value)))


def gke_raw(mode: str = "cilium") -> dict[str, Any]:
    """tests/fixtures/gke-modes.yaml has one cluster per mode."""
    return _raw(GKE_FIXTURE, "mode", mode)


def gke(mode: str = "cilium", **changes: Any) -> GkeClusterConfig:
    return GkeClusterConfig.model_validate({**gke_raw(mode), **changes})


def eks_raw(name: str = "eks-vpc") -> dict[str, Any]:
    """tests/fixtures/eks-clusters.yaml: eks-vpc (own VPC, everything set), eks-subnets."""
    return _raw(EKS_FIXTURE, "name", name)


def eks(name: str = "eks-vpc", **changes: Any) -> EksClusterConfig:
    return EksClusterConfig.model_validate({**eks_raw(name), **changes})


def stack_error(cluster: dict[str, Any]) -> str:
    """Every problem the stack parser reports for a stack of just this cluster."""
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({"environment": "staging", "clusters": [cluster]})
    return str(caught.value)


def stack_problem(cluster: dict[str, Any]) -> str:
    """The one problem the stack parser reports for a stack of just this cluster."""
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({"environment": "staging", "clusters": [cluster]})
    (problem,) = caught.value.problems
    return problem


# --- builds ------------------------------------------------------------------------------------


@dataclass
class _Built:
    recording: Recording

    @property
    def resources(self) -> list[RecordedResource]:
        return self.recording.resources

    def of_type(self, typ: str) -> list[RecordedResource]:
        return self.recording.of_type(typ)

    def one(self, typ: str) -> RecordedResource:
        return self.recording.one(typ)

    def named(self, typ: str, name: str) -> RecordedResource:
        return self.recording.named(typ, name)

    def ignore_changes(self, resource: RecordedResource) -> list[str]:
        return self.recording.ignore_changes[resource.urn]


@dataclass
class GkeBuilt(_Built):
    """One GkeCluster after every registration finished, plus its resolved outputs."""

    @property
    def component(self) -> RecordedResource:
        return self.one(type_token("gcp", "GkeCluster"))

    @property
    def urn(self) -> str:
        return self.component.urn

    @property
    def component_outputs(self) -> dict[str, Any]:
        return self.component.outputs

    @property
    def api_server_host(self) -> str:
        return str(self.component_outputs["apiServerHost"])

    @property
    def kubeconfig(self) -> str:
        return str(reveal(self.component_outputs["kubeconfig"]))

    @property
    def cluster(self) -> dict[str, Any]:
        return self.one("gcp:container/cluster:Cluster").inputs

    @property
    def pools(self) -> list[RecordedResource]:
        """Node pools in registration order, which is not config order (registration is async)."""
        return self.of_type("gcp:container/nodePool:NodePool")

    def pool(self, name: str) -> RecordedResource:
        (found,) = [p for p in self.pools if p.inputs["name"] == name]
        return found


@dataclass
class EksBuilt(_Built):
    """One EksCluster, its node groups and add-ons, after every registration finished."""

    name: str

    @property
    def component(self) -> RecordedResource:
        return self.one(type_token("aws", "EksCluster"))

    @property
    def cluster(self) -> RecordedResource:
        return self.one("aws:eks/cluster:Cluster")

    @property
    def groups(self) -> list[RecordedResource]:
        return self.of_type("aws:eks/nodeGroup:NodeGroup")

    def group(self, pool: str) -> RecordedResource:
        return self.named("aws:eks/nodeGroup:NodeGroup", f"{self.name}-{pool}")

    def template(self, pool: str) -> RecordedResource:
        return self.named("aws:ec2/launchTemplate:LaunchTemplate", f"{self.name}-{pool}")

    def role(self, suffix: str) -> RecordedResource:
        return self.named("aws:iam/role:Role", f"{self.name}-{suffix}")

    @property
    def addons(self) -> list[RecordedResource]:
        return self.of_type("aws:eks/addon:Addon")

    @property
    def kubeconfig(self) -> dict[str, Any]:
        return json.loads(reveal(self.component.outputs["kubeconfig"]))


def make_gke_builder() -> Callable[..., GkeBuilt]:
    """``build(config, environment="staging")``."""

    @cache
    def built(config_json: str, environment: str) -> GkeBuilt:
        config = GkeClusterConfig.model_validate_json(config_json)

        def program() -> None:
            GkeCluster(config.name, config, environment)

        return GkeBuilt(record_program(program, stack=environment))

    def build(config: GkeClusterConfig, environment: str = "staging") -> GkeBuilt:
        return built(config.model_dump_json(by_alias=True), environment)

    return build


def _eks_program(config: EksClusterConfig, environment: str, stage: str) -> None:
    """What infra/program.py does with the component, up to ``stage`` ("cluster": only the
    constructor; "addons": constructor, CNI release, node groups, add-ons)."""
    component = EksCluster(config.name, config, environment)
    if stage == "cluster":
        return
    # The CNI's release, as the program installs it: on the cluster's provider, no wait.
    cni = k8s.helm.v3.Release(
        f"{config.name}-cilium-release",
        k8s.helm.v3.ReleaseArgs(
            chart="cilium", version="1.16.19", namespace="kube-system", skip_await=True
        ),
        opts=pulumi.ResourceOptions(provider=component.provider),
    )
    groups = component.add_node_groups([cni])
    component.add_addons(list(groups))


def make_eks_builder() -> Callable[..., EksBuilt]:
    """``build(config, environment="staging", stage="addons")``."""

    @cache
    def built(config_json: str, environment: str, stage: str) -> EksBuilt:
        config = EksClusterConfig.model_validate_json(config_json)

        def program() -> None:
            _eks_program(config, environment, stage)

        return EksBuilt(record_program(program, stack=environment), config.name)

    def build(
        config: EksClusterConfig, environment: str = "staging", stage: str = "addons"
    ) -> EksBuilt:
        return built(config.model_dump_json(by_alias=True), environment, stage)

    return build
