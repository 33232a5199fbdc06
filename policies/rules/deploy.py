"""deploy-rehearsal: the stack policy that runs the deploy rehearsal (rehearsal.py) on the
resource graph a preview, an update or the offline plan hands the pack."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel

from ._policy import Resource, StackReport, of_types, stack_policy
from .kinds import EKS_ADDON, EKS_CLUSTER, GKE_CLUSTER, HELM_RELEASE
from .rehearsal import DEPLOYER_TYPE, Node, Rehearsal

__all__ = ["DEPLOY_REHEARSAL", "rehearse"]


def rehearse(resources: list[Resource]) -> Rehearsal:
    return Rehearsal(
        [Node(r.urn, r.type, r.name, r.props, r.provider, r.dependencies) for r in resources]
    )


def _validate(resources: list[Resource], report: StackReport, _config: Mapping[str, Any]) -> None:
    for finding in rehearse(resources).findings():
        report(finding.message, finding.urn)


DEPLOY_REHEARSAL = stack_policy(
    name="deploy-rehearsal",
    description=(
        "Rehearses `pulumi up` on the resource graph: node groups need a CNI, waiting releases "
        "and Helm hook Jobs need nodes, cilium.io objects need a running operator, EKS add-ons "
        "need networked nodes, a release that does not wait is followed by a readiness point, "
        "and Kubernetes calls need a route from the deployer. Reports deadlocks, races and "
        "unsatisfiable waits as chains with their upstream sources (rules/rehearsal.json)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate,
    needs_props=of_types(EKS_CLUSTER, GKE_CLUSTER, EKS_ADDON, HELM_RELEASE, DEPLOYER_TYPE),
)
