"""Strict mode: Cilium replaces kube-proxy, and nothing brings kube-proxy (or a second CNI) back.

Cilium 1.16 accepts only ``kubeProxyReplacement: true|false``; the old "strict"/"partial"
modes were removed and a chart given one of them does not do what its author meant. With
kube-proxy gone the agent cannot reach the API server through the ``kubernetes`` Service
ClusterIP, so the host and port must be explicit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pulumi_policy import EnforcementLevel

from ._policy import Report, Resource, kubernetes_objects, of_types, resource_policy
from ._values import MISSING, describe, is_unknown, lookup, resource_label
from .cilium import is_cilium_release
from .contract import GKE_DATAPATHS
from .helm_values import effective_values, values_problem
from .kinds import EKS_ADDON, EKS_CLUSTER, GKE_CLUSTER, GKE_MODE_LABEL, HELM_INSTALLS
from .pods import Container, command_words, containers, objects_in

__all__ = [
    "EKS_NO_BOOTSTRAP_ADDONS",
    "EKS_NO_CONFLICTING_ADDONS",
    "GKE_MODE_STATED",
    "KUBE_PROXY_REPLACEMENT_STRICT",
    "NO_KUBE_PROXY_OBJECTS",
]

_GKE_MODES: Final = GKE_DATAPATHS
_MANAGED: Final = GKE_DATAPATHS["dataplane-v2"]


def _kpr_problem(value: Any) -> str | None:
    if value is True or value == "true":
        return None
    if isinstance(value, str) and value.lower() in ("strict", "partial", "disabled", "probe"):
        return (
            f"kubeProxyReplacement is {describe(value)}: Cilium 1.16 removed the "
            "strict/partial/probe/disabled modes and accepts only true or false"
        )
    if is_unknown(value):
        return "kubeProxyReplacement is unknown during preview; it must be a literal true"
    return f"kubeProxyReplacement is {describe(value)}, so kube-proxy would still be needed"


def _api_endpoint_problems(values: dict[str, Any]) -> list[str]:
    problems = []
    host = lookup(values, "k8sServiceHost")
    # An unknown host (the endpoint of a cluster not yet created) is computed, not wrong:
    # preview-unverifiable-values reports it.
    if not is_unknown(host) and (
        not isinstance(host, str) or host.strip() in ("", "auto") or "://" in host
    ):
        problems.append(
            f"k8sServiceHost is {describe(host)}; without kube-proxy the agent needs the API "
            'server\'s host name or IP, without scheme (not "auto")'
        )
    port = lookup(values, "k8sServicePort")
    valid_port = isinstance(port, int | float) and not isinstance(port, bool) and 0 < port < 65536
    if isinstance(port, str) and port.isdigit():
        valid_port = 0 < int(port) < 65536
    if not valid_port:
        problems.append(f"k8sServicePort is {describe(port)}; it must be a literal port (443)")
    return problems


_KPR_FLAG: Final = re.compile(r"^--kube-proxy-replacement(?:[= ](.*))?$")
_KPR_ENV: Final = "CILIUM_KUBE_PROXY_REPLACEMENT"
# Values the chart passes to the agent and operator verbatim: cilium-config entries
# (extraConfig, rendered after the chart's own keys), command-line flags and environment
# (the agent reads CILIUM_<FLAG> variables as flags).
_ARG_LISTS: Final = ("extraArgs", "operator.extraArgs")
_ENV_LISTS: Final = ("extraEnv", "operator.extraEnv")


def _kpr_overrides(values: dict[str, Any]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    extra = lookup(values, "extraConfig")
    if isinstance(extra, dict) and "kube-proxy-replacement" in extra:
        value = extra["kube-proxy-replacement"]
        if str(value).lower() != "true":
            found.append(("extraConfig.kube-proxy-replacement", value))
    for path in _ARG_LISTS:
        args = lookup(values, path)
        args = [str(a).strip() for a in args] if isinstance(args, list) else []
        for index, arg in enumerate(args):
            match = _KPR_FLAG.match(arg)
            if not match:
                continue
            # "--flag=value", "--flag value", or the value as the next list item.
            value = match.group(1)
            if value is None and index + 1 < len(args) and not args[index + 1].startswith("-"):
                value = args[index + 1]
            if (value or "true").strip().lower() != "true":
                found.append((f"{path}[{index}]", " ".join(args[index : index + 2])))
    for path in _ENV_LISTS:
        env = lookup(values, path)
        for index, entry in enumerate(env if isinstance(env, list) else []):
            named = isinstance(entry, dict) and entry.get("name") == _KPR_ENV
            if named and str(entry.get("value", "")).lower() != "true":
                found.append((f"{path}[{index}]", entry.get("value", MISSING)))
    return found


def _validate_kpr(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    if not is_cilium_release(res.props):
        return
    label = resource_label(res.type, res.name)
    values = effective_values(res.props)
    unreadable = values_problem(res.props)
    if unreadable:
        report(f"{label}: {unreadable}; kubeProxyReplacement cannot be shown to be true")
        return
    if not isinstance(values, dict):
        report(
            f"{label}: values is {describe(values)}; set kubeProxyReplacement: true, "
            "k8sServiceHost and k8sServicePort literally"
        )
        return
    problem = _kpr_problem(lookup(values, "kubeProxyReplacement"))
    if problem:
        report(f"{label}: {problem}. Set kubeProxyReplacement: true")
    for where, value in _kpr_overrides(values):
        report(
            f"{label}: {where} sets kube-proxy-replacement to {describe(value)} behind "
            "kubeProxyReplacement's back (the chart copies it into cilium-config or the "
            "agent's command line, where it wins). Remove it; kubeProxyReplacement: true is "
            "the one switch"
        )
    for problem in _api_endpoint_problems(values):
        report(f"{label}: {problem}. Set it from the cluster's endpoint")


KUBE_PROXY_REPLACEMENT_STRICT = resource_policy(
    name="kube-proxy-replacement-strict",
    description=(
        "The Cilium release replaces kube-proxy completely: kubeProxyReplacement is true (1.16 "
        "removed 'strict'/'partial'), with an explicit k8sServiceHost (not 'auto') and "
        "k8sServicePort so the agent reaches the API server without kube-proxy."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_kpr,
    applies_to=of_types(*HELM_INSTALLS),
)

_CONFLICTING_ADDONS: Final = {
    "kube-proxy": "Cilium's kube-proxy replacement handles Services; a kube-proxy add-on would "
    "program conflicting iptables rules",
    "vpc-cni": "Cilium in ENI mode is the CNI; the AWS VPC CNI would fight it for pod IPs",
}


def _validate_addons(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    label = resource_label(res.type, res.name)
    addon = res.props.get("addonName", MISSING)
    if is_unknown(addon) or addon is MISSING:
        report(
            f"{label}: addonName is {describe(addon)}; it must be literal so a kube-proxy "
            "or vpc-cni add-on can be ruled out. Set addonName literally"
        )
        return
    reason = _CONFLICTING_ADDONS.get(str(addon).strip().lower())
    if reason:
        report(
            f"{label}: add-on {describe(addon)} must not be installed: {reason}. Remove "
            "it from the cluster's `addons:` in the stack config (coredns is installed for you)"
        )


EKS_NO_CONFLICTING_ADDONS = resource_policy(
    name="eks-no-conflicting-addons",
    description=(
        "No EKS add-on named kube-proxy or vpc-cni: Cilium replaces kube-proxy and is the "
        "cluster's CNI (ENI mode)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_addons,
    applies_to=of_types(EKS_ADDON),
)


def _validate_bootstrap(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    value = res.props.get("bootstrapSelfManagedAddons", MISSING)
    if value is False:
        return
    report(
        f"{resource_label(res.type, res.name)}: bootstrapSelfManagedAddons is {describe(value)} "
        "(EKS's default is true), so EKS would install kube-proxy, vpc-cni and CoreDNS "
        "before Cilium. Set bootstrapSelfManagedAddons: false (a create-time setting)"
    )


EKS_NO_BOOTSTRAP_ADDONS = resource_policy(
    name="eks-no-bootstrap-addons",
    description=(
        "EKS clusters are created with bootstrapSelfManagedAddons: false, so no kube-proxy or "
        "vpc-cni is ever deployed next to Cilium."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_bootstrap,
    applies_to=of_types(EKS_CLUSTER),
)


def _object_name(res: Resource) -> Any:
    if res.type in HELM_INSTALLS:
        return res.props.get("name", MISSING)
    return lookup(res.props, "metadata.name")


# kube-proxy's image is ".../kube-proxy" (registry.k8s.io, EKS's ECR "eks/kube-proxy", GKE's
# "kube-proxy-amd64"); its binary is "kube-proxy" and only it takes --proxy-mode.
_KUBE_PROXY_IMAGE: Final = re.compile(r"(^|/)kube-proxy([-_][a-z0-9]+)?([:@]|$)", re.I)
_KUBE_PROXY_ARG: Final = re.compile(r"(^|/|\s)kube-proxy(\s|$)|--proxy-mode\b", re.I)


def _runs_kube_proxy(container: Container) -> str | None:
    """What gives a container away as kube-proxy, or None."""
    if isinstance(container.image, str) and _KUBE_PROXY_IMAGE.search(container.image.strip()):
        return f"runs the image {describe(container.image)}"
    for key, word in command_words(container):
        if _KUBE_PROXY_ARG.search(word):
            return f"runs {describe(word)} ({key})"
    return None


def _kube_proxy_signs(res: Resource) -> list[str]:
    signs = []
    names = [_object_name(res)] + [lookup(o, "metadata.name") for o in objects_in(res.props)]
    for name in dict.fromkeys(n for n in names if isinstance(n, str)):
        if name.strip().lower().startswith("kube-proxy"):
            signs.append(f"declares an object named {describe(name)}")
    chart = res.props.get("chart") if res.type in HELM_INSTALLS else None
    if isinstance(chart, str) and re.search(r"kube-proxy", chart, re.I):
        signs.append(f"installs the chart {describe(chart)}")
    for container in containers(res.props):
        sign = _runs_kube_proxy(container)
        if sign:
            signs.append(f"container '{container.name}' ({container.path}) {sign}")
    return signs


def _validate_kube_proxy_objects(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    if res.type in HELM_INSTALLS and is_cilium_release(res.props):
        return
    signs = _kube_proxy_signs(res)
    if signs:
        report(
            f"{resource_label(res.type, res.name)}: deploys kube-proxy: {'; '.join(signs)}. "
            "Cilium's kube-proxy replacement makes kube-proxy redundant and its iptables "
            "rules would shadow Cilium's. Remove it"
        )


NO_KUBE_PROXY_OBJECTS = resource_policy(
    name="no-kube-proxy-objects",
    description=(
        "The stack declares no kube-proxy in any shape: no Kubernetes object or Helm release "
        "named kube-proxy, and no container (in any kind, patch or list) that runs the "
        "kube-proxy image or binary or takes --proxy-mode."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_kube_proxy_objects,
    applies_to=kubernetes_objects,
)


def _validate_gke_mode(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    label = resource_label(res.type, res.name)
    mode = lookup(res.props, f"resourceLabels.{GKE_MODE_LABEL}")
    datapath = res.props.get("datapathProvider", MISSING)
    if mode not in _GKE_MODES:
        report(
            f"{label}: resourceLabels[{GKE_MODE_LABEL}] is {describe(mode)}; state the mode "
            'as "cilium" (own Cilium release) or "dataplane-v2" (Google-managed)'
        )
        return
    if is_unknown(datapath):
        report(f"{label}: datapathProvider is unknown during preview; it must be literal")
    elif mode == "dataplane-v2" and datapath != _MANAGED:
        report(
            f"{label}: mode dataplane-v2 but datapathProvider is {describe(datapath)}; set "
            f"datapathProvider: {_MANAGED}"
        )
    elif mode == "cilium" and datapath == _MANAGED:
        report(
            f"{label}: mode cilium but datapathProvider is {_MANAGED}: Google's managed "
            f"Cilium and our own release would both own the datapath. Use {_GKE_MODES['cilium']} "
            "or switch the mode to dataplane-v2"
        )


GKE_MODE_STATED = resource_policy(
    name="gke-mode-stated",
    description=(
        f"Each GKE cluster states its Cilium mode in the {GKE_MODE_LABEL} label ('cilium' or "
        "'dataplane-v2') and its datapathProvider agrees with it."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_gke_mode,
    applies_to=of_types(GKE_CLUSTER),
)
