"""`meshless verify`: check a live cluster through the Kubernetes API, one verdict per check.

What the seed did by hand (`cilium status`, `kubectl get ds kube-proxy`, `hubble observe`) as
checks on API objects, read with the official `kubernetes` client (infra/kube_access.py). Each
check says which object it read, so a reader can repeat it with kubectl:

- ``kube-proxy``: DaemonSet kube-system/kube-proxy and pods labelled k8s-app/component=kube-proxy.
- ``cilium-agents``, ``cilium-envoy``: the DaemonSets' status (every desired pod ready, updated
  and available, the latest generation observed). Helm's own readiness check subtracts
  maxUnavailable (helm pkg/kube/ready.go); this one does not.
- ``cilium-operator``, ``hubble-relay``, ``hubble-ui``: the Deployments' status.
- ``kpr-config``: ConfigMap kube-system/cilium-config, key ``kube-proxy-replacement``.
- ``kpr-agents``: no API object carries an agent's effective kube-proxy replacement (CiliumNode
  has no such field; `cilium-dbg status` inside the pod does, which needs exec). What the API
  does show: every agent pod is Ready and its cilium-agent container started after
  cilium-config was last written (the ConfigMap's managedFields times), so each agent loaded
  the setting the previous check read.
- ``image-digests``: every container of every Cilium pod, by the digest the kubelet reports
  (status.containerStatuses[].imageID), against the digest catalog for the chart version.
- ``network-policies``: CiliumNetworkPolicies. Cilium 1.16 no longer writes per-node
  enforcement into CNP status (status.nodes was removed: cilium/cilium#29395, #32877); what
  it writes is the operator's validation, condition ``Valid`` (cilium/cilium
  operator/pkg/networkpolicy/validator.go). So: every expected CNP exists and is Valid=True.
- ``no-istio``: no pod with an istio-proxy/istio-init container, no namespace labelled
  istio-injection or istio.io/rev.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from components.catalog import pins_for

__all__ = [
    "CHECKS",
    "CheckResult",
    "ClusterExpectations",
    "KubeReader",
    "catalog_digests",
    "run_checks",
]

Status = Literal["pass", "fail", "skip"]
JSON = dict[str, Any]
NS = "kube-system"

# Pod selectors of the chart's components (Cilium 1.16/1.17 chart templates).
AGENT_SELECTOR = "k8s-app=cilium"
CILIUM_POD_SELECTORS = {
    "agent": AGENT_SELECTOR,
    "operator": "io.cilium/app=operator",
    "envoy": "k8s-app=cilium-envoy",
    "hubble-relay": "k8s-app=hubble-relay",
    "hubble-ui": "k8s-app=hubble-ui",
    "node-init": "app=cilium-node-init",  # GKE
    "clustermesh-apiserver": "k8s-app=clustermesh-apiserver",  # when ClusterMesh is on
}
ISTIO_CONTAINERS = ("istio-proxy", "istio-init", "istio-validation")
ISTIO_NAMESPACE_LABELS = ("istio-injection", "istio.io/rev")


class KubeReader(Protocol):
    """What the checks read; ``None`` for an object that does not exist (404)."""

    def get(self, kind: str, name: str, namespace: str = NS) -> JSON | None: ...

    def list(
        self, kind: str, namespace: str | None = NS, selector: str | None = None
    ) -> list[JSON]: ...


@dataclass(frozen=True)
class ClusterExpectations:
    """What the stack says this cluster should run."""

    cloud: Literal["eks", "gke"]
    chart_version: str
    envoy: bool = True
    hubble_relay: bool = True
    hubble_ui: bool = True
    # (namespace, name) of every CNP the stack declares; None: not known (no stack given),
    # then every CNP labelled as ours is checked instead.
    policies: tuple[tuple[str, str], ...] | None = None
    policy_labels: dict[str, str] = field(default_factory=dict)
    # Image repository -> pinned digest (catalog_digests); empty means the catalog's.
    digests: dict[str, str] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    status: Status
    evidence: str

    def to_json(self) -> JSON:
        return asdict(self)


Check = Callable[[KubeReader, ClusterExpectations], CheckResult]


def _name(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _few(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def check_kube_proxy(kube: KubeReader, want: ClusterExpectations) -> CheckResult:
    title = "no kube-proxy" if want.cloud == "eks" else "kube-proxy unused (GKE)"
    daemonset = kube.get("daemonsets", "kube-proxy")
    pods = kube.list("pods", NS, "k8s-app=kube-proxy") + kube.list(
        "pods", NS, "component=kube-proxy"
    )
    names = sorted({_name(p) for p in pods})
    if want.cloud == "gke":
        # GKE runs kube-proxy as static pods on every node and it cannot be removed; with
        # kubeProxyReplacement Cilium's eBPF handles Services first and its rules go unused.
        found = f"{len(names)} GKE-managed kube-proxy pod(s)" if names else "no kube-proxy pods"
        extra = "; DaemonSet kube-system/kube-proxy present" if daemonset else ""
        return CheckResult(
            "kube-proxy",
            title,
            "pass",
            f"present but unused: {found}{extra}; Services are handled by Cilium's kube-proxy "
            "replacement (see kpr-config)",
        )
    if daemonset is None and not names:
        return CheckResult(
            "kube-proxy",
            title,
            "pass",
            "DaemonSet kube-system/kube-proxy: NotFound; no kube-proxy pods",
        )
    present = []
    if daemonset is not None:
        desired = (daemonset.get("status") or {}).get("desiredNumberScheduled", 0)
        present.append(f"DaemonSet kube-system/kube-proxy exists ({desired} desired)")
    if names:
        present.append(f"pods {_few(names)}")
    return CheckResult(
        "kube-proxy",
        title,
        "fail",
        "; ".join(present) + ". Delete it (and the kube-proxy EKS add-on, if any): it fights "
        "Cilium's kube-proxy replacement for Services",
    )


def _rollout(kind: str, obj: JSON) -> tuple[bool, str]:
    """Is every desired pod ready, updated and available, the latest spec observed?"""
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation", 0)
    observed = status.get("observedGeneration", 0)
    if kind == "daemonsets":
        desired = status.get("desiredNumberScheduled", 0)
        counts = {
            "ready": status.get("numberReady", 0),
            "updated": status.get("updatedNumberScheduled", 0),
            "available": status.get("numberAvailable", 0),
        }
    else:
        desired = (obj.get("spec") or {}).get("replicas", 1)
        counts = {
            "ready": status.get("readyReplicas", 0),
            "updated": status.get("updatedReplicas", 0),
            "available": status.get("availableReplicas", 0),
        }
    ok = desired > 0 and all(v == desired for v in counts.values()) and observed >= generation
    evidence = f"desired {desired}, " + ", ".join(f"{k} {v}" for k, v in counts.items())
    if observed < generation:
        evidence += f"; generation {generation} not yet observed (controller at {observed})"
    return ok, evidence


_KIND_NAMES = {"daemonsets": "DaemonSet", "deployments": "Deployment"}


def _workload_check(
    check_id: str, title: str, kind: str, name: str, enabled: bool
) -> Callable[[KubeReader], CheckResult]:
    def run(kube: KubeReader) -> CheckResult:
        what = f"{_KIND_NAMES[kind]} kube-system/{name}"
        if not enabled:
            return CheckResult(check_id, title, "skip", "not enabled in the stack config")
        obj = kube.get(kind, name)
        if obj is None:
            return CheckResult(check_id, title, "fail", f"{what}: NotFound")
        ok, evidence = _rollout(kind, obj)
        if ok:
            return CheckResult(check_id, title, "pass", f"{what}: {evidence}")
        return CheckResult(check_id, title, "fail", f"{what}: {evidence}; not every pod is ready")

    return run


def check_agents(kube: KubeReader, want: ClusterExpectations) -> CheckResult:
    return _workload_check("cilium-agents", "Cilium agents", "daemonsets", "cilium", True)(kube)


def check_operator(kube: KubeReader, want: ClusterExpectations) -> CheckResult:
    return _workload_check(
        "cilium-operator", "Cilium operator", "deployments", "cilium-operator", True
    )(kube)


def check_envoy(kube: KubeReader, want: ClusterExpectations) -> CheckResult:
    return _workload_check(
        "cilium-envoy", "Envoy L7 proxy", "daemonsets", "cilium-envoy", want.envoy
    )(kube)


def check_relay(kube: KubeReader, want: ClusterExpectations) -> CheckResult:
    return _workload_check(
        "hubble-relay", "Hubble relay", "deployments", "hubble-relay", want.hubble_relay
    )(kube)


def check_ui(kube: KubeReader, want: ClusterExpectations) -> CheckResult:
    return _workload_check("hubble-ui", "Hubble UI", "deployments", "hubble-ui", want.hubble_ui)(
        kube
    )


def check_kpr_config(kube: KubeReader, want: ClusterExpectations) -> CheckResult:
    title = "kube-proxy replacement configured"
    config = kube.get("configmaps", "cilium-config")
    if config is None:
        return CheckResult(
            "kpr-config", title, "fail", "ConfigMap kube-system/cilium-config: NotFound"
        )
    value = (config.get("data") or {}).get("kube-proxy-replacement")
    evidence = f"ConfigMap kube-system/cilium-config: kube-proxy-replacement={value!r}"
    if value == "true":
        return CheckResult("kpr-config", title, "pass", evidence)
    return CheckResult(
        "kpr-config", title, "fail", evidence + "; Cilium 1.16 needs 'true' (set by the release)"
    )


def _last_write(config: JSON) -> datetime | None:
    times = [_time(m.get("time")) for m in (config.get("metadata") or {}).get("managedFields", [])]
    known = [t for t in times if t is not None]
    return max(known) if known else _time((config.get("metadata") or {}).get("creationTimestamp"))


def _agent_problem(pod: JSON, written: datetime | None) -> str | None:
    node = (pod.get("spec") or {}).get("nodeName", "?")
    where = f"{_name(pod)} on {node}"
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
    )
    if status.get("phase") != "Running" or not ready:
        return f"{where} not ready (phase {status.get('phase')})"
    agent = next(
        (c for c in status.get("containerStatuses", []) if c.get("name") == "cilium-agent"), None
    )
    started = _time(((agent or {}).get("state") or {}).get("running", {}).get("startedAt"))
    if started is None:
        return f"{where}: cilium-agent container not running"
    if written is not None and started < written:
        return f"{where} started {started:%Y-%m-%dT%H:%M:%SZ}, before cilium-config changed"
    return None


def check_kpr_agents(kube: KubeReader, want: ClusterExpectations) -> CheckResult:
    title = "every agent runs that config"
    config = kube.get("configmaps", "cilium-config")
    pods = kube.list("pods", NS, AGENT_SELECTOR)
    if config is None or not pods:
        missing = "ConfigMap cilium-config" if config is None else f"pods {AGENT_SELECTOR}"
        return CheckResult("kpr-agents", title, "fail", f"{missing}: none found in kube-system")
    written = _last_write(config)
    problems = [p for p in (_agent_problem(pod, written) for pod in pods) if p]
    since = f"{written:%Y-%m-%dT%H:%M:%SZ}" if written else "unknown"
    basis = (
        f"agent pods ({AGENT_SELECTOR}) Ready and started after cilium-config was last written "
        f"({since}, its managedFields); the API has no per-agent kube-proxy-replacement field"
    )
    if problems:
        return CheckResult(
            "kpr-agents",
            title,
            "fail",
            f"{len(problems)}/{len(pods)} agent(s) not: {_few(problems)}. Wait for them or run "
            "`kubectl -n kube-system rollout restart ds/cilium`; " + basis,
        )
    return CheckResult("kpr-agents", title, "pass", f"{len(pods)}/{len(pods)} {basis}")


def catalog_digests(
    version: str, cloud: Literal["eks", "gke"], overrides: dict[str, tuple[str, str]] | None = None
) -> dict[str, str]:
    """Image repository -> the digest the stack pins: the catalog's for the chart version,
    except where the stack overrides a component's image with its own digest (values path ->
    (repository, digest))."""
    pins = pins_for(version, cloud)
    by_repo = {pin.repository: pin.digest for pin in pins.values()}
    for path, (repository, digest) in (overrides or {}).items():
        if path in pins:
            by_repo.pop(pins[path].repository, None)
        by_repo[repository] = digest
    return by_repo


def _repository(image: str) -> str:
    """``quay.io/cilium/cilium:v1.16.19@sha256:…`` -> ``quay.io/cilium/cilium``."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def _statuses(pod: JSON) -> Iterable[JSON]:
    status = pod.get("status") or {}
    yield from status.get("initContainerStatuses", []) or []
    yield from status.get("containerStatuses", []) or []


