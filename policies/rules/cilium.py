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

__all__ = [
    "IMAGE_SLOTS",
    "ImageSlot",
    "is_cilium_release",
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


IMAGE_SLOTS: Final[tuple[ImageSlot, ...]] = (
    ImageSlot("image", "Cilium agent", lambda _values: True),
    ImageSlot("operator.image", "Cilium operator", _flag("operator.enabled", True)),
    # 1.16 renders the standalone Envoy DaemonSet unless envoy.enabled is false.
    ImageSlot("envoy.image", "Envoy DaemonSet", _flag("envoy.enabled", True)),
    ImageSlot(
        "hubble.relay.image",
        "Hubble relay",
        _both(_flag("hubble.enabled", True), _flag("hubble.relay.enabled", False)),
    ),
    ImageSlot(
        "hubble.ui.backend.image",
        "Hubble UI backend",
        _both(_flag("hubble.enabled", True), _flag("hubble.ui.enabled", False)),
    ),
    ImageSlot(
        "hubble.ui.frontend.image",
        "Hubble UI frontend",
        _both(_flag("hubble.enabled", True), _flag("hubble.ui.enabled", False)),
    ),
    ImageSlot("certgen.image", "certgen (TLS CronJob)", _certgen),
    ImageSlot("nodeinit.image", "node-init DaemonSet", _flag("nodeinit.enabled", False)),
    ImageSlot(
        "clustermesh.apiserver.image",
        "clustermesh-apiserver",
        _flag("clustermesh.useAPIServer", False),
    ),
    ImageSlot("authentication.mutual.spire.install.agent.image", "SPIRE agent", _SPIRE),
    ImageSlot("authentication.mutual.spire.install.server.image", "SPIRE server", _SPIRE),
    ImageSlot("authentication.mutual.spire.install.initImage", "SPIRE init container", _SPIRE),
    ImageSlot("preflight.image", "pre-flight check", _flag("preflight.enabled", False)),
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


def operator_digest_key(values: dict[str, Any]) -> str | None:
    """The operator digest the chart uses: it follows the IPAM cloud (cilium-operator
    _helpers.tpl), not the Kubernetes distribution. None when a deciding flag is unknown."""
    for flag, key in (
        ("eni.enabled", "awsDigest"),
        ("azure.enabled", "azureDigest"),
        ("alibabacloud.enabled", "alibabacloudDigest"),
    ):
        value = lookup(values, flag)
        if is_unknown(value):
            return None
        if value is not MISSING and truthy_flag(value, default=False):
            return key
    return "genericDigest"
