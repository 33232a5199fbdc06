"""Fixtures for the policy pack tests: the pack running as the engine runs it, and stacks.

The pack is started once per session (``python -u -m pulumi.policy <engine> policies``, port
from stdout) and every test talks to it over gRPC; no test imports a validator. ``stack``
gives a fresh, fully compliant prod-shaped stack export (an EKS cluster and a GKE cluster in
mode cilium, each with its Cilium release, L7 policies and a workload) for a test to break.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components.eks.user_data import node_user_data
from infra.export_format import UNKNOWN_SENTINEL, document_of
from infra.gate import PolicyPackSession, Violation

REPO = Path(__file__).resolve().parents[2]
PACK_DIR = REPO / "policies"
CONFIG_DIR = PACK_DIR / "config"
CATALOG = PACK_DIR / "data" / "cilium-images.json"
UNKNOWN = UNKNOWN_SENTINEL
UNKNOWN_BOOL = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
UNKNOWN_OBJECT = "dd056dcd-154b-4c76-9bd3-c8f88648b5ff"
VERSION = "1.16.19"
DIGEST_A = "sha256:" + "a" * 64
TAINT = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"}


def _catalog() -> dict[str, Any]:
    return json.loads(CATALOG.read_text(encoding="utf-8"))["versions"]


def _pin(block: dict[str, Any], digest_key: str = "digest") -> dict[str, Any]:
    pinned = {"repository": block["repository"], "tag": block["tag"], "useDigest": True}
    pinned[digest_key] = block[digest_key]
    return pinned


def cilium_values(cloud: str, host: str, version: str = VERSION) -> dict[str, Any]:
    """Chart values the way components/cilium/values.py builds them: every image from the catalog."""
    images = _catalog()[version]
    operator_key = "awsDigest" if cloud == "eks" else "genericDigest"
    values: dict[str, Any] = {
        "image": _pin(images["image"]),
        "operator": {
            "replicas": 2,
            "image": {**_pin(images["operator.image"], operator_key), "suffix": ""},
        },
        "kubeProxyReplacement": True,
        "k8sServiceHost": host,
        "k8sServicePort": 443,
        "l7Proxy": True,
        "envoy": {"enabled": True, "image": _pin(images["envoy.image"])},
        "hubble": {
            "enabled": True,
            "tls": {
                "enabled": True,
                "auto": {"enabled": False},
                "server": {"existingSecret": "hubble-server-certs"},
            },
            "relay": {
                "enabled": True,
                "image": _pin(images["hubble.relay.image"]),
                "tls": {"client": {"existingSecret": "hubble-relay-client-certs"}},
            },
            "ui": {
                "enabled": True,
                "backend": {"image": _pin(images["hubble.ui.backend.image"])},
                "frontend": {"image": _pin(images["hubble.ui.frontend.image"])},
            },
        },
        "certgen": {"image": _pin(images["certgen.image"])},
        "clustermesh": {
            "useAPIServer": False,
            "apiserver": {"image": _pin(images["clustermesh.apiserver.image"])},
        },
        "authentication": {"mutual": {"spire": {"enabled": False}}},
    }
    if cloud == "eks":
        values |= {"eni": {"enabled": True}, "ipam": {"mode": "eni"}, "routingMode": "native"}
    else:
        values |= {
            "gke": {"enabled": True},
            "ipam": {"mode": "kubernetes"},
            "nodeinit": {"enabled": True, "image": _pin(images["nodeinit.image"])},
        }
    return values


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """``data["a"]["b"] = value`` for ``"a.b"``, creating dicts on the way."""
    *parents, last = path.split(".")
    for key in parents:
        data = data.setdefault(key, {})
    data[last] = value


def del_path(data: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data[key]
    del data[last]


@dataclass
class Stack:
    """A stack export under construction; resources are addressed by logical name."""

    name: str = "prod"
    resources: list[dict[str, Any]] = field(default_factory=list)

    def urn(self, type_: str, name: str, parent: str | None = None) -> str:
        chain = type_
        if parent is not None and parent in self._qualified:
            chain = f"{self._qualified[parent]}${type_}"
        return f"urn:pulumi:{self.name}::meshless::{chain}::{name}"

    def __post_init__(self) -> None:
        self._qualified: dict[str, str] = {}

    def add(
        self,
        type_: str,
        name: str,
        inputs: dict[str, Any] | None = None,
        *,
        parent: str | None = None,
        provider: str | None = None,
        deps: list[str] | None = None,
        custom: bool = True,
    ) -> str:
        urn = self.urn(type_, name, parent)
        chain = urn.split("::")[2]
        self._qualified[urn] = chain
        res: dict[str, Any] = {
            "urn": urn,
            "custom": custom,
            "type": type_,
            "inputs": inputs or {},
            "outputs": {},
            "dependencies": deps or [],
        }
        if custom:
            res["id"] = f"{name}-id"
        if parent:
            res["parent"] = parent
        if provider:
            res["provider"] = f"{provider}::{provider.rsplit('::', 1)[-1]}-id"
        self.resources.append(res)
        return urn

    def __getitem__(self, name: str) -> dict[str, Any]:
        for res in self.resources:
            if res["urn"].rsplit("::", 1)[-1] == name:
                return res
        raise KeyError(name)

    def inputs(self, name: str) -> dict[str, Any]:
        return self[name]["inputs"]

    def set(self, name: str, path: str, value: Any) -> Stack:
        """Set an input of resource ``name`` (dotted path), creating objects on the way."""
        set_path(self.inputs(name), path, value)
        return self

    def delete(self, name: str, path: str) -> Stack:
        del_path(self.inputs(name), path)
        return self

    def protect(self, name: str, on: bool = True) -> Stack:
        """Set or clear the resource's Pulumi `protect` option, as a stack export records it."""
        if on:
            self[name]["protect"] = True
        else:
            self[name].pop("protect", None)
        return self

    def urn_of(self, name: str) -> str:
        return self[name]["urn"]

    def to_dataplane_v2(self) -> Stack:
        """Turn the GKE cluster into mode dataplane-v2: no release, no CNP of ours."""
        self["gke-main-cluster"]["inputs"] = gke_cluster_inputs("dataplane-v2")
        for name in ("gke-main-cilium-release", "gke-main-checkout-l7"):
            self.remove(name)
        return self

    def copy(self) -> Stack:
        clone = Stack(self.name, copy.deepcopy(self.resources))
        clone._qualified = dict(self._qualified)
        return clone

    def remove(self, name: str) -> None:
        self.resources.remove(self[name])

    def export(self) -> dict[str, Any]:
        return document_of(copy.deepcopy(self.resources))


