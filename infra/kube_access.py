"""Reaching a live cluster for `meshless verify`: the kubeconfig, the client, read-only calls.

The kubeconfig comes from a file (``--kubeconfig``/``--context``) or from the stack's outputs
(``pulumi stack output --show-secrets --json``; the program exports ``<cluster>-kubeconfig``
as a secret). Calls go through the official ``kubernetes`` client's ApiClient; responses are read as
the JSON the API server sends, the shape `kubectl get -o json` shows, so the checks do not
depend on the client's model classes. Anything that means
"cannot ask" (no connection, timeout, 401, 403, a kubeconfig that does not load) is an
AccessError: verify exits 2 with its message and judges nothing.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

__all__ = [
    "AccessError",
    "ApiReader",
    "client_from_kubeconfig",
    "kubeconfig_from_file",
    "kubeconfig_from_stack",
]

JSON = dict[str, Any]
PAGE = 500  # list in pages: prod has thousands of pods


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class AccessError(Exception):
    """The cluster cannot be asked: the message names what failed and what to do."""


def kubeconfig_from_file(path: Path) -> JSON:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AccessError(f"{path}: cannot read the kubeconfig ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise AccessError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(document, dict):
        raise AccessError(f"{path}: not a kubeconfig (expected a mapping with clusters/users)")
    return document


def kubeconfig_from_stack(stack: str, cluster: str, cwd: Path, pulumi: str = "pulumi") -> JSON:
    """The cluster's kubeconfig from the stack outputs, through the Pulumi CLI."""
    command = [pulumi, "stack", "output", "--stack", stack, "--show-secrets", "--json"]
    if shutil.which(pulumi) is None:
        raise AccessError(
            f"--stack {stack}: the Pulumi CLI (`{pulumi}`) is not on PATH, so the kubeconfig "
            "cannot be read from the stack outputs. Install it and `pulumi login`, or pass "
            "--kubeconfig FILE"
        )
    try:
        proc = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AccessError(f"`{' '.join(command)}` did not run: {exc}") from None
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise AccessError(
            f"`pulumi stack output --stack {stack}` failed (exit {proc.returncode}): {detail}. "
            "Check `pulumi login` and that the stack exists, or pass --kubeconfig FILE"
        )
    try:
        outputs = json.loads(proc.stdout or "{}")
    except ValueError:
        raise AccessError(
            f"`pulumi stack output --stack {stack} --json` did not print JSON"
        ) from None
    key = f"{cluster}-kubeconfig"
    value = outputs.get(key) if isinstance(outputs, dict) else None
    if not value:
        raise AccessError(
            f"stack {stack} has no output {key!r} (outputs: {', '.join(sorted(outputs)) or 'none'}); "
            "has `pulumi up` run for this cluster?"
        )
    try:
        document = yaml.safe_load(value) if isinstance(value, str) else value
    except yaml.YAMLError:
        document = None
    if not isinstance(document, dict):
        raise AccessError(f"stack output {key!r} is not a kubeconfig")
    return document


def client_from_kubeconfig(
    document: JSON, context: str | None, source: str
) -> k8s_client.ApiClient:
    """An ApiClient for the kubeconfig (exec plugins such as `aws eks get-token` included)."""
    configuration = k8s_client.Configuration()
    # A failing credential plugin (`aws eks get-token`, gke-gcloud-auth-plugin) is only logged
    # by the client (kube_config.py logs and goes on without credentials); catch it here so the
    # user learns about the plugin, not about a 401 later.
    plugin_errors = _Collect()
    logging.getLogger().addHandler(plugin_errors)
    try:
        k8s_config.load_kube_config_from_dict(
            document, context=context, client_configuration=configuration
        )
    except (ConfigException, KeyError, TypeError, ValueError) as exc:
        raise AccessError(f"{source}: the kubeconfig does not load ({exc})") from None
    finally:
        logging.getLogger().removeHandler(plugin_errors)
    if plugin_errors.messages:
        raise AccessError(
            f"{source}: the kubeconfig's credential plugin failed ({plugin_errors.messages[0]}); "
            "install it (aws CLI for EKS, gke-gcloud-auth-plugin for GKE) and log in"
        )
    # One attempt per call: a verdict should come quickly, and the timeout is per call.
    configuration.retries = 0
    return k8s_client.ApiClient(configuration)


