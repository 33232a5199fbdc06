"""Cluster posture: who can reach the control plane, what is encrypted and logged, what cannot
be deleted by accident, and no Istio left behind in a mesh-less stack.

Absent properties are judged by the provider's documented default: EKS endpoints are public
to 0.0.0.0/0 and deletion protection is off unless set; GKE deletion protection and shielded
nodes are on unless set to false.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Final

from pulumi_policy import EnforcementLevel, PolicyConfigSchema

from ._policy import (
    ENVIRONMENT_CONFIG,
    Report,
    Resource,
    is_prod,
    kubernetes_objects,
    of_types,
    resource_policy,
)
from ._values import MISSING, describe, is_unknown, iter_dicts, lookup, resource_label
from .cidrs import open_coverage
from .cilium import is_cilium_release
from .kinds import EKS_CLUSTER, GKE_CLUSTER, HELM_RELEASE

__all__ = [
    "CLUSTER_API_ENDPOINT_RESTRICTED",
    "CLUSTER_CONTROL_PLANE_LOGGING",
    "CLUSTER_DELETION_PROTECTION",
    "CLUSTER_SECRETS_ENCRYPTION",
    "GKE_PRIVATE_NODES",
    "GKE_SHIELDED_NODES",
    "GKE_WORKLOAD_IDENTITY",
    "HELM_RELEASE_FAILS_SAFELY",
    "NO_ISTIO_LEFTOVERS",
]

_CLUSTERS: Final = of_types(EKS_CLUSTER, GKE_CLUSTER)
_DEFAULT_EKS_LOG_TYPES: Final = ["api", "audit", "authenticator"]
_DEFAULT_GKE_LOG_COMPONENTS: Final = ["SYSTEM_COMPONENTS", "APISERVER"]


def _cidr_problem(cidr: Any, allowed: list[str]) -> str | None:
    """Why a CIDR may not reach the API server, or None. Unknown CIDRs are computed values
    (e.g. a NAT gateway's address) and are left to preview-unverifiable-values."""
    if is_unknown(cidr):
        return None
    try:
        network = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return f"{describe(cidr)} is not a CIDR"
    if network.prefixlen == 0:
        return f"{describe(cidr)} opens the endpoint to the whole internet"
    if not allowed:
        return None
    for entry in allowed:
        try:
            allowed_net = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        same_family = network.version == allowed_net.version
        if same_family and network.subnet_of(allowed_net):  # type: ignore[arg-type]
            return None
    return f"{describe(cidr)} is not inside the allow-list {describe(allowed)}"


def _eks_endpoint_problems(props: dict[str, Any], allowed: list[str]) -> list[str]:
    vpc = props.get("vpcConfig", MISSING)
    if not isinstance(vpc, dict):
        return [f"vpcConfig is {describe(vpc)}; endpoint access cannot be judged"]
    public = vpc.get("endpointPublicAccess", MISSING)
    if public is False:
        return []
    if is_unknown(public):
        return ["vpcConfig.endpointPublicAccess is unknown during preview; it must be literal"]
    cidrs = vpc.get("publicAccessCidrs", MISSING)
    if is_unknown(cidrs):
        return []
    if not isinstance(cidrs, list) or not cidrs:
        return [
            f"the public endpoint is on (endpointPublicAccess {describe(public)}) and "
            f"publicAccessCidrs is {describe(cidrs)}, which EKS treats as 0.0.0.0/0"
        ]
    problems = [
        f"vpcConfig.publicAccessCidrs: {problem}"
        for cidr in cidrs
        if (problem := _cidr_problem(cidr, allowed))
    ]
    return problems + _open_in_pieces("vpcConfig.publicAccessCidrs", cidrs)


def _open_in_pieces(path: str, cidrs: list[Any]) -> list[str]:
    """The list as a whole: 0.0.0.0/1 + 128.0.0.0/1 is as open as 0.0.0.0/0 (rules/cidrs.py)."""
    literal = [str(c) for c in cidrs if isinstance(c, str) and not is_unknown(c)]
    if any(c.strip().endswith("/0") for c in literal):
        return []  # already reported on its own as the whole internet
    reason = open_coverage(literal)
    return [f"{path} {describe(literal)}: {reason}"] if reason else []


def _gke_endpoint_problems(props: dict[str, Any], allowed: list[str]) -> list[str]:
    networks = props.get("masterAuthorizedNetworksConfig", MISSING)
    if not isinstance(networks, dict):
        return [
            f"masterAuthorizedNetworksConfig is {describe(networks)}, so any address may "
            "reach the control plane endpoint"
        ]
    problems = []
    google = networks.get("gcpPublicCidrsAccessEnabled", MISSING)
    if google is True or is_unknown(google):
        problems.append(
            f"masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled is {describe(google)}: "
            "every Google Cloud public IP (anyone's VM) may reach the endpoint"
        )
    blocks = networks.get("cidrBlocks", [])
    if is_unknown(blocks):
        return problems
    problems += [
        f"masterAuthorizedNetworksConfig.cidrBlocks: {problem}"
        for block in iter_dicts(blocks)
        if (problem := _cidr_problem(block.get("cidrBlock", MISSING), allowed))
    ]
    cidrs = [block.get("cidrBlock") for block in iter_dicts(blocks)]
    return problems + _open_in_pieces("masterAuthorizedNetworksConfig.cidrBlocks", cidrs)


def _validate_endpoint(res: Resource, report: Report, config: Mapping[str, Any]) -> None:
    allowed = [str(c) for c in config.get("allowedCidrs", []) or []]
    if res.type == EKS_CLUSTER:
        problems = _eks_endpoint_problems(res.props, allowed)
        fix = (
            "set vpcConfig.endpointPublicAccess: false, or publicAccessCidrs to the "
            "office/CI ranges of the allow-list"
        )
    elif res.type == GKE_CLUSTER:
        problems = _gke_endpoint_problems(res.props, allowed)
        fix = "list only the allow-listed ranges in masterAuthorizedNetworksConfig.cidrBlocks"
    else:
        return
    for problem in problems:
        report(f"{resource_label(res.type, res.name)}: {problem}. Fix: {fix}")


CLUSTER_API_ENDPOINT_RESTRICTED = resource_policy(
    name="cluster-api-endpoint-restricted",
    description=(
        "The Kubernetes API endpoint is not open to the internet: EKS is private or public "
        "only to listed CIDRs, GKE has master authorized networks without Google Cloud's "
        "public ranges; never 0.0.0.0/0, nor ranges that together cover a /8's worth of "
        "public addresses or more, and within allowedCidrs when that is configured."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_endpoint,
    applies_to=_CLUSTERS,
    config_schema=PolicyConfigSchema(
        properties={
            "allowedCidrs": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "If non-empty, every endpoint CIDR must lie inside one of these.",
            }
        }
    ),
)


def _eks_encryption_problem(props: dict[str, Any]) -> str | None:
    config = props.get("encryptionConfig", MISSING)
    blocks = config if isinstance(config, list) else [config]
    for block in blocks:
        if not isinstance(block, dict):
            continue
        resources = block.get("resources", [])
        key = lookup(block, "provider.keyArn")
        covers_secrets = is_unknown(resources) or (
            isinstance(resources, list) and "secrets" in resources
        )
        if covers_secrets and (is_unknown(key) or (isinstance(key, str) and key)):
            return None  # an unknown key ARN is a KMS key still to be created
    return (
        f"encryptionConfig is {describe(config)}; Kubernetes secrets are not envelope-encrypted "
        'with a KMS key. Set encryptionConfig {provider: {keyArn}, resources: ["secrets"]}'
    )


def _gke_encryption_problem(props: dict[str, Any]) -> str | None:
    config = props.get("databaseEncryption", MISSING)
    state = lookup(config, "state") if isinstance(config, dict) else MISSING
    key = lookup(config, "keyName") if isinstance(config, dict) else MISSING
    if state == "ENCRYPTED" and (is_unknown(key) or (isinstance(key, str) and key)):
        return None
    return (
        f"databaseEncryption is {describe(config)}; etcd secrets are not encrypted with a "
        'Cloud KMS key. Set databaseEncryption {state: "ENCRYPTED", keyName: <kms key>}'
    )


def _validate_encryption(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    if res.type == EKS_CLUSTER:
        problem = _eks_encryption_problem(res.props)
    elif res.type == GKE_CLUSTER:
        problem = _gke_encryption_problem(res.props)
    else:
        return
    if problem:
        report(f"{resource_label(res.type, res.name)}: {problem}")


CLUSTER_SECRETS_ENCRYPTION = resource_policy(
    name="cluster-secrets-encryption",
    description=(
        "Kubernetes secrets are envelope-encrypted with a customer-managed KMS key (EKS "
        "encryptionConfig for 'secrets', GKE databaseEncryption ENCRYPTED)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_encryption,
    applies_to=_CLUSTERS,
)


def _missing_items(value: Any, required: list[str]) -> list[str] | None:
    """Required entries absent from a literal list; None when the list is unknown."""
    if is_unknown(value):
        return None
    present = {str(v) for v in value} if isinstance(value, list) else set()
    return [item for item in required if item not in present]


def _validate_logging(res: Resource, report: Report, config: Mapping[str, Any]) -> None:
    if res.type == EKS_CLUSTER:
        path, required = "enabledClusterLogTypes", config.get("eksLogTypes")
        required = list(required or _DEFAULT_EKS_LOG_TYPES)
    elif res.type == GKE_CLUSTER:
        path, required = "loggingConfig.enableComponents", config.get("gkeComponents")
        required = list(required or _DEFAULT_GKE_LOG_COMPONENTS)
    else:
        return
    value = lookup(res.props, path)
    missing = _missing_items(value, required)
    label = resource_label(res.type, res.name)
    if missing is None:
        report(
            f"{label}: {path} is unknown during preview; it must be a literal list "
            f"including {describe(required)}"
        )
    elif missing:
        report(
            f"{label}: {path} is {describe(value)}, missing {describe(missing)}. Add them "
            "so control-plane activity is auditable"
        )


CLUSTER_CONTROL_PLANE_LOGGING = resource_policy(
    name="cluster-control-plane-logging",
    description=(
        "Control-plane logs are shipped: EKS enabledClusterLogTypes include eksLogTypes "
        "(default api, audit, authenticator); GKE loggingConfig.enableComponents include "
        "gkeComponents (default SYSTEM_COMPONENTS, APISERVER)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_logging,
    applies_to=_CLUSTERS,
    config_schema=PolicyConfigSchema(
        properties={
            "eksLogTypes": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
                },
                "default": _DEFAULT_EKS_LOG_TYPES,
            },
            "gkeComponents": {
                "type": "array",
                "items": {"type": "string"},
                "default": _DEFAULT_GKE_LOG_COMPONENTS,
            },
        }
    ),
)


def _gke_flag_policy_check(
    res: Resource, report: Report, path: str, *, default: bool, why: str, fix: str
) -> None:
    value = lookup(res.props, path)
    if value is True or (value is MISSING and default):
        return
    report(f"{resource_label(res.type, res.name)}: {path} is {describe(value)}; {why}. {fix}")


def _validate_private_nodes(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    _gke_flag_policy_check(
        res,
        report,
        "privateClusterConfig.enablePrivateNodes",
        default=False,
        why="nodes would get public IP addresses",
        fix="Set privateClusterConfig.enablePrivateNodes: true (egress through Cloud NAT)",
    )


GKE_PRIVATE_NODES = resource_policy(
    name="gke-private-nodes",
    description=(
        "GKE nodes have only private IP addresses (privateClusterConfig.enablePrivateNodes)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_private_nodes,
    applies_to=of_types(GKE_CLUSTER),
)


def _validate_shielded(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    _gke_flag_policy_check(
        res,
        report,
        "enableShieldedNodes",
        default=True,
        why="nodes would boot without Secure Boot and integrity monitoring",
        fix="Set enableShieldedNodes: true (or leave it unset: GKE's default is on)",
    )


GKE_SHIELDED_NODES = resource_policy(
    name="gke-shielded-nodes",
    description="GKE shielded nodes stay on (enableShieldedNodes is not false).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_shielded,
    applies_to=of_types(GKE_CLUSTER),
)


def _validate_workload_identity(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    pool = lookup(res.props, "workloadIdentityConfig.workloadPool")
    if is_unknown(pool) or (isinstance(pool, str) and pool.endswith(".svc.id.goog")):
        return  # an unknown pool (a project id still to be created) is reported as unverifiable
    report(
        f"{resource_label(res.type, res.name)}: workloadIdentityConfig.workloadPool is "
        f"{describe(pool)}; pods would use the node's service account. Set it to "
        '"<project>.svc.id.goog"'
    )


GKE_WORKLOAD_IDENTITY = resource_policy(
    name="gke-workload-identity",
    description=(
        "GKE Workload Identity is on (workloadIdentityConfig.workloadPool = "
        "<project>.svc.id.goog), so pods never borrow the node's service account."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_workload_identity,
    applies_to=of_types(GKE_CLUSTER),
)


def _validate_deletion_protection(res: Resource, report: Report, config: Mapping[str, Any]) -> None:
    if not is_prod(config):
        return
    value = res.props.get("deletionProtection", MISSING)
    # GKE protects clusters unless told otherwise; EKS does not.
    protected = value is True or (value is MISSING and res.type == GKE_CLUSTER)
    if not protected:
        report(
            f"{resource_label(res.type, res.name)}: deletionProtection is {describe(value)} in "
            "environment prod; a replace or `pulumi destroy` would delete the cluster and every "
            "workload on it. Set deletionProtection: true"
        )


CLUSTER_DELETION_PROTECTION = resource_policy(
    name="cluster-deletion-protection",
    description=(
        "In prod (this policy's 'environment' config), EKS and GKE clusters have deletion "
        "protection on. Other environments are not checked."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_deletion_protection,
    applies_to=_CLUSTERS,
    config_schema=ENVIRONMENT_CONFIG,
)


def _bootstrap_form(res: Resource) -> bool:
    """A Cilium release installed without waiting: ``skipAwait`` true, ``atomic`` false.

    The only form an EKS CNI release can take: it goes in before any node exists (node groups
    need a CNI to turn ACTIVE, terraform-aws-eks #3106), and ``atomic`` would turn Helm's
    wait back on (pulumi-kubernetes helm.v3.Release: "`skipAwait` will be disabled
    automatically if atomic is used"; helm pkg/action/install.go). What atomic protected is
    then proven by the deploy rehearsal: node groups and a readiness point must follow it."""
    return (
        is_cilium_release(res.props)
        and res.props.get("skipAwait") is True
        and res.props.get("atomic", MISSING) in (False, MISSING)
    )


def _validate_fails_safely(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    label = resource_label(res.type, res.name)
    cleanup = res.props.get("cleanupOnFail", MISSING)
    if cleanup is not True:
        report(
            f"{label}: cleanupOnFail is {describe(cleanup)}; a failed upgrade would leave the "
            "resources it created behind. Set cleanupOnFail: true"
        )
    atomic = res.props.get("atomic", MISSING)
    if atomic is True or _bootstrap_form(res):
        return
    report(
        f"{label}: atomic is {describe(atomic)} and skipAwait is "
        f"{describe(res.props.get('skipAwait', MISSING))}; a failed install or upgrade would "
        "leave a half-applied release (for Cilium: a cluster without working networking). Set "
        "atomic: true, or, only for a Cilium release installed before its nodes exist, "
        "skipAwait: true with atomic: false (the deploy rehearsal then requires node groups "
        "and a readiness point after it)"
    )


HELM_RELEASE_FAILS_SAFELY = resource_policy(
    name="helm-release-fails-safely",
    description=(
        "Helm releases set cleanupOnFail and are atomic (a failed install or upgrade rolls "
        "back); the one exception is a Cilium release installed before its nodes exist, which "
        "cannot wait (skipAwait true, atomic false) and whose readiness the deploy rehearsal "
        "requires to be proven later by node groups and a readiness point."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_fails_safely,
    applies_to=of_types(HELM_RELEASE),
)

_ISTIO_LABELS: Final = ("istio-injection", "istio.io/rev", "sidecar.istio.io/inject")
_ISTIO_CHARTS: Final = {"base", "istiod", "gateway", "cni", "ztunnel", "istio-ingress"}


def _istio_markers(props: dict[str, Any]) -> list[str]:
    found = []
    for meta_path in ("metadata", "spec.template.metadata"):
        for kind in ("labels", "annotations"):
            entries = lookup(props, f"{meta_path}.{kind}")
            if not isinstance(entries, dict):
                continue
            found += [
                f"{meta_path}.{kind}[{key}]={describe(entries[key])}"
                for key in _ISTIO_LABELS
                if key in entries
            ]
    return found


def _istio_chart(props: dict[str, Any]) -> bool:
    chart = str(props.get("chart", ""))
    repo = str(lookup(props, "repositoryOpts.repo"))
    return "istio" in chart or ("istio" in repo and chart.rsplit("/", 1)[-1] in _ISTIO_CHARTS)


def _validate_istio(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    label = resource_label(res.type, res.name)
    group = res.type.split(":")[1].split("/")[0]
    if group.endswith("istio.io"):
        report(
            f"{label}: an Istio custom resource ({res.type}) in a mesh-less stack; it does "
            "nothing without istiod. Translate it to a CiliumNetworkPolicy and remove it"
        )
        return
    if res.type == HELM_RELEASE and _istio_chart(res.props):
        report(
            f"{label}: installs the Istio chart {describe(res.props.get('chart'))}. "
            "Remove the release; Cilium and its Envoy replace the mesh"
        )
        return
    for marker in _istio_markers(res.props):
        report(
            f"{label}: carries the Istio sidecar marker {marker}. Remove it: no sidecars "
            "are injected in a mesh-less cluster and the label misleads readers"
        )


NO_ISTIO_LEFTOVERS = resource_policy(
    name="no-istio-leftovers",
    description=(
        "No Istio leftovers in a mesh-less stack: no Istio custom resources (*.istio.io), no "
        "Istio Helm charts, no istio-injection / istio.io/rev / sidecar.istio.io/inject "
        "labels or annotations."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_istio,
    applies_to=kubernetes_objects,
)
