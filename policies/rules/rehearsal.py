"""The deploy rehearsal: what the clouds and Kubernetes wait for while `pulumi up` runs.

Mocks and previews accept any order; a real update does not. This walks the plan's resource
graph the way the engine does (a resource starts when its dependencies and its provider are
done; independent resources run in parallel) and checks every wait in the rule table
(rehearsal.json, one row per rule with its upstream source) against that order:

- a wait is *satisfied* when a resource that provides the capability on the same cluster is
  guaranteed to be done first (it is among the waiter's transitive dependencies);
- a *deadlock* when the only providers themselves (transitively) wait for the waiter: reported
  as a chain, each link naming two resources, why one waits for the other, and the source;
- a *race* when a provider exists but nothing orders it first;
- *unsatisfiable* when nothing on the cluster provides it (or the deployer has no route).

Stdlib only and no imports from the pack, so the offline plan's summary loads this same file
for the creation phases (infra/summary.py).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["DEPLOYER_TYPE", "Finding", "Node", "Rehearsal", "load_table"]

TABLE_FILE = Path(__file__).with_name("rehearsal.json")
# The names the pack shares with the program (read directly: this module imports nothing).
CONTRACT_FILE = Path(__file__).resolve().parents[1] / "data" / "contract.json"
DEPLOYER_TYPE = "meshless:deploy:Deployer"

_EKS_CLUSTER = "aws:eks/cluster:Cluster"
_GKE_CLUSTER = "gcp:container/cluster:Cluster"
_EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
_GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
_EKS_ADDON = "aws:eks/addon:Addon"
_HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
_K8S_PROVIDER = "pulumi:providers:kubernetes"


@cache
def load_table() -> dict[str, Any]:
    return json.loads(TABLE_FILE.read_text())


@dataclass(frozen=True)
class Node:
    """One resource: its type, name, properties and the edges the engine orders by."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    provider: str | None = None
    dependencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """A wait that cannot be met: the cluster, a one-line verdict and the chain of links."""

    cluster: str
    verdict: str
    chain: tuple[str, ...]
    urn: str

    @property
    def message(self) -> str:
        links = "; ".join(f"({i}) {link}" for i, link in enumerate(self.chain, 1))
        return f"deploy rehearsal, cluster {self.cluster}: {self.verdict}. Chain: {links}"


def _get(props: Mapping[str, Any], path: str, default: Any = None) -> Any:
    node: Any = props
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _chart(props: Mapping[str, Any]) -> str:
    chart = props.get("chart")
    return chart.strip().rsplit("/", 1)[-1].removesuffix(".tgz") if isinstance(chart, str) else ""


def _is_cilium_release(n: Node) -> bool:
    """A Cilium install; the upgrade pre-flight release (agent off) provides no CNI."""
    given = n.props.get("values")
    values: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    preflight_only = values.get("agent") is False and _get(values, "preflight.enabled") is True
    return n.type == _HELM_RELEASE and _chart(n.props).startswith("cilium") and not preflight_only


def _waits(n: Node) -> bool:
    """Helm waits unless skipAwait is true; atomic turns the wait back on."""
    return n.props.get("skipAwait") is not True or n.props.get("atomic") is True


