"""Registry mirrors: a mirror serves the catalog's bytes, and production pulls only from
registries someone operates.

A mirrored image keeps the upstream repository path under the mirror's prefix
(``<mirror>/cilium/cilium`` for ``quay.io/cilium/cilium``, components/registry.py) and must
carry exactly the catalog's digest: a mirror copies upstream images by digest, it never holds a
patched build, so ``allowedDigests`` (the reviewed exception for imageOverrides) does not apply.
Optionally, per environment, ``allowedRegistries`` lists the registry prefixes images may come
from at all; content addressing keeps the bytes right, the allow-list keeps a stack off
registries nobody operates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyConfigSchema

from ._policy import Report, Resource, of_types, resource_policy
from ._values import MISSING, describe, is_unknown, lookup, resource_label
from .catalog import load_catalog
from .cilium import IMAGE_SLOTS, ImageSlot, is_cilium_release, operator_digest_key
from .kinds import HELM_RELEASE

__all__ = ["CILIUM_IMAGE_REGISTRIES", "registry_path"]

# A registry host with an optional repository path, no scheme, tag or digest.
_PREFIX_PATTERN = (
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]+)?"
    r"(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$"
)


def registry_path(repository: str) -> str:
    """The repository path without its registry host (Docker's rule for an implicit host)."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return rest
    return repository if "/" in repository else f"library/{repository}"


def _allowed(repository: str, prefixes: list[str]) -> bool:
    return any(repository == p or repository.startswith(p.rstrip("/") + "/") for p in prefixes)


def _digest_key(slot: ImageSlot, values: dict[str, Any]) -> str | None:
    return operator_digest_key(values) if slot.path == "operator.image" else "digest"


def _check_mirror(
    label: str,
    slot: ImageSlot,
    block: dict[str, Any],
    values: dict[str, Any],
    version: str,
    report: Report,
) -> None:
    upstream = load_catalog().versions.get(version, {}).get(slot.path)
    repository = block.get("repository")
    if not isinstance(upstream, dict) or not isinstance(repository, str):
        return
    source = str(upstream.get("repository"))
    if repository == source or not repository.endswith("/" + registry_path(source)):
        return  # upstream itself, or an imageOverride of another image (digests policies)
    key = _digest_key(slot, values)
    if key is None:
        report(
            f"{label}: {slot.path} is mirrored to {repository} but the operator's cloud is "
            "unknown, so its digest cannot be compared with the catalog's"
        )
        return
    expected = upstream.get(key)
    digest = block.get(key, MISSING)
    if digest != expected:
        report(
            f"{label}: {slot.path}.repository {repository} mirrors {source}, but {key} is "
            f"{describe(digest)} and the catalog pins {expected} for chart {version}. A mirror "
            "must serve the upstream bytes: copy the image by digest (`uv run meshless images`) "
            "and keep the catalog's digest"
        )


def _check_allowed(
    label: str, slot: ImageSlot, block: dict[str, Any], prefixes: list[str], report: Report
) -> None:
    repository = block.get("repository", MISSING)
    if isinstance(repository, str) and _allowed(repository, prefixes):
        return
    shown = describe(repository) if not isinstance(repository, str) else repository
    reason = " (unknown during preview)" if is_unknown(repository) else ""
    report(
        f"{label}: the {slot.component} image ({slot.path}) comes from {shown}{reason}, which "
        f"is not under an allowed registry ({', '.join(prefixes)}). Point the stack's "
        "imageMirror at an allowed registry, or add the registry to allowedRegistries in this "
        "environment's policy config in a reviewed change"
    )


def _validate(res: Resource, report: Report, config: Mapping[str, Any]) -> None:
    if not is_cilium_release(res.props):
        return
    values = res.props.get("values", MISSING)
    version = res.props.get("version", MISSING)
    if not isinstance(values, dict) or not isinstance(version, str):
        return  # the digest policies report values or versions they cannot read
    label = resource_label(res.type, res.name)
    prefixes = [str(p) for p in config.get("allowedRegistries", []) or []]
    for slot in IMAGE_SLOTS:
        block = lookup(values, slot.path)
        if slot.enabled(values) is False or not isinstance(block, dict):
            continue  # not rendered; an unreadable block is the pinning policy's to report
        if block.get("override") not in (None, MISSING, ""):
            continue  # an override reference bypasses repository (digest policies check it)
        _check_mirror(label, slot, block, values, version, report)
        if prefixes:
            _check_allowed(label, slot, block, prefixes, report)


CILIUM_IMAGE_REGISTRIES = resource_policy(
    name="cilium-image-registries",
    description=(
        "A Cilium image pulled from a registry mirror carries exactly the catalog's digest for "
        "that image (no allowedDigests exception), and, when allowedRegistries is set for the "
        "environment, every rendered Cilium image comes from one of those registries."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate,
    applies_to=of_types(HELM_RELEASE),
    config_schema=PolicyConfigSchema(
        properties={
            "allowedRegistries": {
                "type": "array",
                "items": {"type": "string", "pattern": _PREFIX_PATTERN},
                "default": [],
                "description": (
                    "Registry prefixes (host and optional path, e.g. "
                    "123456789012.dkr.ecr.us-east-1.amazonaws.com/quay.io) every Cilium image "
                    "must come from; empty allows any registry."
                ),
            }
        }
    ),
)
