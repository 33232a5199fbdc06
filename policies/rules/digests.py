"""Digest pinning: what runs on the clusters is exactly what was reviewed.

A tag can be re-pushed; a sha256 digest cannot. These policies hold the Cilium release to the
project's digest catalog and every workload we declare to ``@sha256:`` references.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyConfigSchema

from ._policy import Report, Resource, kubernetes_objects, of_types, resource_policy
from ._values import DIGEST_RE, MISSING, describe, is_true, is_unknown, lookup, resource_label
from .catalog import load_catalog
from .cilium import IMAGE_SLOTS, ImageSlot, is_cilium_release
from .cilium import operator_digest_key as _operator_digest_key
from .helm_values import chart_paths, container_lists, effective_values, values_problem
from .kinds import HELM_INSTALLS
from .pods import containers, hidden_pod_specs

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
    return effective_values(res.props)


def _digest_key(slot: ImageSlot, values: dict[str, Any]) -> str | None:
    return _operator_digest_key(values) if slot.path == "operator.image" else "digest"


def _slots(version: Any) -> tuple[ImageSlot, ...]:
    """The known slots, plus any image path the chart's templates read that they do not name
    (always checked when set: when the chart renders it is not encoded here)."""
    known = {slot.path for slot in IMAGE_SLOTS}
    extra = tuple(
        ImageSlot(path, f"chart image {path}", lambda _values: False)
        for path in chart_paths(version, "imagePaths")
        if path not in known
    )
    return IMAGE_SLOTS + extra


def _slots_to_check(values: dict[str, Any], version: Any = None) -> Iterator[tuple[ImageSlot, Any]]:
    """Every slot the chart renders (flag true or unknown), plus any block set anyway."""
    for slot in _slots(version):
        block = lookup(values, slot.path)
        if slot.enabled(values) is not False or block is not MISSING:
            yield slot, block


def _pinning_problem(slot: ImageSlot, block: Any, values: dict[str, Any]) -> str | None:
    if isinstance(block, str) and not is_unknown(block):
        # The chart also takes some images as a plain reference string (SPIRE's).
        if _REFERENCE_DIGEST.search(block):
            return None
        return f"the image is {describe(block)}, which is not an @sha256: reference"
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
    unreadable = values_problem(res.props)
    if unreadable:
        report(f"{label}: {unreadable}; no image can be shown to be pinned")
        return
    if not isinstance(values, dict):
        report(
            f"{label}: values is {describe(values)}, so no image can be shown to be pinned. "
            "Pass the chart values as a literal object with every image pinned from "
            "policies/data/cilium-images.json"
        )
        return
    version = res.props.get("version", MISSING)
    for path, listed in container_lists(values, version):
        for problem in _container_list_problems(listed):
            report(
                f"{label}: {path} adds containers to the chart's pods, and {problem}. Pin "
                "the image as repository[:tag]@sha256:<digest> or remove the container"
            )
    for slot, block in _slots_to_check(values, version):
        pinning = _pinning_problem(slot, block, values)
        if pinning:
            digest_key = _digest_key(slot, values) or "digest"
            report(
                f"{label}: the {slot.component} image ({slot.path}) is not pinned by digest: "
                f"{pinning}. Set {slot.path}.useDigest: true and {slot.path}.{digest_key} to the "
                "catalog's sha256 for this chart version (policies/data/cilium-images.json)"
            )


def _container_list_problems(containers: Any) -> Iterator[str]:
    if is_unknown(containers):
        yield "it is unknown during preview"
        return
    if containers in (None, MISSING):
        return
    if not isinstance(containers, list):
        yield f"it is {describe(containers)}, not a list of containers"
        return
    for index, container in enumerate(containers):
        image = container.get("image", MISSING) if isinstance(container, dict) else MISSING
        if isinstance(image, str) and _REFERENCE_DIGEST.search(image):
            continue
        name = container.get("name", index) if isinstance(container, dict) else index
        yield f"container '{name}' uses image {describe(image)}, which is not pinned by digest"


CILIUM_IMAGES_DIGEST_PINNED = resource_policy(
    name="cilium-images-digest-pinned",
    description=(
        "Every image the Cilium Helm release deploys (agent, operator for its cloud, Envoy, "
        "Hubble relay and UI, certgen, node-init, clustermesh-apiserver, SPIRE) sets "
        "useDigest: true and a sha256 digest, so a re-pushed tag cannot change what runs."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_images_pinned,
    applies_to=of_types(*HELM_INSTALLS),
)


def _set_digest(slot: ImageSlot, block: Any, values: dict[str, Any]) -> tuple[str, str] | None:
    """(digest key, digest) the release actually sets for a slot, if it sets a literal one."""
    if isinstance(block, str) and (match := _REFERENCE_DIGEST.search(block)):
        return "override", match.group(1)
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
    for slot, block in _slots_to_check(values, version):
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
    applies_to=of_types(*HELM_INSTALLS),
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
    applies_to=of_types(*HELM_INSTALLS),
)


def _validate_workloads(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    if res.type in HELM_INSTALLS and is_cilium_release(res.props):
        return  # cilium-images-digest-pinned judges the chart's values, slot by slot
    label = resource_label(res.type, res.name)
    for spec_path, value in hidden_pod_specs(res.type, res.props):
        report(
            f"{label}: the pod spec ({spec_path}) is {describe(value)}, so its images "
            "cannot be shown to be pinned. Declare the pod spec literally"
        )
    for container in containers(res.props):
        image = container.image
        if isinstance(image, str) and _REFERENCE_DIGEST.search(image):
            continue
        if is_unknown(image) and container.name == "(all)":
            report(
                f"{label}: {container.path} is unknown during preview; images must be "
                "literal @sha256: references. Declare the containers literally"
            )
            continue
        if image is MISSING and res.type.endswith("Patch"):
            continue  # a patch that leaves the image alone keeps the object's own
        report(
            f"{label}: container '{container.name}' in {container.list_name} "
            f"({container.path}) uses image {describe(image)}, which is not pinned by digest. "
            "Use repository[:tag]@sha256:<digest> (e.g. resolve it with `crane digest <image>`)"
        )


WORKLOAD_IMAGES_DIGEST_PINNED = resource_policy(
    name="workload-images-digest-pinned",
    description=(
        "Every container, init container and ephemeral container image in any Kubernetes "
        "object this stack declares is pinned by @sha256: digest: every pod-bearing kind, "
        "their ...Patch and ...List forms, List objects, ConfigGroups and custom resources "
        "that embed a pod template (found by shape, not by kind)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_workloads,
    # cilium.io policies (thousands in a big stack) never carry a pod.
    applies_to=lambda t: kubernetes_objects(t) and not t.startswith("kubernetes:cilium.io/"),
)