def http_policy(namespace: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": f"{app}-l7", "namespace": namespace},
        "spec": {
            "endpointSelector": {"matchLabels": {"app": app}},
            "ingress": [
                {
                    "fromEndpoints": [{"matchLabels": {"app": "frontend"}}],
                    "toPorts": [
                        {
                            "ports": [{"port": "8080", "protocol": "TCP"}],
                            "rules": {"http": [{"method": "GET", "path": "/api/.*"}]},
                        }
                    ],
                }
            ],
        },
    }


def deployment(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "initContainers": [{"name": "migrate", "image": image}],
                    "containers": [{"name": name, "image": image}],
                },
            },
        },
    }


def _release_inputs(cloud: str, host: str) -> dict[str, Any]:
    # EKS installs Cilium before any node exists, so it cannot wait (and atomic would make it);
    # GKE installs it after the node pools and waits, atomically (components/cilium/release.py).
    return {
        "name": "cilium",
        "chart": "cilium",
        "version": VERSION,
        "repositoryOpts": {"repo": "https://helm.cilium.io"},
        "namespace": "kube-system",
        "atomic": cloud != "eks",
        "skipAwait": cloud == "eks",
        "cleanupOnFail": True,
        "timeout": 900,
        "values": cilium_values(cloud, host),
    }


