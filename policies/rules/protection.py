"""What a mistaken change must not delete in prod: Pulumi's `protect` resource option.

`deletionProtection` (cluster-deletion-protection) is the cloud's own guard on the cluster;
`protect` is Pulumi's, and it covers what the cloud does not: node pools and groups (the nodes
every pod runs on), the KMS key without which etcd's Secrets cannot be read, and the Cilium
release that is the cluster's data plane. With it, any preview or update that would delete or
replace one of them fails instead of going ahead. The engine passes resource options to
analyzers (pulumi-policy: ResourceValidationArgs.opts.protect); the gate passes a plan's or a
stack export's `protect` the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pulumi_policy import EnforcementLevel

from ._policy import ENVIRONMENT_CONFIG, Report, Resource, is_prod, resource_policy
from ._values import resource_label
from .cilium import is_cilium_release
from .kinds import (
    EKS_CLUSTER,
    EKS_NODE_GROUP,
    GKE_CLUSTER,
    GKE_NODE_POOL,
    HELM_RELEASE,
    KMS_KEYS,
)

__all__ = ["PROD_RESOURCES_PROTECTED"]

_ALWAYS: Final = frozenset({EKS_CLUSTER, GKE_CLUSTER, EKS_NODE_GROUP, GKE_NODE_POOL, *KMS_KEYS})
_WHAT: Final = {
    EKS_CLUSTER: "the cluster",
    GKE_CLUSTER: "the cluster",
    EKS_NODE_GROUP: "a node group (its nodes and every pod on them)",
    GKE_NODE_POOL: "a node pool (its nodes and every pod on them)",
    HELM_RELEASE: "the Cilium release (every pod's network and every Service at once)",
}


def _applies(resource_type: str) -> bool:
    return resource_type in _ALWAYS or resource_type == HELM_RELEASE


def _validate_protected(res: Resource, report: Report, config: Mapping[str, Any]) -> None:
    if not is_prod(config):
        return
    if res.type == HELM_RELEASE and not is_cilium_release(res.props):
        return
    if res.protect:
        return
    what = _WHAT.get(res.type, "the key that encrypts the cluster's Secrets (etcd unreadable)")
    report(
        f"{resource_label(res.type, res.name)}: not protected in environment prod; a replace "
        f"or `pulumi destroy` would delete {what}. Leave the cluster's `protect` unset (on in "
        "prod) or set `protect: true` in Pulumi.prod.yaml; lift it only as a reviewed change "
        "(README: Protection)"
    )


PROD_RESOURCES_PROTECTED = resource_policy(
    name="prod-resources-protected",
    description=(
        "In prod (this policy's 'environment' config), clusters, node pools and groups, the "
        "Secrets KMS keys and the Cilium release carry Pulumi's `protect` option, so no "
        "preview or update can delete or replace them. Other environments are not checked."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_protected,
    applies_to=_applies,
    config_schema=ENVIRONMENT_CONFIG,
)