def _digest_problems(pods: list[JSON], by_repo: dict[str, str]) -> tuple[list[str], int]:
    problems: list[str] = []
    checked = 0
    for pod in pods:
        for status in _statuses(pod):
            # imageID is "<repository>@sha256:…" (containerd; dockershim prefixed it with
            # docker-pullable://); `image` may be the spec's reference or a bare image ID.
            image_id = str(status.get("imageID") or "").removeprefix("docker-pullable://")
            if "@" in image_id:
                repo, digest = image_id.split("@", 1)
            else:
                repo, digest = _repository(str(status.get("image") or "")), None
            wanted = by_repo.get(repo)
            where = f"{_name(pod)}/{status.get('name')}"
            checked += 1
            if digest is None:
                problems.append(f"{where}: no digest in imageID {image_id!r}")
            elif wanted is None:
                problems.append(f"{where}: {repo}@{digest} is not an image of the catalog")
            elif digest != wanted:
                problems.append(f"{where}: runs {repo}@{digest}, catalog pins {wanted}")
    return problems, checked


def check_digests(kube: KubeReader, want: ClusterExpectations) -> CheckResult:
    title = f"image digests = catalog {want.chart_version}"
    pods = [
        pod
        for selector in CILIUM_POD_SELECTORS.values()
        for pod in kube.list("pods", NS, selector)
        if (pod.get("status") or {}).get("phase") == "Running"
    ]
    if not pods:
        return CheckResult("image-digests", title, "fail", "no running Cilium pods in kube-system")
    pinned = want.digests or catalog_digests(want.chart_version, want.cloud)
    problems, checked = _digest_problems(pods, pinned)
    basis = f"{checked} container(s) in {len(pods)} running Cilium pod(s), status imageID"
    if problems:
        return CheckResult(
            "image-digests",
            title,
            "fail",
            f"{len(problems)} drifted: {_few(problems, 3)}; {basis}",
        )
    return CheckResult("image-digests", title, "pass", f"all match: {basis}")


