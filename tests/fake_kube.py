"""A Kubernetes API server on 127.0.0.1 for `meshless verify` tests, and realistic clusters.

`FakeApiServer` is a real HTTP server (http.server in a thread) that answers the REST paths
the official client calls: get and list (label selectors, limit/continue pagination) for core
(/api/v1/...) and group (/apis/<group>/<version>/...) resources, namespaced and cluster-wide,
with `Status` objects for 404, 401 (wrong bearer token) and 403, and an optional delay to make
the client time out. `healthy_cluster` builds the objects of a cluster that runs our Cilium
release the way the chart deploys it (names, labels, DaemonSet/Deployment status, containers
with the catalog's image digests as the kubelet reports them in imageID).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from components.catalog import pins_for

JSON = dict[str, Any]
TOKEN = "verify-test-token"
CONFIG_WRITTEN = "2026-11-30T10:00:00Z"
AGENTS_STARTED = "2026-11-30T10:02:41Z"

# kind -> (group, version, plural, namespaced)
KINDS = {
    "Pod": ("", "v1", "pods", True),
    "ConfigMap": ("", "v1", "configmaps", True),
    "Namespace": ("", "v1", "namespaces", False),
    "Node": ("", "v1", "nodes", False),
    "DaemonSet": ("apps", "v1", "daemonsets", True),
    "Deployment": ("apps", "v1", "deployments", True),
    "CiliumNetworkPolicy": ("cilium.io", "v2", "ciliumnetworkpolicies", True),
}
PLURALS = {plural: kind for kind, (_, _, plural, _) in KINDS.items()}


def _status(code: int, reason: str, message: str) -> JSON:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    for term in filter(None, (selector or "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


@dataclass
class FakeApiServer:
    """The objects it serves, and how it misbehaves (``refuse``: 401/403, ``delay``: seconds)."""

    objects: list[JSON] = field(default_factory=list)
    refuse: int | None = None
    forbid_paths: tuple[str, ...] = ()
    delay: float = 0.0
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if server.delay:
                    time.sleep(server.delay)
                code, body = server.answer(self.path, self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def kubeconfig(self, token: str = TOKEN) -> JSON:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}],
            "current-context": "fake",
        }

    # -- routing ---------------------------------------------------------------------------
    def answer(self, raw_path: str, authorization: str) -> tuple[int, JSON]:
        url = urlparse(raw_path)
        if self.refuse == 401 or authorization != f"Bearer {TOKEN}":
            return 401, _status(401, "Unauthorized", "Unauthorized")
        if self.refuse == 403 or any(url.path.startswith(p) for p in self.forbid_paths):
            return 403, _status(
                403,
                "Forbidden",
                f'{url.path} is forbidden: User "verifier" cannot get resource at this path',
            )
        parts = url.path.strip("/").split("/")
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or rest[0] not in PLURALS:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        kind = PLURALS[rest[0]]
        if KINDS[kind][:2] != (group, version):
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if len(rest) == 2:
            return self._get(kind, namespace, rest[1])
        return self._list(kind, namespace, query)

    def _of(self, kind: str, namespace: str | None) -> list[JSON]:
        with self.lock:
            return [
                o
                for o in self.objects
                if o["kind"] == kind
                and (namespace is None or o["metadata"].get("namespace") == namespace)
            ]

    def _get(self, kind: str, namespace: str | None, name: str) -> tuple[int, JSON]:
        for obj in self._of(kind, namespace):
            if obj["metadata"]["name"] == name:
                return 200, obj
        group, _, plural, _ = KINDS[kind]
        resource = f"{plural}.{group}" if group else plural
        return 404, _status(404, "NotFound", f'{resource} "{name}" not found')

    def _list(self, kind: str, namespace: str | None, query: dict[str, str]) -> tuple[int, JSON]:
        items = [
            o
            for o in self._of(kind, namespace)
            if _matches(o["metadata"].get("labels") or {}, query.get("labelSelector"))
        ]
        start = int(query.get("continue") or 0)
        limit = int(query.get("limit") or 0) or len(items) or 1
        page = items[start : start + limit]
        metadata: JSON = {"resourceVersion": "48151623"}
        if start + limit < len(items):
            metadata["continue"] = str(start + limit)
        group, version, _, _ = KINDS[kind]
        api_version = f"{group}/{version}" if group else version
        builtin = kind != "CiliumNetworkPolicy"
        # Lists of built-in kinds carry no kind/apiVersion per item; custom resources do.
        shown = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in page]
        return 200, {
            "kind": f"{kind}List",
            "apiVersion": api_version,
            "metadata": metadata,
            "items": shown if builtin else page,
        }


# -- cluster objects --------------------------------------------------------------------------
def _meta(name: str, namespace: str | None = "kube-system", **extra: Any) -> JSON:
    meta: JSON = {
        "name": name,
        "uid": f"{abs(hash((namespace, name))):032x}"[:32],
        "resourceVersion": "48150001",
        "creationTimestamp": "2026-11-30T09:58:12Z",
    }
    if namespace:
        meta["namespace"] = namespace
    meta.update(extra)
    return meta


def daemonset(
    name: str, desired: int, ready: int | None = None, updated: int | None = None
) -> JSON:
    ready = desired if ready is None else ready
    updated = desired if updated is None else updated
    return {
        "kind": "DaemonSet",
        "apiVersion": "apps/v1",
        "metadata": _meta(name, generation=3, labels={"k8s-app": name}),
        "spec": {"selector": {"matchLabels": {"k8s-app": name}}},
        "status": {
            "currentNumberScheduled": desired,
            "desiredNumberScheduled": desired,
            "numberAvailable": ready,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberUnavailable": desired - ready,
            "observedGeneration": 3,
            "updatedNumberScheduled": updated,
        },
    }


def deployment(name: str, replicas: int, ready: int | None = None) -> JSON:
    ready = replicas if ready is None else ready
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": _meta(name, generation=2),
        "spec": {"replicas": replicas},
        "status": {
            "availableReplicas": ready,
            "readyReplicas": ready,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "observedGeneration": 2,
            "conditions": [{"type": "Available", "status": "True" if ready else "False"}],
        },
    }


def _container_status(name: str, image: str, digest: str, started: str, init: bool) -> JSON:
    repository = image.split("@")[0].rsplit(":", 1)[0]
    state = (
        {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": started}}
        if init
        else {"running": {"startedAt": started}}
    )
    return {
        "name": name,
        "image": image,
        "imageID": f"{repository}@{digest}",
        "ready": not init,
        "restartCount": 0,
        "started": not init,
        "state": state,
    }


def pod(
    name: str,
    namespace: str,
    labels: dict[str, str],
    containers: list[tuple[str, str, str]],
    init: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    node: str = "ip-10-80-1-17.ec2.internal",
    ready: bool = True,
    started: str = AGENTS_STARTED,
) -> JSON:
    """A running pod; containers are (name, image reference, digest the kubelet resolved)."""
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": _meta(name, namespace, labels=labels),
        "spec": {
            "nodeName": node,
            "initContainers": [{"name": n, "image": i} for n, i, _ in init],
            "containers": [{"name": n, "image": i} for n, i, _ in containers],
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True" if ready else "False"},
                {"type": "ContainersReady", "status": "True" if ready else "False"},
            ],
            "initContainerStatuses": [_container_status(*c, started, True) for c in init],
            "containerStatuses": [_container_status(*c, started, False) for c in containers],
        },
    }


def cnp(namespace: str, name: str, valid: str | None = "True", message: str = "") -> JSON:
    status: JSON = {}
    if valid is not None:
        status["conditions"] = [
            {
                "type": "Valid",
                "status": valid,
                "lastTransitionTime": "2026-11-30T10:05:00Z",
                "message": message or "Policy validation succeeded",
            }
        ]
    return {
        "kind": "CiliumNetworkPolicy",
        "apiVersion": "cilium.io/v2",
        "metadata": _meta(
            name,
            namespace,
            generation=1,
            labels={
                "app.kubernetes.io/managed-by": "pulumi",
                "app.kubernetes.io/part-of": "meshless",
            },
        ),
        "spec": {"endpointSelector": {}, "ingress": [{}]},
        "status": status,
    }


def _ref(pin: Any) -> tuple[str, str]:
    return f"{pin.repository}:{pin.tag}@{pin.digest}", pin.digest


def healthy_cluster(
    cloud: str, version: str, policies: list[tuple[str, str]], nodes: int = 3
) -> list[JSON]:
    """Every object verify reads on a healthy cluster running our release."""
    pins = pins_for(version, cloud)
    agent, agent_digest = _ref(pins["image"])
    node_names = [
        f"ip-10-80-{i}-17.ec2.internal" if cloud == "eks" else f"gke-prod-general-5f2c-{i}abc"
        for i in range(nodes)
    ]
    objects: list[JSON] = [
        {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": _meta(n, None, labels={"kubernetes.io/metadata.name": n}),
        }
        for n in ("kube-system", "default", "shop")
    ]
    objects += [
        daemonset("cilium", nodes),
        daemonset("cilium-envoy", nodes),
        deployment("cilium-operator", 2),
        deployment("hubble-relay", 1),
        deployment("hubble-ui", 1),
        {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": _meta(
                "cilium-config",
                managedFields=[
                    {"manager": "helm", "operation": "Update", "time": "2026-11-30T09:58:12Z"},
                    {"manager": "helm", "operation": "Update", "time": CONFIG_WRITTEN},
                ],
            ),
            "data": {
                "kube-proxy-replacement": "true",
                "enable-l7-proxy": "true",
                "external-envoy-proxy": "true",
                "enable-hubble": "true",
            },
        },
    ]
    agent_init = [
        (name, agent, agent_digest)
        for name in (
            "config",
            "mount-cgroup",
            "apply-sysctl-overwrites",
            "mount-bpf-fs",
            "clean-cilium-state",
            "install-cni-binaries",
        )
    ]
    envoy = _ref(pins["envoy.image"])
    for i, node in enumerate(node_names):
        objects.append(
            pod(
                f"cilium-{i}x7kq",
                "kube-system",
                {
                    "k8s-app": "cilium",
                    "app.kubernetes.io/name": "cilium-agent",
                    "app.kubernetes.io/part-of": "cilium",
                },
                [("cilium-agent", agent, agent_digest)],
                agent_init,
                node=node,
            )
        )
        objects.append(
            pod(
                f"cilium-envoy-{i}m2wd",
                "kube-system",
                {"k8s-app": "cilium-envoy", "app.kubernetes.io/name": "cilium-envoy"},
                [("cilium-envoy", *envoy)],
                node=node,
            )
        )
        if cloud == "gke":  # Cilium's node-init (GKE values) on every node
            objects.append(
                pod(
                    f"cilium-node-init-{i}t8rz",
                    "kube-system",
                    {"app": "cilium-node-init", "app.kubernetes.io/part-of": "cilium"},
                    [("node-init", *_ref(pins["nodeinit.image"]))],
                    node=node,
                )
            )
        if cloud == "gke":  # GKE's own static kube-proxy pods (mirror pods), one per node
            objects.append(
                pod(
                    f"kube-proxy-{node}",
                    "kube-system",
                    {"component": "kube-proxy", "tier": "node"},
                    [
                        (
                            "kube-proxy",
                            "gke.gcr.io/kube-proxy-amd64:v1.32.9-gke.1000000",
                            "sha256:" + "c" * 64,
                        )
                    ],
                    node=node,
                )
            )
    operator = _ref(pins["operator.image"])
    for i in range(2):
        objects.append(
            pod(
                f"cilium-operator-7d9f8c6b5-{i}qz4p",
                "kube-system",
                {"io.cilium/app": "operator", "name": "cilium-operator"},
                [("cilium-operator", *operator)],
                node=node_names[i % nodes],
            )
        )
    objects.append(
        pod(
            "hubble-relay-6d8f9b7c4-k2l9m",
            "kube-system",
            {"k8s-app": "hubble-relay"},
            [("hubble-relay", *_ref(pins["hubble.relay.image"]))],
        )
    )
    objects.append(
        pod(
            "hubble-ui-5b7c8d9f6-p4x2n",
            "kube-system",
            {"k8s-app": "hubble-ui"},
            [
                ("frontend", *_ref(pins["hubble.ui.frontend.image"])),
                ("backend", *_ref(pins["hubble.ui.backend.image"])),
            ],
        )
    )
    objects.append(
        pod(
            "checkout-5f6d7c8b9-abcde",
            "shop",
            {"app": "checkout"},
            [
                (
                    "checkout",
                    "registry.example.com/checkout:1.2.3@sha256:" + "a" * 64,
                    "sha256:" + "a" * 64,
                )
            ],
        )
    )
    objects += [cnp(namespace, name) for namespace, name in policies]
    return copy.deepcopy(objects)


def find(objects: list[JSON], kind: str, name: str) -> JSON:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise KeyError(f"{kind} {name}")