def _cluster_stack_part(stack: Stack, root: str, cloud: str, cluster_inputs: dict) -> None:
    """One cluster component with its cluster, provider, node pool, Cilium and workloads."""
    prefix = f"{cloud}-main"
    comp_type = "meshless:aws:EksCluster" if cloud == "eks" else "meshless:gcp:GkeCluster"
    comp = stack.add(comp_type, prefix, parent=root, custom=False)
    cluster_type = "aws:eks/cluster:Cluster" if cloud == "eks" else "gcp:container/cluster:Cluster"
    cluster = stack.add(cluster_type, f"{prefix}-cluster", cluster_inputs, parent=comp)
    stack.protect(f"{prefix}-cluster")  # prod: what a mistake must not delete is protected
    provider = stack.add(
        "pulumi:providers:kubernetes",
        f"{prefix}-k8s",
        {"kubeconfig": "{}", "enableServerSideApply": "true"},
        parent=comp,
        deps=[cluster],
    )
    cilium = stack.add(
        "meshless:cilium:CiliumRelease", f"{prefix}-cilium", parent=comp, custom=False
    )
    host = "ABCDEF.gr7.eu-west-1.eks.amazonaws.com" if cloud == "eks" else "10.0.0.2"
    # The bootstrap order of infra/program.py: EKS cluster -> Cilium -> node group -> CoreDNS;
    # GKE cluster -> node pool -> Cilium.
    ready = []
    if cloud == "eks":
        release = stack.add(
            "kubernetes:helm.sh/v3:Release",
            f"{prefix}-cilium-release",
            _release_inputs(cloud, host),
            parent=cilium,
            provider=provider,
            deps=[cluster],
        )
        template = stack.add(
            "aws:ec2/launchTemplate:LaunchTemplate",
            f"{prefix}-general-nodes",
            eks_launch_template_inputs(),
            parent=comp,
        )
        group = stack.add(
            "aws:eks/nodeGroup:NodeGroup",
            f"{prefix}-general",
            {
                "clusterName": "main",
                "taints": [TAINT],
                "launchTemplate": {"id": "lt-0123456789abcdef0", "version": "1"},
            },
            parent=comp,
            deps=[cluster, template, release],
        )
        ready = [
            stack.add(
                "aws:eks/addon:Addon",
                f"{prefix}-coredns",
                {"addonName": "coredns", "clusterName": "main"},
                parent=comp,
                deps=[cluster, group],
            )
        ]
    else:
        pool = stack.add(
            "gcp:container/nodePool:NodePool",
            f"{prefix}-general",
            {"cluster": "main", "nodeConfig": {"taints": [TAINT]}},
            parent=comp,
            deps=[cluster],
        )
        release = stack.add(
            "kubernetes:helm.sh/v3:Release",
            f"{prefix}-cilium-release",
            _release_inputs(cloud, host),
            parent=cilium,
            provider=provider,
            deps=[cluster, pool],
        )
    stack.protect(f"{prefix}-cilium-release")
    stack.protect(f"{prefix}-general")
    policies = stack.add(
        "meshless:cilium:NetworkPolicies", f"{prefix}-policies", parent=root, custom=False
    )
    stack.add(
        "kubernetes:cilium.io/v2:CiliumNetworkPolicy",
        f"{prefix}-checkout-l7",
        http_policy("shop", "checkout"),
        parent=policies,
        provider=provider,
        deps=[release, *ready],
    )
    stack.add(
        "kubernetes:apps/v1:Deployment",
        f"{prefix}-checkout",
        deployment("checkout", f"registry.example.com/checkout:1.2.3@{DIGEST_A}"),
        parent=policies,
        provider=provider,
        deps=[release],
    )