def hook_jobs(props: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The chart-hook rows whose conditions these release inputs meet. ``disableWebhooks``
    (pulumi-kubernetes: "Prevent hooks from running") means none run; a chart version the
    table does not know is judged like the known ones rather than waved through."""
    if props.get("disableWebhooks") is True:
        return []
    given = props.get("values")
    values: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    version = props.get("version")
    rows = load_table()["chartHooks"]
    known = {v for row in rows for v in row["versions"]}
    found = []
    for row in rows:
        if not _chart(props).startswith(row["chart"]):
            continue
        if version in known and version not in row["versions"]:
            continue
        if all(
            any(_get(values, path, default) == want for path, want, default in clause)
            for clause in row["when"]
        ):
            found.append(row)
    return found


@cache
def _managed_datapath() -> str:
    return str(json.loads(CONTRACT_FILE.read_text())["gke"]["datapaths"]["dataplane-v2"])


def _gke_dataplane_v2(n: Node) -> bool:
    return n.type == _GKE_CLUSTER and n.props.get("datapathProvider") == _managed_datapath()


# How each class of the table is recognised. The table says who waits for what and why.
CLASSES: dict[str, Callable[[Node], bool]] = {
    "eks-node-group": lambda n: n.type == _EKS_NODE_GROUP,
    "node-group": lambda n: n.type in (_EKS_NODE_GROUP, _GKE_NODE_POOL),
    "waiting-release": lambda n: n.type == _HELM_RELEASE and _waits(n),
    "release-with-hook-job": lambda n: n.type == _HELM_RELEASE and bool(hook_jobs(n.props)),
    "cilium-object": lambda n: n.type.startswith("kubernetes:cilium.io/"),
    "eks-addon": lambda n: n.type == _EKS_ADDON,
    "eks-coredns-addon": lambda n: n.type == _EKS_ADDON and n.props.get("addonName") == "coredns",
    "kubernetes-resource": lambda n: n.type.startswith("kubernetes:"),
    "cilium-release": _is_cilium_release,
    "waiting-cilium-release": lambda n: _is_cilium_release(n) and _waits(n),
    "no-wait-cilium-release": lambda n: _is_cilium_release(n) and not _waits(n),
    "gke-dataplane-v2-cluster": _gke_dataplane_v2,
    "gke-dataplane-v2-ccnp-cluster": lambda n: (
        _gke_dataplane_v2(n) and n.props.get("enableCiliumClusterwideNetworkPolicy") is True
    ),
}


def _label(n: Node) -> str:
    return f"{n.type.rsplit(':', 1)[-1]} '{n.name}'"


@dataclass
class Rehearsal:
    """The graph, each resource's cluster and the verdict on every wait."""

    nodes: list[Node]
    by_urn: dict[str, Node] = field(init=False)

    def __post_init__(self) -> None:
        self.by_urn = {n.urn: n for n in self.nodes}
        self._rules = load_table()["rules"]
        self._ancestors: dict[str, frozenset[str]] = {}
        self._cluster: dict[str, str | None] = {}
        self._depth: dict[str, int] = {}
        self._deployer = next((n for n in self.nodes if n.type == DEPLOYER_TYPE), None)
        self._provider_index: dict[tuple[str, str], list[tuple[Node, dict[str, Any]]]] = {}

    # --- the graph as the engine orders it ---------------------------------------------------

    def edges(self, urn: str) -> list[str]:
        node = self.by_urn[urn]
        deps = list(node.dependencies) + ([node.provider] if node.provider else [])
        return [d for d in deps if d in self.by_urn]

    def ancestors(self, urn: str) -> frozenset[str]:
        """Everything the engine finishes before it starts ``urn``."""
        if urn not in self._ancestors:
            self._ancestors[urn] = frozenset()  # a cycle cannot come from Pulumi; stay finite
            found: set[str] = set()
            for dep in self.edges(urn):
                found.add(dep)
                found |= self.ancestors(dep)
            self._ancestors[urn] = frozenset(found)
        return self._ancestors[urn]

    def depth(self, urn: str) -> int:
        if urn not in self._depth:
            self._depth[urn] = 0
            self._depth[urn] = 1 + max((self.depth(d) for d in self.edges(urn)), default=0)
        return self._depth[urn]

    def path(self, start: str, goal: str) -> list[tuple[str, str, str]]:
        """Links (from, to, how) of a dependency path from ``start`` down to ``goal``."""
        previous: dict[str, tuple[str, str]] = {start: ("", "")}
        queue = [start]
        while queue:
            urn = queue.pop(0)
            if urn == goal:
                break
            node = self.by_urn[urn]
            for dep in self.edges(urn):
                if dep not in previous:
                    how = "deploys through provider" if dep == node.provider else "depends on"
                    previous[dep] = (urn, how)
                    queue.append(dep)
        links, urn = [], goal
        while urn != start and urn in previous:
            parent, how = previous[urn]
            links.append((parent, urn, how))
            urn = parent
        return list(reversed(links))

    def cluster_of(self, urn: str) -> str | None:
        """The nearest cluster along dependencies and provider links."""
        if urn not in self._cluster:
            queue, seen, found = [urn], {urn}, None
            while queue:
                current = queue.pop(0)
                if self.by_urn[current].type in (_EKS_CLUSTER, _GKE_CLUSTER):
                    found = current
                    break
                for dep in self.edges(current):
                    if dep not in seen:
                        seen.add(dep)
                        queue.append(dep)
            self._cluster[urn] = found
        return self._cluster[urn]

    def is_a(self, node: Node, cls: str) -> bool:
        return CLASSES[cls](node)

    # --- the waits ----------------------------------------------------------------------------

    def _providers(self, capability: str, cluster: str) -> list[tuple[Node, dict[str, Any]]]:
        """Who provides ``capability`` on ``cluster``, with the table row that says so."""
        if not self._provider_index:
            for row in self._rules:
                if row["kind"] != "provides":
                    continue
                for n in self.nodes:
                    owner = self.cluster_of(n.urn)
                    if owner is not None and self.is_a(n, row["class"]):
                        key = (row["capability"], owner)
                        self._provider_index.setdefault(key, []).append((n, row))
        return self._provider_index.get((capability, cluster), [])

    def _link(self, a: Node, b: Node, why: str, source: str) -> str:
        return f"{_label(a)} waits for {_label(b)}: {why} [{source}]"

    def _judge_wait(self, node: Node, row: dict[str, Any], cluster: str) -> Finding | None:
        capability = row["capability"]
        providers = [(p, r) for p, r in self._providers(capability, cluster) if p.urn != node.urn]
        before = self.ancestors(node.urn)
        if any(p.urn in before for p, _ in providers):
            return None
        name = self.by_urn[cluster].name
        for provider, provides in providers:
            if node.urn in self.ancestors(provider.urn):
                chain = [self._link(node, provider, row["why"], row["source"])]
                chain += [
                    f"{_label(self.by_urn[a])} {how} {_label(self.by_urn[b])}"
                    for a, b, how in self.path(provider.urn, node.urn)
                ]
                return Finding(
                    name,
                    f"deadlock: {_label(node)} waits for {capability} from "
                    f"{_label(provider)}, which itself waits for {_label(node)}; reorder so "
                    f"{_label(provider)} comes first ({provides['why']})",
                    tuple(chain),
                    node.urn,
                )
        if providers:
            provider = providers[0][0]
            return Finding(
                name,
                f"race: {_label(node)} needs {capability}, but nothing orders "
                f"{_label(provider)} before it; add depends_on=[{provider.name}]",
                (self._link(node, provider, row["why"], row["source"]),),
                node.urn,
            )
        return Finding(
            name,
            f"unsatisfiable wait: {_label(node)} needs {capability} and nothing on the cluster "
            f"provides it",
            (f"{_label(node)} waits for {capability}: {row['why']} [{row['source']}]",),
            node.urn,
        )

    def _judge_followed_by(self, node: Node, row: dict[str, Any], cluster: str) -> Finding | None:
        after = [
            p
            for p, _ in self._providers(row["capability"], cluster)
            if node.urn in self.ancestors(p.urn) and not self.is_a(p, row["class"])
        ]
        groups = [
            n
            for n in self.nodes
            if self.is_a(n, "node-group")
            and self.cluster_of(n.urn) == cluster
            and node.urn in self.ancestors(n.urn)
        ]
        if after and groups:
            return None
        return Finding(
            self.by_urn[cluster].name,
            f"unproven readiness: {_label(node)} does not wait, and "
            f"{'no node group' if not groups else 'no readiness point'} comes after it",
            (
                f"{_label(node)} must be followed by node groups and a provider of "
                f"{row['capability']}: {row['why']} [{row['source']}]",
            ),
            node.urn,
        )

    def _reachable(self, cluster: Node) -> str | None:
        """Why the deployer cannot reach the cluster's API, or None (also when unknown)."""
        if self._deployer is None:
            return None
        deployer = self._deployer.props
        name = cluster.props.get("name")
        if deployer.get("kind") == "self-hosted" and name in (deployer.get("reaches") or []):
            return None
        public, allowed = _endpoint(cluster)
        if public is None:
            return None  # unknown during preview: preview-unverifiable-values reports those
        where = f"the {deployer.get('kind')} deployer (runner {deployer.get('runnerLabel')!r})"
        if public is not True:
            return f"the endpoint of {name} is private-only and {where} is outside its network"
        egress = deployer.get("egressCidrs") or []
        if not egress:
            return f"{where} declares no egress CIDRs, so no allow-list entry can admit it"
        missing = [c for c in egress if not _inside(c, allowed)]
        if missing:
            return (
                f"{where} egresses from {', '.join(missing)}, which the endpoint's allow-list "
                f"{allowed} does not contain"
            )
        return None

    def _judge_route(self, node: Node, row: dict[str, Any], cluster: str) -> Finding | None:
        problem = self._reachable(self.by_urn[cluster])
        if problem is None:
            return None
        return Finding(
            self.by_urn[cluster].name,
            f"unreachable API: {problem}; run the deploy on a self-hosted runner that reaches "
            "the endpoint (meshless:deployer) or allow-list the runner's egress",
            (f"{_label(node)} waits for a route to the API: {row['why']} [{row['source']}]",),
            node.urn,
        )

    def findings(self) -> list[Finding]:
        found: list[Finding] = []
        seen: set[frozenset[str]] = set()
        route_reported: set[str] = set()
        # During `pulumi preview` of a new cluster its Kubernetes provider's kubeconfig is
        # unknown, and the engine then hands AnalyzeStack an empty property bag for every
        # resource on that provider (pulumi sdk/v3 resource/plugin/provider_plugin.go, Create:
        # `if !pcfg.known { return CreateResponse{} }`; seen in `make conformance`). A release
        # always has a chart, so empty means not known yet: which release waits, and for what,
        # cannot be rehearsed; `pulumi up` and the offline plan rehearse it with the values.
        unknown = {
            self.cluster_of(n.urn) for n in self.nodes if n.type == _HELM_RELEASE and not n.props
        }
        for node in self.nodes:
            cluster = self.cluster_of(node.urn)
            if cluster is None or cluster in unknown:
                continue
            for row in self._rules:
                if row["kind"] == "provides" or not self.is_a(node, row["class"]):
                    continue
                if row["kind"] == "followed-by":
                    finding = self._judge_followed_by(node, row, cluster)
                elif row["capability"] == "route":
                    if cluster in route_reported:
                        continue
                    finding = self._judge_route(node, row, cluster)
                    if finding:
                        route_reported.add(cluster)
                else:
                    finding = self._judge_wait(node, row, cluster)
                key = frozenset(finding.chain) if finding else frozenset()
                if finding and key not in seen:
                    seen.add(key)
                    found.append(finding)
        return found

    # --- creation phases ----------------------------------------------------------------------

    def phases(self, shown: Iterable[str] = ()) -> dict[str, list[list[str]]]:
        """Per cluster name: the creation phases, each the resources that start together."""
        wanted = set(shown) or {
            _EKS_CLUSTER,
            _GKE_CLUSTER,
            _EKS_NODE_GROUP,
            _GKE_NODE_POOL,
            _EKS_ADDON,
            _HELM_RELEASE,
            _K8S_PROVIDER,
        }
        result: dict[str, list[list[str]]] = {}
        by_cluster: dict[str, dict[int, list[str]]] = {}
        for node in self.nodes:
            cluster = self.cluster_of(node.urn)
            shown_node = node.type in wanted or node.type.startswith("kubernetes:")
            if cluster is None or not shown_node:
                continue
            label = _label(node)
            if node.type == _HELM_RELEASE:
                label += " (waits for pods)" if _waits(node) else " (no wait)"
            by_cluster.setdefault(cluster, {}).setdefault(self.depth(node.urn), []).append(label)
        for cluster, levels in by_cluster.items():
            result[self.by_urn[cluster].name] = [
                _collapse(levels[depth]) for depth in sorted(levels)
            ]
        return result


def _collapse(labels: list[str]) -> list[str]:
    """'CiliumNetworkPolicy' x N instead of N lines."""
    counts: dict[str, list[str]] = {}
    for label in sorted(labels):
        counts.setdefault(label.split(" '", 1)[0], []).append(label)
    out = []
    for kind, items in counts.items():
        out.extend(items if len(items) <= 3 else [f"{kind} x{len(items)}"])
    return out


def _endpoint(cluster: Node) -> tuple[bool | None, list[str]]:
    """Whether the endpoint is public and the CIDRs it admits; (None, []) when unknown.
    Unset means the cloud's default: EKS public to 0.0.0.0/0, GKE public with no
    authorized-networks filter."""
    allowed: Any
    if cluster.type == _EKS_CLUSTER:
        public = _get(cluster.props, "vpcConfig.endpointPublicAccess", True)
        allowed = _get(cluster.props, "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"])
    else:
        private = _get(cluster.props, "privateClusterConfig.enablePrivateEndpoint", False)
        public = (not private) if isinstance(private, bool) else None
        blocks = _get(cluster.props, "masterAuthorizedNetworksConfig.cidrBlocks", [])
        if _get(cluster.props, "masterAuthorizedNetworksConfig") is None:
            allowed = ["0.0.0.0/0"]
        elif isinstance(blocks, list):
            allowed = [b.get("cidrBlock") for b in blocks if isinstance(b, Mapping)]
        else:
            allowed = None
    if not isinstance(public, bool) or not isinstance(allowed, list):
        return None, []
    if not all(_is_cidr(c) for c in allowed):
        return None, []
    return public, [str(c) for c in allowed]


def _is_cidr(value: Any) -> bool:
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return False
    return True


def _inside(cidr: str, allowed: Iterable[Any]) -> bool:
    try:
        network = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return False
    for entry in allowed:
        try:
            outer = ipaddress.ip_network(str(entry), strict=False)
        except ValueError:
            continue
        if network.version == outer.version and network.subnet_of(outer):  # type: ignore[arg-type]
            return True
    return False
