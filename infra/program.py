"""The program: read the stack config, validate all of it, then declare every cluster.

``load`` reads and checks everything (config, traffic-policy files) and registers nothing;
``declare`` creates the resources from an already valid config. The Pulumi entry point
(infra/__main__.py) and the offline plan (infra/plan.py) both call exactly these two.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from components.cilium import CiliumRelease, ClusterFacts
from components.deployer import Deployer
from components.eks import EksCluster, EksClusterConfig
from components.flows.spec import (
    ExpectedFlow,
    FlowsDocument,
    find_flows_file,
    read_flows,
    resolve_flows,
)
from components.gc_pause import gc_paused
from components.gke import GkeCluster, GkeClusterConfig
from components.network_policy import NetworkPolicies
from components.platform import platform_for
from components.preflight import CiliumPreflight
from components.traffic import PolicySet, TrafficPolicyError, load_policy_folder
from components.yaml_prefetch import prefetching
from infra.config import NAMESPACE, ConfigError, StackConfig, parse_stack_config
from infra.mirrors import check_supply, resolve_mirrors

__all__ = ["REPO_ROOT", "DeclaredCluster", "StackPlan", "declare", "load", "raw_config"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class StackPlan:
    """A validated stack: its config and each cluster's loaded traffic policies."""

    config: StackConfig
    policies: Mapping[str, PolicySet] = field(default_factory=dict)
    # Per cluster: the expected flows of its policy folder's flows.yaml (checked by the plan).
    flows: Mapping[str, list[ExpectedFlow]] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        return [
            f"{cluster}: {warning}"
            for cluster, policy_set in self.policies.items()
            for warning in policy_set.warnings
        ]


@dataclass
class DeclaredCluster:
    name: str
    cloud: str
    component: EksCluster | GkeCluster
    release: CiliumRelease | None
    policies: NetworkPolicies | None


def raw_config(values: Mapping[str, str]) -> dict[str, Any]:
    """The ``meshless:`` keys of a Pulumi config map, prefix removed, JSON values decoded.

    Pulumi hands structured config to programs as JSON strings; plain strings stay strings.
    """
    raw: dict[str, Any] = {}
    for key, value in values.items():
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE:
            continue
        try:
            raw[name] = json.loads(value)
        except (TypeError, ValueError):
            raw[name] = value
    return raw


def _check_policies_fit(
    index: int, cluster: EksClusterConfig | GkeClusterConfig, policies: PolicySet
) -> list[str]:
    """Rules that need both the cluster's Cilium settings and its traffic policies."""
    settings = cluster.cilium_settings
    where = f"{NAMESPACE}:clusters[{index}].trafficPolicies"
    problems: list[str] = []
    if settings is None:  # dataplane-v2 is refused by the cluster model already
        return problems
    if policies.has_l7 and not settings.envoy:
        problems.append(
            f"{where}: {cluster.name} has L7 (HTTP/gRPC/Kafka) rules but cilium.envoy is false; "
            "L7 rules need Envoy. Set cilium.envoy: true or drop the L7 rules"
        )
    if policies.needs_mutual_auth and not settings.mutual_auth:
        problems.append(
            f"{where}: {cluster.name} has rules with `authentication: required` but "
            "cilium.mutualAuth is false; enable mutualAuth or drop the requirement"
        )
    return problems


def load(values: Mapping[str, str], root: Path = REPO_ROOT) -> StackPlan:
    """Validate the whole stack; raise ConfigError with every problem. Registers nothing."""
    # Everything loaded here lives until the plan ends (components/gc_pause.py says why).
    with gc_paused():
        return _load(values, root)


def _load_folder(folder: Path, loaded: dict[Path, PolicySet | TrafficPolicyError]) -> PolicySet:
    """A policy folder read once per load: clusters naming the same folder share its (frozen)
    PolicySet, or get its problems again, as if each had read it (half the load time of a
    stack whose two clusters share a folder of 1270 services)."""
    if folder not in loaded:
        try:
            loaded[folder] = load_policy_folder(folder)
        except TrafficPolicyError as exc:
            loaded[folder] = exc
    outcome = loaded[folder]
    if isinstance(outcome, TrafficPolicyError):
        raise TrafficPolicyError(list(outcome.problems))
    return outcome


def _load(values: Mapping[str, str], root: Path) -> StackPlan:
    config = parse_stack_config(raw_config(values))
    # The flows files are read last and are the largest: a helper process parses them while
    # this one reads the policy folders (components/yaml_prefetch.py).
    with prefetching(_flows_files(config, root)):
        return _load_config(config, values, root)


def _policy_folder(root: Path, relative: str) -> tuple[Path, bool, bool]:
    """A trafficPolicies folder, whether it lies inside the repository, and whether it is an
    existing folder there (OSError/ValueError for a path the system cannot use)."""
    folder = root / relative
    inside = folder.resolve().is_relative_to(root.resolve())
    return folder, inside, inside and folder.is_dir()


def _flows_files(config: StackConfig, root: Path) -> list[Path]:
    """The flows file of each cluster's policy folder inside the repository (_load_config
    says what is wrong with any other folder; nothing outside the repository is read)."""
    found: list[Path] = []
    for cluster in config.clusters:
        if cluster.traffic_policies is None:
            continue
        try:
            folder, _inside, exists = _policy_folder(root, cluster.traffic_policies)
            flows_file = find_flows_file(folder) if exists else None
        except (OSError, ValueError):
            continue
        if flows_file is not None and flows_file not in found:
            found.append(flows_file)
    return found