# REST paths of what verify reads: kind -> (collection path, cluster-wide list path).
_PATHS = {
    "pods": ("/api/v1/namespaces/{namespace}/pods", "/api/v1/pods"),
    "configmaps": ("/api/v1/namespaces/{namespace}/configmaps", "/api/v1/configmaps"),
    "namespaces": (None, "/api/v1/namespaces"),
    "daemonsets": ("/apis/apps/v1/namespaces/{namespace}/daemonsets", "/apis/apps/v1/daemonsets"),
    "deployments": (
        "/apis/apps/v1/namespaces/{namespace}/deployments",
        "/apis/apps/v1/deployments",
    ),
    # CRD ciliumnetworkpolicies.cilium.io, version v2.
    "ciliumnetworkpolicies": (
        "/apis/cilium.io/v2/namespaces/{namespace}/ciliumnetworkpolicies",
        "/apis/cilium.io/v2/ciliumnetworkpolicies",
    ),
}


class ApiReader:
    """The KubeReader of infra/verify.py on the official client's ApiClient.

    Requests go through ``ApiClient.param_serialize`` and ``call_api``, the machinery every
    generated API method uses (auth from the kubeconfig, exec-plugin tokens, TLS, timeouts),
    with the REST paths written out. The generated CoreV1Api/AppsV1Api classes are not used:
    importing them builds thousands of pydantic models (measured: 6 s on this project's CI
    machine, against 2 s for the ApiClient), and verify only needs the JSON.
    """

    def __init__(self, api: k8s_client.ApiClient, timeout: float) -> None:
        self.api = api
        self.timeout = timeout
        self.server = api.configuration.host

    def _request(self, what: str, path: str, query: list[tuple[str, str]]) -> JSON | None:
        request = self.api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*request, _request_timeout=self.timeout)
            response.read()
        except ApiException as exc:
            raise AccessError(f"{self.server}: {exc.reason} reading {what}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise AccessError(self._unreachable(what, exc)) from None
        if response.status == 404:
            return None
        if not 200 <= response.status <= 299:
            raise AccessError(self._refused(what, response.status, response.reason))
        try:
            return json.loads(response.data or b"")
        except ValueError:
            raise AccessError(f"{self.server}: {what} did not return JSON") from None

    def _refused(self, what: str, status: int, reason: str | None) -> str:
        if status == 401:
            return (
                f"{self.server}: unauthorised (401) reading {what}: the credentials in the "
                "kubeconfig were refused; refresh them (e.g. `aws sso login`, `gcloud auth login`)"
            )
        if status == 403:
            return (
                f"{self.server}: forbidden (403) reading {what}: this identity may not read it; "
                "verify needs get/list on pods, namespaces, daemonsets, deployments, configmaps "
                "and ciliumnetworkpolicies"
            )
        return f"{self.server}: API error {status} {reason or ''} reading {what}".rstrip()

    def _unreachable(self, what: str, exc: Exception) -> str:
        reason = getattr(exc, "reason", None) or exc
        # urllib3's NewConnectionError (refused, no route, DNS) subclasses its ConnectTimeoutError.
        refused = isinstance(reason, urllib3.exceptions.NewConnectionError)
        if not refused and isinstance(reason, (urllib3.exceptions.TimeoutError, TimeoutError)):
            return f"{self.server}: no answer within {self.timeout:g}s reading {what} (timeout)"
        return f"{self.server}: cannot connect ({type(reason).__name__}: {reason})"

    def get(self, kind: str, name: str, namespace: str = "kube-system") -> JSON | None:
        namespaced, cluster_wide = _PATHS[kind]
        if namespaced is None:  # a cluster-scoped kind
            return self._request(f"{kind[:-1]} {name}", f"{cluster_wide}/{name}", [])
        path = namespaced.format(namespace=namespace) + f"/{name}"
        return self._request(f"{kind} {namespace}/{name}", path, [])

    def list(
        self, kind: str, namespace: str | None = "kube-system", selector: str | None = None
    ) -> list[JSON]:
        namespaced, cluster_wide = _PATHS[kind]
        path = namespaced.format(namespace=namespace) if namespace and namespaced else cluster_wide
        what = (
            kind
            + (f" in {namespace}" if namespace else "")
            + (f" ({selector})" if selector else "")
        )
        query = [("limit", str(PAGE))] + ([("labelSelector", selector)] if selector else [])
        items: list[JSON] = []
        token: str | None = None
        while True:
            page = self._request(what, path, query + ([("continue", token)] if token else []))
            if page is None:  # e.g. the CNP CRD does not exist: nothing of that kind
                return items
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
