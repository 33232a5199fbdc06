"""A Mermaid picture of a plan: clusters → Cilium release → network policies.

`render_mermaid(resources)` takes the `resources` list of a `pulumi stack export`-shaped
`resources.json` and returns a `flowchart LR` that GitHub renders inline. Policies are grouped
per namespace with a count once a namespace holds more than a few, and the namespaces under one
release are capped, so a stack with 1,270 CiliumNetworkPolicies stays a readable picture (and
inside Mermaid's default text and edge limits).

Which cluster a release belongs to, and which release a policy belongs to, is found by walking
the state's own links (parent, provider reference, dependencies) from the resource to the
nearest resource of the wanted kind; nothing is inferred from names.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CLUSTER_TYPES",
    "POLICY_TYPES",
    "RELEASE_TYPES",
    "render_mermaid",
]

CLUSTER_COMPONENTS = {
    "meshless:aws:EksCluster": "EKS",
    "meshless:gcp:GkeCluster": "GKE",
}
CLUSTER_CUSTOMS = {
    "aws:eks/cluster:Cluster": "EKS",
    "gcp:container/cluster:Cluster": "GKE",
}
CLUSTER_TYPES = {**CLUSTER_COMPONENTS, **CLUSTER_CUSTOMS}
RELEASE_COMPONENT = "meshless:cilium:CiliumRelease"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
RELEASE_TYPES = {RELEASE_COMPONENT, HELM_RELEASE}
POLICY_TYPES = {
    "kubernetes:cilium.io/v2:CiliumNetworkPolicy": "CNP",
    "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy": "CCNP",
}

#: A namespace with more policies than this becomes one node with a count.
GROUP_OVER = 3
#: At most this many namespace nodes under one release; the rest fold into one node.
MAX_NAMESPACES = 25
#: How far the link walk goes before giving up (parent/provider/dependency hops).
_MAX_HOPS = 8
_CLUSTERWIDE = "(cluster-wide)"


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _provider_urn(ref: str | None) -> str | None:
    """A provider reference is `<urn>::<id>`; the URN itself contains `::`."""
    if not ref:
        return None
    return ref.rsplit("::", 1)[0] if ref.count("::") > 3 else ref


def _label(text: str) -> str:
    """Quote-safe Mermaid label text (entity codes for characters that break parsing)."""
    for ch, code in (
        ("&", "#amp;"),
        ('"', "#quot;"),
        ("<", "#lt;"),
        (">", "#gt;"),
        ("[", "#91;"),
        ("]", "#93;"),
        ("{", "#123;"),
        ("}", "#125;"),
        ("|", "#124;"),
    ):
        text = text.replace(ch, code)
    return text


class _Ids:
    """Short, sanitized, unique node ids (Mermaid ids: letters, digits, underscore).

    The id is built from a readable hint (a resource or namespace name); the full key only
    decides identity, so two resources with the same name still get two nodes.
    """

    def __init__(self) -> None:
        self._by_key: dict[str, str] = {}
        self._used: set[str] = set()

    def __call__(self, prefix: str, key: str, hint: str) -> str:
        full = f"{prefix}:{key}"
        if full in self._by_key:
            return self._by_key[full]
        base = f"{prefix}_" + (re.sub(r"[^A-Za-z0-9_]+", "_", hint).strip("_") or "x")
        node_id, n = base, 1
        while node_id in self._used:
            n += 1
            node_id = f"{base}_{n}"
        self._used.add(node_id)
        self._by_key[full] = node_id
        return node_id


@dataclass
class _Release:
    urn: str
    label: str
    policies: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class _Cluster:
    urn: str
    label: str
    releases: list[_Release] = field(default_factory=list)
    direct_policies: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


class _State:
    """Index over the exported resources, with a nearest-of-kind link walk."""

    def __init__(self, resources: Iterable[dict[str, Any]]) -> None:
        self.by_urn: dict[str, dict[str, Any]] = {
            r["urn"]: r for r in resources if isinstance(r, dict) and r.get("urn")
        }
        self.children: dict[str, list[str]] = defaultdict(list)
        for urn, r in self.by_urn.items():
            if r.get("parent"):
                self.children[r["parent"]].append(urn)

    def type_of(self, urn: str) -> str:
        return str(self.by_urn.get(urn, {}).get("type", ""))

    def _links(self, urn: str) -> list[str]:
        r = self.by_urn.get(urn, {})
        links = [r.get("parent"), _provider_urn(r.get("provider"))]
        links += list(r.get("dependencies") or [])
        return [u for u in links if u and u in self.by_urn]

    def nearest(self, start: str, want: Callable[[str], bool]) -> str | None:
        """Breadth-first over parent/provider/dependencies; the closest match wins."""
        seen, queue = {start}, deque([(start, 0)])
        while queue:
            urn, hops = queue.popleft()
            if urn != start and want(urn):
                return urn
            if hops >= _MAX_HOPS:
                continue
            for nxt in self._links(urn):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, hops + 1))
        return None


def _cluster_aliases(state: _State) -> dict[str, str]:
    """Every cluster resource → the cluster node it draws as.

    A cluster component is its own node and absorbs the bare cluster resource inside it; a
    bare cluster resource outside any component is a node of its own.
    """
    aliases = {u: u for u in state.by_urn if state.type_of(u) in CLUSTER_COMPONENTS}
    for urn in state.by_urn:
        if state.type_of(urn) in CLUSTER_CUSTOMS:
            owner = state.nearest(urn, lambda x: x in aliases and aliases[x] == x)
            aliases[urn] = owner or urn
    return aliases


def _release_label(state: _State, urn: str) -> str:
    helm = urn if state.type_of(urn) == HELM_RELEASE else _helm_child(state, urn)
    inputs = (state.by_urn.get(helm, {}).get("inputs") or {}) if helm else {}
    chart = inputs.get("chart") or "cilium"
    version = inputs.get("version")
    namespace = inputs.get("namespace")
    text = f"Helm {chart} {version}" if isinstance(version, str) else f"Helm {chart}"
    if isinstance(namespace, str):
        text += f"<br/>ns {namespace}"
    return f"{text}<br/>{_urn_name(urn)}"


def _helm_child(state: _State, component: str) -> str | None:
    queue = deque(state.children.get(component, []))
    while queue:
        urn = queue.popleft()
        if state.type_of(urn) == HELM_RELEASE:
            return urn
        queue.extend(state.children.get(urn, []))
    return None


def _release_aliases(state: _State) -> dict[str, str]:
    """Every release resource → the release node it draws as (component absorbs its Helm)."""
    aliases: dict[str, str] = {}
    for comp in (u for u in state.by_urn if state.type_of(u) == RELEASE_COMPONENT):
        aliases[comp] = comp
        if helm := _helm_child(state, comp):
            aliases[helm] = comp
    for urn in state.by_urn:
        if state.type_of(urn) == HELM_RELEASE and urn not in aliases:
            aliases[urn] = urn
    return aliases


def _policy_key(state: _State, urn: str) -> tuple[str, str]:
    """(namespace, display name) of a policy object."""
    inputs = state.by_urn[urn].get("inputs") or {}
    meta = inputs.get("metadata") if isinstance(inputs.get("metadata"), dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) else _urn_name(urn)
    if POLICY_TYPES.get(state.type_of(urn)) == "CCNP":
        return _CLUSTERWIDE, name
    namespace = meta.get("namespace")
    return (namespace if isinstance(namespace, str) and namespace else "default"), name


def _owner(state: _State, starts: list[str], aliases: dict[str, str]) -> str | None:
    """The node (via `aliases`) nearest to the first start that reaches one."""
    for start in starts:
        found = state.nearest(start, lambda x: x in aliases)
        if found:
            return aliases[found]
    return None


def _build(state: _State) -> tuple[list[_Cluster], _Cluster]:
    """Clusters with their releases and policies; a pseudo-cluster holds what is unlinked."""
    cluster_alias = _cluster_aliases(state)
    clusters = {
        u: _Cluster(u, f"{CLUSTER_TYPES[state.type_of(u)]} {_urn_name(u)}")
        for u in sorted(set(cluster_alias.values()))
    }
    orphan = _Cluster("", "not linked to a cluster")
    release_alias = _release_aliases(state)
    releases: dict[str, _Release] = {}
    for r_urn in sorted(set(release_alias.values())):
        release = _Release(r_urn, _release_label(state, r_urn))
        releases[r_urn] = release
        # A component often carries no provider of its own: its Helm child does.
        starts = [r_urn] + [h for h, c in release_alias.items() if c == r_urn and h != r_urn]
        owner = _owner(state, starts, cluster_alias)
        (clusters[owner] if owner else orphan).releases.append(release)
    for p_urn in sorted(u for u in state.by_urn if state.type_of(u) in POLICY_TYPES):
        ns, name = _policy_key(state, p_urn)
        rel = _owner(state, [p_urn], release_alias)
        if rel:
            releases[rel].policies[ns].append(name)
            continue
        owner = _owner(state, [p_urn], cluster_alias)
        (clusters[owner] if owner else orphan).direct_policies[ns].append(name)
    return list(clusters.values()), orphan


def _policy_nodes(
    ids: _Ids, parent_id: str, scope: str, policies: dict[str, list[str]]
) -> list[str]:
    lines: list[str] = []
    namespaces = sorted(policies, key=lambda ns: (-len(policies[ns]), ns))
    shown, folded = namespaces[:MAX_NAMESPACES], namespaces[MAX_NAMESPACES:]
    for ns in sorted(shown):
        names = sorted(policies[ns])
        if len(names) > GROUP_OVER:
            node = ids("ns", f"{scope}/{ns}", ns)
            lines.append(f'    {node}["{_label(ns)}<br/>{len(names)} policies"]:::policy')
            lines.append(f"    {parent_id} --> {node}")
            continue
        for name in names:
            node = ids("p", f"{scope}/{ns}/{name}", f"{ns}_{name}")
            lines.append(f'    {node}["{_label(ns)}/{_label(name)}"]:::policy')
            lines.append(f"    {parent_id} --> {node}")
    if folded:
        count = sum(len(policies[ns]) for ns in folded)
        node = ids("more", scope, _urn_name(scope))
        lines.append(f'    {node}["+{len(folded)} more namespaces<br/>{count} policies"]:::policy')
        lines.append(f"    {parent_id} --> {node}")
    return lines


def _cluster_lines(ids: _Ids, cluster: _Cluster) -> list[str]:
    lines: list[str] = []
    scope = cluster.urn or "orphan"
    c_id = ids("c", scope, _urn_name(scope))
    lines.append(f'    {c_id}["{_label(cluster.label)}"]:::cluster')
    for release in cluster.releases:
        r_id = ids("r", release.urn, _urn_name(release.urn))
        label = "<br/>".join(_label(part) for part in release.label.split("<br/>"))
        lines.append(f'    {r_id}["{label}"]:::release')
        lines.append(f"    {c_id} --> {r_id}")
        lines += _policy_nodes(ids, r_id, release.urn, release.policies)
    lines += _policy_nodes(ids, c_id, scope, cluster.direct_policies)
    return lines


def render_mermaid(resources: list[dict[str, Any]]) -> str:
    """A Mermaid `flowchart LR` of clusters → Cilium releases → network policies."""
    state = _State(resources)
    clusters, orphan = _build(state)
    ids = _Ids()
    lines = [
        "flowchart LR",
        "    classDef cluster fill:#e8f0fe,stroke:#1a73e8,color:#0b2e6b",
        "    classDef release fill:#fef7e0,stroke:#f9ab00,color:#5c3b00",
        "    classDef policy fill:#e6f4ea,stroke:#188038,color:#0b3d1a",
    ]
    for cluster in clusters:
        lines += _cluster_lines(ids, cluster)
    if orphan.releases or orphan.direct_policies:
        lines += _cluster_lines(ids, orphan)
    if len(lines) == 4:
        lines.append('    empty["no clusters in this plan"]')
    return "\n".join(lines) + "\n"