def eks_launch_template_inputs(user_data: str | None = None) -> dict[str, Any]:
    """A node launch template as EksCluster writes it (the program's own user data)."""
    if user_data is None:
        user_data = node_user_data(110, prefix_delegation=True)
    return {
        "userData": base64.b64encode(user_data.encode()).decode(),
        "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required"},
    }


def eks_cluster_inputs() -> dict[str, Any]:
    return {
        "name": "main",
        "version": "1.32",
        "bootstrapSelfManagedAddons": False,
        "accessConfig": {"authenticationMode": "API"},
        "vpcConfig": {
            "endpointPrivateAccess": True,
            "endpointPublicAccess": True,
            "publicAccessCidrs": ["203.0.113.0/24"],
            "subnetIds": ["subnet-1", "subnet-2"],
        },
        "encryptionConfig": {
            "provider": {"keyArn": "arn:aws:kms:eu-west-1:123456789012:key/abcd"},
            "resources": ["secrets"],
        },
        "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager"],
        "deletionProtection": True,
    }


def gke_cluster_inputs(mode: str = "cilium") -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "name": "main",
        "location": "us-central1",
        "resourceLabels": {"meshless-gke-mode": mode},
        "privateClusterConfig": {"enablePrivateNodes": True, "enablePrivateEndpoint": False},
        "masterAuthorizedNetworksConfig": {
            "cidrBlocks": [{"cidrBlock": "203.0.113.0/24", "displayName": "office"}]
        },
        "workloadIdentityConfig": {"workloadPool": "meshless-prod.svc.id.goog"},
        "enableShieldedNodes": True,
        "deletionProtection": True,
        "removeDefaultNodePool": True,
        "databaseEncryption": {"state": "ENCRYPTED", "keyName": "projects/p/keys/k"},
        "loggingConfig": {"enableComponents": ["SYSTEM_COMPONENTS", "APISERVER", "WORKLOADS"]},
    }
    if mode == "dataplane-v2":
        inputs |= {
            "datapathProvider": "ADVANCED_DATAPATH",
            "enableCiliumClusterwideNetworkPolicy": True,
            "monitoringConfig": {
                "advancedDatapathObservabilityConfig": {"enableMetrics": True, "enableRelay": True}
            },
        }
    return inputs


def compliant_stack(name: str = "prod") -> Stack:
    stack = Stack(name)
    root = stack.add("pulumi:pulumi:Stack", f"meshless-{name}", custom=False)
    _cluster_stack_part(stack, root, "eks", eks_cluster_inputs())
    _cluster_stack_part(stack, root, "gke", gke_cluster_inputs())
    return stack


def config(name: str) -> dict[str, Any]:
    return json.loads((CONFIG_DIR / f"{name}.json").read_text(encoding="utf-8"))


class Findings(list[Violation]):
    """The violations of one run, with the lookups tests need."""

    def of(self, policy: str) -> list[Violation]:
        return [v for v in self if v.policy_name == policy]

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self if v.enforcement_level == "mandatory"]

    @property
    def text(self) -> str:
        return "\n".join(f"{v.policy_name} [{v.enforcement_level}] {v.message}" for v in self)


class Gate:
    """Runs resources through the session's pack: Analyze each, then AnalyzeStack."""

    def __init__(self, pack: PolicyPackSession) -> None:
        self.pack = pack

    def run(self, stack: Stack | list[dict[str, Any]], env: str | dict = "prod") -> Findings:
        resources = stack.resources if isinstance(stack, Stack) else stack
        self.pack.configure(config(env) if isinstance(env, str) else env)
        return Findings(self.pack.analyze(resources) + self.pack.analyze_stack(resources))


@pytest.fixture(scope="session")
def pack() -> Iterator[PolicyPackSession]:
    with PolicyPackSession(PACK_DIR) as session:
        session.configure_stack("prod", "meshless")
        yield session


@pytest.fixture
def gate(pack: PolicyPackSession) -> Gate:
    return Gate(pack)


@pytest.fixture
def stack() -> Stack:
    return compliant_stack()