def _valid_condition(cnp: JSON) -> JSON | None:
    for condition in (cnp.get("status") or {}).get("conditions", []) or []:
        if condition.get("type") == "Valid":
            return condition
    return None


def _ours(cnp: JSON, labels: dict[str, str]) -> bool:
    have = (cnp.get("metadata") or {}).get("labels") or {}
    return bool(labels) and all(have.get(k) == v for k, v in labels.items())


def check_policies(kube: KubeReader, want: ClusterExpectations) -> CheckResult:
    title = "network policies valid"
    found = {
        ((c.get("metadata") or {}).get("namespace", ""), _name(c)): c
        for c in kube.list("ciliumnetworkpolicies", None)
    }
    if want.policies is not None:
        expected = list(want.policies)
    else:
        expected = sorted(key for key, cnp in found.items() if _ours(cnp, want.policy_labels))
    if not expected:
        return CheckResult("network-policies", title, "skip", "the stack declares no CNP")
    problems = []
    for key in expected:
        cnp = found.get(key)
        label = "/".join(key)
        if cnp is None:
            problems.append(f"{label} missing")
            continue
        condition = _valid_condition(cnp)
        if condition is None:
            problems.append(f"{label} not validated by the operator (no Valid condition)")
        elif condition.get("status") != "True":
            problems.append(f"{label} Valid={condition.get('status')}: {condition.get('message')}")
    basis = "CiliumNetworkPolicy status.conditions[type=Valid] (1.16 has no per-node status)"
    if problems:
        return CheckResult(
            "network-policies",
            title,
            "fail",
            f"{len(problems)}/{len(expected)} not in force: {_few(problems, 3)}; {basis}",
        )
    return CheckResult(
        "network-policies",
        title,
        "pass",
        f"{len(expected)}/{len(expected)} exist, Valid=True; {basis}",
    )


