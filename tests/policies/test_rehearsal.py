"""deploy-rehearsal: realistic ordering mistakes block with a chain; correct orders pass.

Each mutation starts from the hand-built compliant stack (conftest: the bootstrap order of
infra/program.py) and runs through the pack's gRPC analyzer, the interface `meshless gate`
and `pulumi preview` use. The saved copy of the prod plan from before the order was fixed
(tests/fixtures/prod-plan-before-issue-11.json) goes through the `meshless gate` command.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer

from infra.gate import gate_command

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONFIG_DIR = Path(__file__).resolve().parents[2] / "policies" / "config"
EKS_RELEASE = "eks-main-cilium-release"
GKE_RELEASE = "gke-main-cilium-release"
DEPLOYER = "meshless:deploy:Deployer"


def _deps(stack, name: str, *names: str) -> None:
    stack[name]["dependencies"] = [stack.urn_of(n) for n in names]


def _deployer(stack, props: dict) -> None:
    root = stack.urn_of("meshless-prod")
    stack.add(DEPLOYER, "deployer", props, parent=root, custom=False)
    stack["deployer"]["outputs"] = dict(props)


def release_waits_on_nodes_that_wait_on_it(stack) -> None:
    stack.set(EKS_RELEASE, "skipAwait", False).set(EKS_RELEASE, "atomic", True)


def provider_waits_for_node_groups(stack) -> None:
    """Today's order before issue 11: the Kubernetes provider depends on the node groups."""
    _deps(stack, "eks-main-k8s", "eks-main-cluster", "eks-main-general")
    _deps(stack, "eks-main-general", "eks-main-cluster")
    stack.set(EKS_RELEASE, "skipAwait", False).set(EKS_RELEASE, "atomic", True)


def node_groups_without_any_cni(stack) -> None:
    stack.remove(EKS_RELEASE)
    _deps(stack, "eks-main-general", "eks-main-cluster")
    _deps(stack, "eks-main-checkout-l7", "eks-main-coredns")
    _deps(stack, "eks-main-checkout")


def hook_job_before_nodes(stack) -> None:
    stack.set(EKS_RELEASE, "values.hubble.tls.auto", {"enabled": True, "method": "cronJob"})


def hook_job_from_an_unlisted_chart_version(stack) -> None:
    hook_job_before_nodes(stack)
    stack.set(EKS_RELEASE, "version", "1.16.20")


def policy_without_path_to_operator(stack) -> None:
    _deps(stack, "eks-main-checkout-l7", EKS_RELEASE)


def coredns_before_nodes(stack) -> None:
    _deps(stack, "eks-main-coredns", "eks-main-cluster", EKS_RELEASE)


def node_group_not_after_cilium(stack) -> None:
    _deps(stack, "eks-main-general", "eks-main-cluster")


def gke_release_racing_node_pools(stack) -> None:
    _deps(stack, GKE_RELEASE, "gke-main-cluster")


def no_readiness_point_after_unwaited_release(stack) -> None:
    stack.remove("eks-main-coredns")
    _deps(stack, "eks-main-checkout-l7", EKS_RELEASE, "eks-main-general")


def private_endpoint_outside_deployer(stack) -> None:
    stack.set("eks-main-cluster", "vpcConfig.endpointPublicAccess", False)
    _deployer(
        stack,
        {"kind": "github-hosted", "runnerLabel": "ubuntu-24.04", "egressCidrs": ["203.0.113.0/24"]},
    )


def deployer_egress_not_allow_listed(stack) -> None:
    _deployer(
        stack,
        {
            "kind": "github-hosted",
            "runnerLabel": "meshless-deploy",
            "egressCidrs": ["198.51.100.16/28"],
        },
    )


def gke_private_endpoint_runner_not_routed(stack) -> None:
    stack.set("gke-main-cluster", "privateClusterConfig.enablePrivateEndpoint", True)
    _deployer(stack, {"kind": "self-hosted", "runnerLabel": "meshless-prod", "reaches": []})


def clusterwide_policy_without_its_crd(stack) -> None:
    dataplane_v2_clusterwide_policy(stack)
    stack.set("gke-main-cluster", "enableCiliumClusterwideNetworkPolicy", False)


