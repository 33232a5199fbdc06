"""How long the policy gate takes on the prod stack's shape at 127 and 1270 services.

Builds synthetic `pulumi stack export` documents shaped like prod (a GKE cluster in mode
cilium and an EKS cluster, each with its Kubernetes provider, tainted node pool, Cilium
release and CoreDNS where it applies; per service one L7 CiliumNetworkPolicy and one
Deployment; per ten services a namespace with a default-deny policy), runs the gate on them
the way `meshless gate` does (one pack process per run, started the engine's way), and prints
total time and time per resource next to the baseline: starting the pack until its port is
known. A script that prints figures, not a test: `make bench` or
`uv run python benchmarks/gate.py [--runs 3] [--services 127 1270]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from components.cilium import CiliumSettings, ClusterFacts, build_values
from infra.gate import PolicyPackSession, run_gate

REPO = Path(__file__).resolve().parents[1]

VERSION = "1.16.19"
STACK = "prod"
DIGEST = "sha256:" + "c" * 64
TAINT = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"}


class Export:
    def __init__(self) -> None:
        self.resources: list[dict[str, Any]] = []

    def add(
        self,
        type_: str,
        name: str,
        inputs: dict | None = None,
        *,
        parent: str | None = None,
        provider: str | None = None,
        deps: list[str] | None = None,
        custom: bool = True,
    ) -> str:
        urn = f"urn:pulumi:{STACK}::meshless::{type_}::{name}"
        res: dict[str, Any] = {
            "urn": urn,
            "custom": custom,
            "type": type_,
            "inputs": inputs or {},
            "outputs": {},
            "dependencies": deps or [],
        }
        if parent:
            res["parent"] = parent
        if provider:
            res["provider"] = f"{provider}::{name}-provider-id"
        self.resources.append(res)
        return urn


def _values(cloud: str) -> dict[str, Any]:
    """The values the program itself builds for a cluster of this cloud."""
    facts = ClusterFacts(
        name=f"prod-{cloud}",
        cloud=cloud,  # type: ignore[arg-type]
        environment=STACK,
        api_host="10.0.0.2" if cloud == "gke" else "0A1B2C3D.gr7.us-east-1.eks.amazonaws.com",
        api_port=443,
        node_kernel=(6, 6),
        pod_cidr="10.68.0.0/14" if cloud == "gke" else None,
    )
    return build_values(CiliumSettings(version=VERSION), facts)


def _cluster(export: Export, root: str, cloud: str) -> tuple[str, str]:
    """One cluster with its Cilium; returns (provider URN, release URN)."""
    comp = export.add(
        "meshless:aws:EksCluster" if cloud == "eks" else "meshless:gcp:GkeCluster",
        cloud,
        parent=root,
        custom=False,
    )
    if cloud == "eks":
        cluster = export.add(
            "aws:eks/cluster:Cluster",
            f"{cloud}-cluster",
            {
                "bootstrapSelfManagedAddons": False,
                "deletionProtection": True,
                "vpcConfig": {"endpointPublicAccess": False},
                "encryptionConfig": {
                    "provider": {"keyArn": "arn:aws:kms:k"},
                    "resources": ["secrets"],
                },
                "enabledClusterLogTypes": ["api", "audit", "authenticator"],
            },
            parent=comp,
        )
    else:
        cluster = export.add(
            "gcp:container/cluster:Cluster",
            f"{cloud}-cluster",
            {
                "resourceLabels": {"meshless-gke-mode": "cilium"},
                "removeDefaultNodePool": True,
                "privateClusterConfig": {"enablePrivateNodes": True},
                "masterAuthorizedNetworksConfig": {"cidrBlocks": [{"cidrBlock": "10.0.0.0/8"}]},
                "workloadIdentityConfig": {"workloadPool": "p.svc.id.goog"},
                "databaseEncryption": {"state": "ENCRYPTED", "keyName": "k"},
                "loggingConfig": {"enableComponents": ["SYSTEM_COMPONENTS", "APISERVER"]},
            },
            parent=comp,
        )
    provider = export.add(
        "pulumi:providers:kubernetes", f"{cloud}-k8s", parent=comp, deps=[cluster]
    )
    pool_type = (
        "aws:eks/nodeGroup:NodeGroup" if cloud == "eks" else "gcp:container/nodePool:NodePool"
    )
    pool_inputs = {"taints": [TAINT]} if cloud == "eks" else {"nodeConfig": {"taints": [TAINT]}}
    export.add(pool_type, f"{cloud}-pool", pool_inputs, parent=comp, deps=[cluster])
    release = export.add(
        "kubernetes:helm.sh/v3:Release",
        f"{cloud}-cilium",
        {
            "chart": "cilium",
            "version": VERSION,
            "repositoryOpts": {"repo": "https://helm.cilium.io"},
            "atomic": True,
            "cleanupOnFail": True,
            "values": _values(cloud),
        },
        parent=comp,
        provider=provider,
        deps=[cluster],
    )
    if cloud == "eks":
        export.add(
            "aws:eks/addon:Addon",
            "eks-coredns",
            {"addonName": "coredns"},
            parent=comp,
            deps=[cluster, release],
        )
    return provider, release


def _service(export: Export, index: int, parent: str, provider: str, release: str) -> None:
    name, namespace = f"svc-{index:04d}", f"team-{index // 10:03d}"
    rule = {
        "toPorts": [
            {
                "ports": [{"port": "8080", "protocol": "TCP"}],
                "rules": {
                    "http": [
                        {"method": "GET", "path": "/v1/.*"},
                        {"method": "POST", "path": "/v1/orders"},
                    ]
                },
            }
        ],
        "fromEndpoints": [{"matchLabels": {"app": f"svc-{(index + 1):04d}"}}],
    }
    export.add(
        "kubernetes:cilium.io/v2:CiliumNetworkPolicy",
        f"{name}-l7",
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": f"{name}-l7", "namespace": namespace},
            "spec": {"endpointSelector": {"matchLabels": {"app": name}}, "ingress": [rule]},
        },
        parent=parent,
        provider=provider,
        deps=[release],
    )
    export.add(
        "kubernetes:apps/v1:Deployment",
        name,
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": name, "image": f"registry.example.com/{name}:1.0@{DIGEST}"}
                        ]
                    }
                }
            },
        },
        parent=parent,
        provider=provider,
        deps=[release],
    )
    if index % 10 == 0:
        export.add(
            "kubernetes:cilium.io/v2:CiliumNetworkPolicy",
            f"{namespace}-default-deny",
            {
                "metadata": {"name": "default-deny", "namespace": namespace},
                "spec": {
                    "endpointSelector": {},
                    "egress": [
                        {
                            "toPorts": [
                                {
                                    "ports": [{"port": "53", "protocol": "UDP"}],
                                    "rules": {"dns": [{"matchPattern": "*"}]},
                                }
                            ]
                        }
                    ],
                },
            },
            parent=parent,
            provider=provider,
            deps=[release],
        )


def prod_shape(services: int) -> list[dict[str, Any]]:
    export = Export()
    root = export.add("pulumi:pulumi:Stack", "meshless-prod", custom=False)
    clusters = [_cluster(export, root, cloud) for cloud in ("gke", "eks")]
    policies = export.add("meshless:cilium:NetworkPolicies", "services", parent=root, custom=False)
    for index in range(services):
        provider, release = clusters[index % 2]
        _service(export, index, policies, provider, release)
    return export.resources


def time_to_port(runs: int) -> float:
    samples = []
    for _ in range(runs):
        with PolicyPackSession() as pack:
            samples.append(pack.startup_seconds)
    return statistics.median(samples)


def time_gate(resources: list[dict[str, Any]], runs: int) -> tuple[float, int, int]:
    samples, mandatory, advisory = [], 0, 0
    config = REPO / "policies" / "config" / "prod.json"
    for _ in range(runs):
        began = time.perf_counter()
        report = run_gate(resources, policy_config=config, stack=STACK)
        samples.append(time.perf_counter() - began)
        mandatory, advisory = report.mandatory, report.advisory
    return statistics.median(samples), mandatory, advisory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--services", type=int, nargs="+", default=[127, 1270])
    args = parser.parse_args()

    baseline = time_to_port(args.runs)
    print(f"policy gate benchmark (median of {args.runs} runs, Python {sys.version.split()[0]})")
    print(f"baseline: pack start to port (python -u -m pulumi.policy)  {baseline * 1000:8.0f} ms")
    print(
        f"{'services':>8} {'resources':>9} {'analyzed':>8} {'total':>9} {'minus start':>11} "
        f"{'per resource':>12} {'violations':>10}"
    )
    for services in args.services:
        resources = prod_shape(services)
        analyzed = sum(1 for r in resources if r["custom"])
        total, mandatory, advisory = time_gate(resources, args.runs)
        work = total - baseline
        print(
            f"{services:>8} {len(resources):>9} {analyzed:>8} {total * 1000:>7.0f}ms "
            f"{work * 1000:>9.0f}ms {work / len(resources) * 1000:>10.2f}ms "
            f"{mandatory:>4}M/{advisory}A"
        )


if __name__ == "__main__":
    main()
