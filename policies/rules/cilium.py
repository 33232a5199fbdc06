"""What the Cilium 1.16 chart deploys for a given set of values, as the policies need it.

Kept next to the chart facts it encodes (checked against vendor/cilium-chart/
cilium-1.16.19.tgz templates): which image block each component uses, when the chart renders
that component, and which operator digest the chart picks for the cloud.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ._values import MISSING, is_unknown, lookup, truthy_flag
from .contract import IMAGE_SLOT_NAMES, OPERATOR_DEFAULT_DIGEST, OPERATOR_DIGEST_BY_IPAM_FLAG

__all__ = [
    "IMAGE_SLOTS",
    "RENDERED_WHEN",
    "ImageSlot",
    "is_cilium_release",
    "is_preflight_only",
    "operator_digest_key",
]

Flag = bool | None  # None: unknown during preview


def _all(*flags: Flag) -> Flag:
    if any(f is False for f in flags):
        return False
    if any(f is None for f in flags):
        return None
    return True


def _flag(path: str, default: bool) -> Callable[[dict[str, Any]], Flag]:
    return lambda values: truthy_flag(lookup(values, path), default=default)


def _cronjob_certs(values: dict[str, Any], prefix: str) -> Flag:
    method = lookup(values, f"{prefix}.auto.method")
    if is_unknown(method):
        return None
    auto = truthy_flag(lookup(values, f"{prefix}.auto.enabled"), default=True)
    return _all(auto, method == "cronJob")


def _certgen(values: dict[str, Any]) -> Flag:
    # certgen's image only runs as the CronJob/Job of the "cronJob" TLS method (Hubble's or
    # the clustermesh-apiserver's); "helm" and "certmanager" never pull it.
    hubble = _all(
        _flag("hubble.enabled", True)(values),
        _flag("hubble.tls.enabled", True)(values),
        _cronjob_certs(values, "hubble.tls"),
    )
    mesh = _all(
        _flag("clustermesh.useAPIServer", False)(values),
        _cronjob_certs(values, "clustermesh.apiserver.tls"),
    )
    if hubble is True or mesh is True:
        return True
    if hubble is None or mesh is None:
        return None
    return False


def _both(*checks: Callable[[dict[str, Any]], Flag]) -> Callable[[dict[str, Any]], Flag]:
    return lambda values: _all(*(check(values) for check in checks))


_SPIRE = _both(
    _flag("authentication.mutual.spire.enabled", False),
    _flag("authentication.mutual.spire.install.enabled", True),
)


@dataclass(frozen=True)
class ImageSlot:
    """One image block of the chart: its values path and when the chart renders it."""

    path: str
    component: str
    enabled: Callable[[dict[str, Any]], Flag]


# When the chart renders each slot's component (chart templates). The slots themselves, and
# their names, are the contract's (data/contract.json), shared with the program.
RENDERED_WHEN: Final[dict[str, Callable[[dict[str, Any]], Flag]]] = {
    "image": lambda _values: True,
    "operator.image": _flag("operator.enabled", True),
    # 1.16 renders the standalone Envoy DaemonSet unless envoy.enabled is false.
    "envoy.image": _flag("envoy.enabled", True),
    "hubble.relay.image": _both(
        _flag("hubble.enabled", True), _flag("hubble.relay.enabled", False)
    ),
    "hubble.ui.backend.image": _both(
        _flag("hubble.enabled", True), _flag("hubble.ui.enabled", False)
    ),
    "hubble.ui.frontend.image": _both(
        _flag("hubble.enabled", True), _flag("hubble.ui.enabled", False)
    ),
    "certgen.image": _certgen,
    "nodeinit.image": _flag("nodeinit.enabled", False),
    "clustermesh.apiserver.image": _flag("clustermesh.useAPIServer", False),
    "authentication.mutual.spire.install.agent.image": _SPIRE,
    "authentication.mutual.spire.install.server.image": _SPIRE,
    "authentication.mutual.spire.install.initImage": _SPIRE,
    "preflight.image": _flag("preflight.enabled", False),
}

# A slot the contract gains before this table does is checked as always rendered: demanding a
# pin that is not needed is safe, skipping one that is would not be.
IMAGE_SLOTS: Final[tuple[ImageSlot, ...]] = tuple(
    ImageSlot(path, component, RENDERED_WHEN.get(path, lambda _values: True))
    for path, component in IMAGE_SLOT_NAMES.items()
)

# A chart reference names Cilium when its last path segment is "cilium", with or without a
# version and an archive suffix: "cilium", "oci://quay.io/cilium/charts/cilium",
# "./charts/cilium/", "/tmp/cilium-1.16.19.tgz", "https://x/cilium-1.16.19.tar.gz".
_CILIUM_CHART = re.compile(r"(^|[/:])cilium(-v?\d+\.\d+\.\d+[^/]*)?(\.tgz|\.tar\.gz)?/*$", re.I)
_CILIUM_REPO = re.compile(r"(^|[/.])helm\.cilium\.io(/|$)|/cilium(/|$)", re.I)
# Keys only the Cilium chart reads: a release of a renamed or vendored copy still gives
# itself away by its values.
_CILIUM_VALUE_KEYS: Final = ("kubeProxyReplacement", "k8sServiceHost", "cni", "bpf", "hubble")


def is_cilium_release(props: dict[str, Any]) -> bool:
    """A Helm release or chart of Cilium: by chart name (repo name, OCI path, local folder or
    archive), by its repository (helm.cilium.io), or by values only Cilium's chart reads."""
    chart = props.get("chart")
    if isinstance(chart, str) and _CILIUM_CHART.search(chart.strip()):
        return True
    repo = lookup(props, "repositoryOpts.repo")
    if isinstance(repo, str) and _CILIUM_REPO.search(repo.strip()):
        return True
    values = props.get("values")
    if isinstance(values, dict):
        hits = sum(key in values for key in _CILIUM_VALUE_KEYS)
        return hits >= 2
    return False


def is_preflight_only(props: dict[str, Any]) -> bool:
    """A release of the Cilium chart that renders only the upgrade guide's pre-flight check
    (``preflight.enabled`` with ``agent: false`` and the operator off): it pre-pulls the next
    version's image and validates policies, and is not a Cilium install (no agent, no CNI)."""
    values = props.get("values")
    return (
        isinstance(values, dict)
        and values.get("agent") is False
        and lookup(values, "operator.enabled") is False
        and lookup(values, "preflight.enabled") is True
    )


def operator_digest_key(values: dict[str, Any]) -> str | None:
    """The operator digest the chart uses: it follows the IPAM cloud (cilium-operator
    _helpers.tpl), not the Kubernetes distribution. None when a deciding flag is unknown."""
    for flag, key in OPERATOR_DIGEST_BY_IPAM_FLAG:
        value = lookup(values, flag)
        if is_unknown(value):
            return None
        if value is not MISSING and truthy_flag(value, default=False):
            return key
    return OPERATOR_DEFAULT_DIGEST