# (mutation, words the chain must hold: resources named on both sides, the reason's source)
MUTATIONS: list[tuple[Callable, tuple[str, ...]]] = [
    (
        release_waits_on_nodes_that_wait_on_it,
        ("deadlock", EKS_RELEASE, "eks-main-general", "ready.go"),
    ),
    (
        provider_waits_for_node_groups,
        ("deadlock", "eks-main-general", "eks-main-k8s", EKS_RELEASE, "#3106"),
    ),
    (node_groups_without_any_cni, ("unsatisfiable", "eks-main-general", "cni")),
    (hook_job_before_nodes, ("deadlock", EKS_RELEASE, "eks-main-general", "hooks.go")),
    (
        policy_without_path_to_operator,
        ("race", "eks-main-checkout-l7", "eks-main-coredns", "operator"),
    ),
    (coredns_before_nodes, ("race", "eks-main-coredns", "eks-main-general", "#1972")),
    (node_group_not_after_cilium, ("race", "eks-main-general", EKS_RELEASE, "#3106")),
    (gke_release_racing_node_pools, ("race", GKE_RELEASE, "gke-main-general", "ready.go")),
    (no_readiness_point_after_unwaited_release, ("unproven readiness", EKS_RELEASE)),
    (private_endpoint_outside_deployer, ("unreachable API", "private-only", "main")),
    (deployer_egress_not_allow_listed, ("unreachable API", "198.51.100.16/28")),
    (clusterwide_policy_without_its_crd, ("unsatisfiable", "gke-main-deny-metadata", "operator")),
    (gke_private_endpoint_runner_not_routed, ("unreachable API", "self-hosted", "private-only")),
]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m[0].__name__)
def test_mistake_blocks_with_its_chain(gate, stack, mutation) -> None:
    mutate, words = mutation
    mutate(stack)
    hits = gate.run(stack, "staging").of("deploy-rehearsal")
    assert hits and all(v.enforcement_level == "mandatory" for v in hits), mutate.__name__
    message = "\n".join(v.message for v in hits)
    for word in words:
        assert word in message, f"{word!r} missing from:\n{message}"


def self_hosted_runner_in_the_vpc(stack) -> None:
    stack.set("eks-main-cluster", "vpcConfig.endpointPublicAccess", False)
    _deployer(stack, {"kind": "self-hosted", "runnerLabel": "meshless-prod", "reaches": ["main"]})


def allow_listed_github_runner(stack) -> None:
    _deployer(
        stack,
        {
            "kind": "github-hosted",
            "runnerLabel": "meshless-deploy",
            "egressCidrs": ["203.0.113.16/28"],
        },
    )


def gke_hook_job_after_node_pools(stack) -> None:
    stack.set(GKE_RELEASE, "values.hubble.tls.auto", {"enabled": True, "method": "cronJob"})


def eks_cert_manager_tls(stack) -> None:
    stack.set(EKS_RELEASE, "values.hubble.tls.auto", {"enabled": True, "method": "certmanager"})


def allow_list_unknown_during_preview(stack) -> None:
    """A computed allow-list is judged at `pulumi up`, not guessed (preview-unverifiable)."""
    stack.set(
        "eks-main-cluster", "vpcConfig.publicAccessCidrs", "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2"
    )
    _deployer(
        stack,
        {
            "kind": "github-hosted",
            "runnerLabel": "meshless-deploy",
            "egressCidrs": ["203.0.113.16/28"],
        },
    )


def dataplane_v2_clusterwide_policy(stack) -> None:
    """Google's Cilium brings the CCNP CRD with the cluster: no release to wait for."""
    stack.to_dataplane_v2()
    stack.add(
        "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy",
        "gke-main-deny-metadata",
        {"metadata": {"name": "deny-metadata"}, "spec": {"endpointSelector": {}}},
        parent=stack.urn_of("gke-main"),
        provider=stack.urn_of("gke-main-k8s"),
    )


def hooks_disabled(stack) -> None:
    """disableWebhooks: Helm runs no hook, so none waits for a node (no deadlock; the
    certificates then wait for the CronJob's first run, which is not an ordering matter)."""
    hook_job_before_nodes(stack)
    stack.set(EKS_RELEASE, "disableWebhooks", True)


COMPLIANT = [
    hooks_disabled,
    dataplane_v2_clusterwide_policy,
    allow_list_unknown_during_preview,
    self_hosted_runner_in_the_vpc,
    allow_listed_github_runner,
    gke_hook_job_after_node_pools,
    eks_cert_manager_tls,
    lambda stack: stack.to_dataplane_v2(),
]


@pytest.mark.parametrize("variant", COMPLIANT, ids=lambda v: v.__name__)
def test_correct_order_passes(gate, stack, variant) -> None:
    variant(stack)
    findings = gate.run(stack, "staging")
    assert not findings.of("deploy-rehearsal"), findings.text


def test_todays_prod_plan_deadlocks_on_eks(tmp_path: Path) -> None:
    """The plan as it was before issue 11: node groups wait for a CNI that waits for them."""
    report = tmp_path / "report.json"
    with pytest.raises(typer.Exit) as exc:
        gate_command(
            FIXTURES / "prod-plan-before-issue-11.json",
            policy_config=CONFIG_DIR / "prod.json",
            report=report,
        )
    assert exc.value.exit_code == 1
    violations = json.loads(report.read_text())["violations"]
    # (Policies added since, e.g. eks-node-launch-template, may report on it too.)
    messages = [v["message"] for v in violations if v["policy"] == "deploy-rehearsal"]
    assert len(messages) == 2  # one chain per node group
    for message in messages:
        assert "deadlock" in message and "#3106" in message
        assert "Release 'prod-eks-use1-cilium-release'" in message
        assert "deploys through provider kubernetes 'prod-eks-use1-k8s'" in message
        assert "kubernetes 'prod-eks-use1-k8s' depends on NodeGroup 'prod-eks-use1-" in message
