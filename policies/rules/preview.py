"""Values a policy cannot verify during preview because another resource computes them.

Design choice: the policy that owns such a value skips it while it is unknown, and this one
(advisory, in every environment) reports it. Making the owner fail instead would block the
first preview of every new stack (the API host of a cluster not yet created is always
unknown); passing it silently would hide that nothing was checked. Values that must be
literal (digests, chart version, kubeProxyReplacement) are not listed here: their owners fail
when they are unknown.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import EnforcementLevel

from ._policy import Report, Resource, of_types, resource_policy
from ._values import is_encrypted, is_unknown, resource_label
from .cilium import is_cilium_release
from .kinds import EKS_CLUSTER, GKE_CLUSTER, HELM_RELEASE

__all__ = ["COMPUTED_FIELDS", "PREVIEW_UNVERIFIABLE_VALUES"]

# Resource type -> (property path, policy that checks it once known). "[]" walks a list.
COMPUTED_FIELDS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    HELM_RELEASE: (("values.k8sServiceHost", "kube-proxy-replacement-strict"),),
    EKS_CLUSTER: (
        ("vpcConfig.publicAccessCidrs", "cluster-api-endpoint-restricted"),
        ("vpcConfig.publicAccessCidrs[]", "cluster-api-endpoint-restricted"),
        ("encryptionConfig.provider.keyArn", "cluster-secrets-encryption"),
    ),
    GKE_CLUSTER: (
        ("masterAuthorizedNetworksConfig.cidrBlocks", "cluster-api-endpoint-restricted"),
        (
            "masterAuthorizedNetworksConfig.cidrBlocks[].cidrBlock",
            "cluster-api-endpoint-restricted",
        ),
        ("databaseEncryption.keyName", "cluster-secrets-encryption"),
        ("workloadIdentityConfig.workloadPool", "gke-workload-identity"),
    ),
}


def _walk(data: Any, keys: list[str], here: str) -> Iterator[tuple[str, Any]]:
    """(concrete path, value) for a path with "[]" list steps; stops at unknowns."""
    if not keys or is_unknown(data):
        yield here, data
        return
    key, rest = keys[0], keys[1:]
    if key.endswith("[]"):
        items = data.get(key[:-2]) if isinstance(data, dict) else None
        if is_unknown(items):
            yield f"{here}{key[:-2]}", items
            return
        for index, item in enumerate(items if isinstance(items, list) else []):
            yield from _walk(item, rest, f"{here}{key[:-2]}[{index}].")
    elif isinstance(data, dict) and key in data:
        yield from _walk(data[key], rest, f"{here}{key}.")


def _validate(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    fields = COMPUTED_FIELDS[res.type]
    if res.type == HELM_RELEASE and not is_cilium_release(res.props):
        return
    reported: set[str] = set()
    for path, owner in fields:
        for concrete, value in _walk(res.props, path.split("."), ""):
            concrete = concrete.rstrip(".")
            # An encrypted secret is not a preview unknown: secret-values-readable reports it.
            if is_unknown(value) and not is_encrypted(value) and concrete not in reported:
                reported.add(concrete)
                report(
                    f"{resource_label(res.type, res.name)}: {concrete} is computed from another "
                    f"resource and unknown during preview, so policy '{owner}' could not verify "
                    "it. It is checked by `pulumi up` (policies run again with known values) "
                    "and by the gate on a stack export after the update"
                )


PREVIEW_UNVERIFIABLE_VALUES = resource_policy(
    name="preview-unverifiable-values",
    description=(
        "Reports values that other policies could not verify because they are computed from "
        "resources not yet created (e.g. the API host of a new cluster). Advisory by design: "
        "it says what was not checked without blocking the first preview of a new stack."
    ),
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate,
    applies_to=of_types(*COMPUTED_FIELDS),
)