def check_istio(kube: KubeReader, want: ClusterExpectations) -> CheckResult:
    title = "no Istio left"
    problems = []
    for pod in kube.list("pods", None):
        spec = pod.get("spec") or {}
        names = [
            c.get("name")
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
        ]
        sidecars = [n for n in names if n in ISTIO_CONTAINERS]
        if sidecars:
            namespace = (pod.get("metadata") or {}).get("namespace", "?")
            problems.append(f"pod {namespace}/{_name(pod)} has {', '.join(sidecars)}")
    for namespace in kube.list("namespaces", None):
        labels = (namespace.get("metadata") or {}).get("labels") or {}
        for key in ISTIO_NAMESPACE_LABELS:
            if key in labels:
                problems.append(f"namespace {_name(namespace)} labelled {key}={labels[key]}")
    if problems:
        return CheckResult(
            "no-istio",
            title,
            "fail",
            f"{_few(problems, 3)}. Remove the label and restart the pods so they come back "
            "without the sidecar",
        )
    return CheckResult(
        "no-istio", title, "pass", "no istio-proxy/istio-init container, no injection label"
    )


CHECKS: list[tuple[str, Check]] = [
    ("kube-proxy", check_kube_proxy),
    ("cilium-agents", check_agents),
    ("cilium-operator", check_operator),
    ("cilium-envoy", check_envoy),
    ("hubble-relay", check_relay),
    ("hubble-ui", check_ui),
    ("kpr-config", check_kpr_config),
    ("kpr-agents", check_kpr_agents),
    ("image-digests", check_digests),
    ("network-policies", check_policies),
    ("no-istio", check_istio),
]


def run_checks(
    kube: KubeReader,
    want: ClusterExpectations,
    progress: Callable[[int, int, CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Every check in order; an access error (infra/kube_access.AccessError) propagates."""
    results = []
    for index, (_, check) in enumerate(CHECKS, start=1):
        result = check(kube, want)
        results.append(result)
        if progress is not None:
            progress(index, len(CHECKS), result)
    return results
