"""Digest pinning: what runs on the clusters is exactly what was reviewed.

A tag can be re-pushed; a sha256 digest cannot. These policies hold the Cilium release to the
project's digest catalog and every workload we declare to ``@sha256:`` references.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyConfigSchema

from ._policy import Report, Resource, of_types, resource_policy
from ._values import DIGEST_RE, MISSING, describe, is_true, is_unknown, lookup, resource_label
from .catalog import load_catalog
from .cilium import IMAGE_SLOTS, ImageSlot, is_cilium_release
from .cilium import operator_digest_key as _operator_digest_key
from .kinds import HELM_RELEASE

__all__ = [
    "CHART_VERSION_EXACT",
    "CILIUM_DIGESTS_MATCH_CATALOG",
    "CILIUM_IMAGES_DIGEST_PINNED",
    "WORKLOAD_IMAGES_DIGEST_PINNED",
]

_EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_REFERENCE_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


def _cilium_values(res: Resource) -> Any | None:
    """The release's values when it is a Cilium release, else None."""
    if not is_cilium_release(res.props):
        return None
    return res.props.get("values", MISSING)


def _digest_key(slot: ImageSlot, values: dict[str, Any]) -> str | None:
    return _operator_digest_key(values) if slot.path == "operator.image" else "digest"


def _slots_to_check(values: dict[str, Any]) -> Iterator[tuple[ImageSlot, Any]]:
    """Every slot the chart renders (flag true or unknown), plus any block set anyway."""
    for slot in IMAGE_SLOTS:
        block = lookup(values, slot.path)
        if slot.enabled(values) is not False or block is not MISSING:
            yield slot, block


def _pinning_problem(slot: ImageSlot, block: Any, values: dict[str, Any]) -> str | None:
    if block is MISSING or is_unknown(block) or not isinstance(block, dict):
        return f"the image block is {describe(block)}"
    override = block.get("override")
    if override not in (None, MISSING, ""):
        if is_unknown(override) or not _REFERENCE_DIGEST.search(str(override)):
            return f"override is {describe(override)}, which is not an @sha256: reference"
        return None
    problems = []
    if not is_true(block.get("useDigest", MISSING)):
        problems.append(f"useDigest is {describe(block.get('useDigest', MISSING))}")
    key = _digest_key(slot, values)
    if key is None:
        problems.append("the operator's cloud (eni/azure/alibabacloud.enabled) is unknown")
    else:
        digest = block.get(key, MISSING)
        if not (isinstance(digest, str) and DIGEST_RE.match(digest)):
            problems.append(f"{key} is {describe(digest)}")
    return ", ".join(problems) or None