def _load_config(config: StackConfig, values: Mapping[str, str], root: Path) -> StackPlan:
    policies: dict[str, PolicySet] = {}
    flows: dict[str, list[ExpectedFlow]] = {}
    documents: dict[Path, FlowsDocument] = {}
    loaded: dict[Path, PolicySet | TrafficPolicyError] = {}
    problems: list[str] = check_supply(config, values)
    for index, cluster in enumerate(config.clusters):
        if cluster.traffic_policies is None:
            continue
        where = f"{NAMESPACE}:clusters[{index}].trafficPolicies"
        shown = repr(cluster.traffic_policies[:80])
        try:
            folder, inside, exists = _policy_folder(root, cluster.traffic_policies)
        except (OSError, ValueError) as exc:
            problems.append(f"{where}: {shown} is not a usable folder path ({exc})")
            continue
        if not inside:
            problems.append(
                f"{where}: {shown} points outside the repository; traffic policies are reviewed "
                "code, so keep them in a folder of the repository (e.g. traffic/shop)"
            )
            continue
        if not exists:
            problems.append(
                f"{where}: folder {shown} does not exist; create it or fix the path (relative "
                "to the repository root)"
            )
            continue
        try:
            policies[cluster.name] = _load_folder(folder, loaded)
        except TrafficPolicyError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(_check_policies_fit(index, cluster, policies[cluster.name]))
        flows_file = find_flows_file(folder)
        if flows_file is not None:
            try:
                if flows_file not in documents:  # clusters sharing a folder share its file
                    documents[flows_file] = read_flows(flows_file, root)
                platform = platform_for(cluster)
                flows[cluster.name] = resolve_flows(
                    documents[flows_file], policies[cluster.name], platform
                )
            except TrafficPolicyError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        raise ConfigError(problems)
    return StackPlan(resolve_mirrors(config), policies, flows)


def _declare_cluster(
    cluster: EksClusterConfig | GkeClusterConfig, plan: StackPlan
) -> DeclaredCluster:
    environment = plan.config.environment
    # What differs per cloud: the component, and the one fact its Cilium values need extra.
    component: EksCluster | GkeCluster
    extra: dict[str, Any]
    if isinstance(cluster, EksClusterConfig):
        component = EksCluster(cluster.name, cluster, environment)
        extra = {"operator_role_arn": component.operator_role_arn}
    else:
        component = GkeCluster(cluster.name, cluster, environment)
        # This component always turns Workload Identity on (components/gke/cluster.py).
        extra = {"pod_cidr": cluster.network.pod_cidr, "workload_identity": True}
    facts = ClusterFacts(
        name=cluster.name,
        cloud=cluster.cloud,
        environment=environment,
        api_host=component.api_server_host,
        api_port=component.api_server_port,
        node_kernel=cluster.kernel,
        protect=component.protect,
        **extra,
    )

    settings = cluster.cilium_settings
    release = None
    ready: list[pulumi.Resource] = []
    if settings is not None:
        eks = isinstance(component, EksCluster)
        release = CiliumRelease(
            f"{cluster.name}-cilium",
            settings,
            facts,
            provider=component.provider,
            # EKS: before any node (node groups need a CNI to turn ACTIVE), so no waiting for
            # pods. GKE: after the node pools, waiting for the pods (see CiliumRelease).
            waits_for_pods=not eks,
            after=list(component.node_pools) if isinstance(component, GkeCluster) else [],
            # Cilium is per cluster; parenting keeps the URN tree cluster -> release.
            opts=pulumi.ResourceOptions(parent=component),
        )
        if isinstance(component, EksCluster):
            groups = component.add_node_groups(after=[release.release])
            addons = component.add_addons(after=list(groups))
            ready = [addons[0]]  # CoreDNS: the readiness point
        if settings.preflight_version is not None:
            # Upgrade step one: after this cluster's Cilium runs (nodes exist, CNI works).
            CiliumPreflight(
                f"{cluster.name}-cilium-preflight",
                settings,
                facts,
                provider=component.provider,
                after=ready or [release.release],
                opts=pulumi.ResourceOptions(parent=component),
            )

    network_policies = None
    if cluster.name in plan.policies and release is not None:
        network_policies = NetworkPolicies(
            f"{cluster.name}-policies",
            plan.policies[cluster.name],
            provider=component.provider,
            release=release.release,
            ready=ready,
            opts=pulumi.ResourceOptions(parent=component),
            platform=platform_for(cluster),
        )
    return DeclaredCluster(cluster.name, cluster.cloud, component, release, network_policies)


def declare(plan: StackPlan) -> list[DeclaredCluster]:
    """Create every cluster, its Cilium release and its policies; export what operators need."""
    declared = [_declare_cluster(cluster, plan) for cluster in plan.config.clusters]
    if plan.config.deployer is not None:
        Deployer("deployer", plan.config.deployer)
    pulumi.export(
        "clusters",
        {
            item.name: {
                "cloud": item.cloud,
                "apiServerHost": item.component.api_server_host,
                "ciliumChart": item.release is not None,
            }
            for item in declared
        },
    )
    for item in declared:
        pulumi.export(f"{item.name}-kubeconfig", item.component.kubeconfig)
    return declared