def _validate_images_pinned(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    values = _cilium_values(res)
    if values is None:
        return
    label = resource_label(res.type, res.name)
    if not isinstance(values, dict):
        report(
            f"{label}: values is {describe(values)}, so no image can be shown to be pinned. "
            "Pass the chart values as a literal object with every image pinned from "
            "policies/data/cilium-images.json"
        )
        return
    for slot, block in _slots_to_check(values):
        problem = _pinning_problem(slot, block, values)
        if problem:
            key = _digest_key(slot, values) or "digest"
            report(
                f"{label}: the {slot.component} image ({slot.path}) is not pinned by digest: "
                f"{problem}. Set {slot.path}.useDigest: true and {slot.path}.{key} to the "
                "catalog's sha256 for this chart version (policies/data/cilium-images.json)"
            )


CILIUM_IMAGES_DIGEST_PINNED = resource_policy(
    name="cilium-images-digest-pinned",
    description=(
        "Every image the Cilium Helm release deploys (agent, operator for its cloud, Envoy, "
        "Hubble relay and UI, certgen, node-init, clustermesh-apiserver, SPIRE) sets "
        "useDigest: true and a sha256 digest, so a re-pushed tag cannot change what runs."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_images_pinned,
    applies_to=of_types(HELM_RELEASE),
)


def _set_digest(slot: ImageSlot, block: Any, values: dict[str, Any]) -> tuple[str, str] | None:
    """(digest key, digest) the release actually sets for a slot, if it sets a literal one."""
    if not isinstance(block, dict):
        return None
    override = block.get("override")
    if isinstance(override, str) and (match := _REFERENCE_DIGEST.search(override)):
        return "override", match.group(1)
    key = _digest_key(slot, values)
    digest = block.get(key) if key else None
    if isinstance(digest, str) and DIGEST_RE.match(digest) and key:
        return key, digest
    return None


def _validate_catalog(res: Resource, report: Report, config: Mapping[str, Any]) -> None:
    values = _cilium_values(res)
    if values is None:
        return
    label = resource_label(res.type, res.name)
    catalog = load_catalog()
    version = res.props.get("version", MISSING)
    if catalog.error:
        report(
            f"{label}: the digest catalog is unusable ({catalog.error}); set "
            "MESHLESS_DIGEST_CATALOG or restore policies/data/cilium-images.json"
        )
        return
    if not isinstance(version, str) or version not in catalog.versions:
        known = ", ".join(sorted(catalog.versions))
        report(
            f"{label}: chart version {describe(version)} has no entry in the digest catalog "
            f"{catalog.path} (known: {known}), so its digests cannot be checked. Use a "
            "catalogued version or add the version's images to the catalog in a reviewed change"
        )
        return
    if not isinstance(values, dict):
        return  # cilium-images-digest-pinned reports values that are not a literal object
    allowed = {str(d) for d in config.get("allowedDigests", []) or []}
    for slot, block in _slots_to_check(values):
        found = _set_digest(slot, block, values)
        if found is None:
            continue  # not pinned at all: cilium-images-digest-pinned reports it
        key, digest = found
        catalog_key = _digest_key(slot, values) if key == "override" else key
        expected = catalog.digest(version, slot.path, catalog_key or "digest")
        if digest != expected and digest not in allowed:
            report(
                f"{label}: {slot.path}.{key} is {digest}, but the catalog pins "
                f"{expected or 'no image'} for chart {version}. Use the catalog's digest, or "
                "add this digest to allowedDigests in the policy config with a reviewed reason"
            )


CILIUM_DIGESTS_MATCH_CATALOG = resource_policy(
    name="cilium-digests-match-catalog",
    description=(
        "Each Cilium image digest equals the one the project's digest catalog records for the "
        "release's chart version (policies/data/cilium-images.json), unless the digest is "
        "allow-listed in this policy's config."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_catalog,
    applies_to=of_types(HELM_RELEASE),
    config_schema=PolicyConfigSchema(
        properties={
            "allowedDigests": {
                "type": "array",
                "items": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
                "default": [],
                "description": "Digests accepted although the catalog pins another one.",
            }
        }
    ),
)


def _repository(props: dict[str, Any]) -> Any:
    return lookup(props, "repositoryOpts.repo")


def _validate_chart(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    if not is_cilium_release(res.props):
        return
    label = resource_label(res.type, res.name)
    version = res.props.get("version", MISSING)
    if not (isinstance(version, str) and _EXACT_VERSION.match(version)):
        report(
            f"{label}: chart version is {describe(version)}; Helm would resolve a range or the "
            "latest chart at install time. Set version to an exact catalogued release such as "
            '"1.16.19"'
        )
    chart = str(res.props.get("chart", ""))
    repo = _repository(res.props)
    if chart.startswith("oci://") or chart.endswith(".tgz"):
        # A local archive has no repository: the program installs it only after checking its
        # sha256 against the catalog (components/chart_archive.py).
        return
    if not (isinstance(repo, str) and repo.startswith("https://")):
        report(
            f"{label}: chart repository is {describe(repo)}; the chart must come over TLS from "
            'its publisher. Set repositoryOpts.repo to "https://helm.cilium.io"'
        )


CHART_VERSION_EXACT = resource_policy(
    name="cilium-chart-version-exact",
    description=(
        "The Cilium Helm release names one exact chart version (no range, no 'latest') from an "
        "https chart repository, so a preview shows exactly what an update will install."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_chart,
    applies_to=of_types(HELM_RELEASE),
)

_POD_SPEC_PATHS = {
    "kubernetes:core/v1:Pod": "spec",
    "kubernetes:apps/v1:Deployment": "spec.template.spec",
    "kubernetes:apps/v1:DaemonSet": "spec.template.spec",
    "kubernetes:apps/v1:StatefulSet": "spec.template.spec",
    "kubernetes:apps/v1:ReplicaSet": "spec.template.spec",
    "kubernetes:batch/v1:Job": "spec.template.spec",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.spec",
}
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def _validate_workloads(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    spec_path = _POD_SPEC_PATHS[res.type]
    label = resource_label(res.type, res.name)
    pod_spec = lookup(res.props, spec_path)
    if not isinstance(pod_spec, dict):
        report(
            f"{label}: the pod spec ({spec_path}) is {describe(pod_spec)}, so its images "
            "cannot be shown to be pinned. Declare the pod spec literally"
        )
        return
    for list_name in _CONTAINER_LISTS:
        containers = pod_spec.get(list_name, [])
        if is_unknown(containers):
            report(
                f"{label}: {spec_path}.{list_name} is unknown during preview; images must "
                "be literal @sha256: references. Declare the containers literally"
            )
            continue
        for index, container in enumerate(containers if isinstance(containers, list) else []):
            image = container.get("image", MISSING) if isinstance(container, dict) else MISSING
            if isinstance(image, str) and _REFERENCE_DIGEST.search(image):
                continue
            name = container.get("name", index) if isinstance(container, dict) else index
            report(
                f"{label}: container '{name}' in {list_name} uses image {describe(image)}, "
                "which is not pinned by digest. Use repository[:tag]@sha256:<digest> "
                "(e.g. resolve it with `crane digest <image>`)"
            )


WORKLOAD_IMAGES_DIGEST_PINNED = resource_policy(
    name="workload-images-digest-pinned",
    description=(
        "Every container and init container image in the Kubernetes workloads this stack "
        "declares (Pod, Deployment, DaemonSet, StatefulSet, ReplicaSet, Job, CronJob) is "
        "pinned by @sha256: digest."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_workloads,
    applies_to=of_types(*_POD_SPEC_PATHS),
)
