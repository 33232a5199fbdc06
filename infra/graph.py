"""A Mermaid picture of who may call whom, drawn from a plan's traffic policies.

`render_mermaid(resources, base=None, clusters=None)` reads the CiliumNetworkPolicy objects of
a `resources.json` (infra/callgraph.py) and returns a `flowchart LR`: services grouped by
namespace, an arrow from caller to callee labelled with the ports and a short form of the L7
rules, FQDN and CIDR egress, and the entities that may call in (the ingress controller's
`ingress` identity, `world`). Clusters that run the same policies share one picture; clusters
that differ get a box each.

With `base` (the base branch's resources), arrows the change adds are green and thick, arrows
it removes red and dashed. Above `MAX_SERVICES` services in one picture, each namespace
becomes one node with its service count and the arrows between namespaces carry call counts,
so the 127- and 1,270-service sets stay a picture (and inside Mermaid's default text limit).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from infra.callgraph import Edge, Node, call_graphs
from infra.export_format import StackExport

__all__ = ["MAX_EDGES", "MAX_NAMESPACES", "MAX_SERVICES", "render_mermaid"]

#: More services than this in one picture: one node per namespace.
MAX_SERVICES = 30
#: Namespaces drawn when collapsed (those with the most services); the rest share one node.
MAX_NAMESPACES = 20
#: Arrows in the whole chart: Mermaid refuses more than its maxEdges (500 by default, a
#: "secure" setting GitHub's renderer does not raise), so the lightest are left out and counted.
MAX_EDGES = 300

_ADDED = "stroke:#1a7f37,stroke-width:3px,color:#1a7f37"
_REMOVED = "stroke:#cf222e,stroke-width:2px,stroke-dasharray:5 5,color:#cf222e"
_CLASSES = [
    "classDef svc fill:#e6f4ea,stroke:#188038,color:#0b3d1a",
    "classDef peer fill:#fef7e0,stroke:#f9ab00,color:#5c3b00",
    "classDef ext fill:#e8f0fe,stroke:#1a73e8,color:#0b2e6b",
]


def _label(text: str) -> str:
    """Text inside a quoted Mermaid label: entity codes for what would end or break it."""
    for ch, code in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(ch, code)
    return text.replace("\n", "<br/>")


class _Ids:
    """Short, unique Mermaid ids (letters, digits, underscore) from readable hints."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[Any, ...], str] = {}
        self._used: set[str] = set()

    def __call__(self, key: tuple[Any, ...]) -> str:
        if key not in self._by_key:
            base = re.sub(r"[^A-Za-z0-9_]+", "_", "_".join(map(str, key))).strip("_") or "n"
            node_id, n = base, 1
            while node_id in self._used:
                n += 1
                node_id = f"{base}_{n}"
            self._used.add(node_id)
            self._by_key[key] = node_id
        return self._by_key[key]


def _namespace(node: Node) -> str | None:
    return node[1] if node[0] in ("svc", "sel", "ns", "nsgroup") else None


def _shape(node: Node, text: str) -> str:
    kind = node[0]
    if kind == "entity":
        return f'(["{_label(text)}"]):::ext'
    if kind in ("fqdn", "cidr"):
        return '{{"' + _label(text) + '"}}:::ext'
    return f'["{_label(text)}"]:::' + ("svc" if kind in ("svc", "nsgroup", "more") else "peer")


def _text(node: Node, services: Mapping[str, int]) -> str:
    kind = node[0]
    if kind == "svc":
        return node[2]
    if kind == "sel":
        return node[2]
    if kind == "ns":
        return f"any pod in {node[1]}"
    if kind == "nsgroup":
        n = services.get(node[1], 0)
        return f"{node[1]}\n{n} service{'s' if n != 1 else ''}" if n else f"{node[1]}"
    if kind == "more":
        k, n = services.get("#more", 0), services.get("", 0)
        return f"{k} more namespace{'s' if k != 1 else ''}\n{n} service{'s' if n != 1 else ''}"
    if kind == "entity":
        return f"entity {node[1]}"
    return node[1]


def _collapse(edges: Iterable[Edge], shown: set[str]) -> Counter[tuple[Node, Node]]:
    """Edges between namespaces (and to outside peers), counted; namespaces not in ``shown``
    share one node."""

    def group(node: Node) -> Node:
        ns = _namespace(node)
        if ns is None:
            return node
        return ("nsgroup", ns) if ns in shown else ("more",)

    return Counter((group(e.src), group(e.dst)) for e in edges)


def _shown_namespaces(every: set[Edge], per_ns: Mapping[str, int]) -> set[str]:
    """The namespaces with the most services, up to MAX_NAMESPACES."""
    names = {ns for e in every for n in (e.src, e.dst) if (ns := _namespace(n)) is not None}
    ranked = sorted(names, key=lambda ns: (-per_ns.get(ns, 0), ns))
    return set(ranked[:MAX_NAMESPACES])


def _calls(n: int) -> str:
    return f"{n} call{'s' if n != 1 else ''}"


class _Picture:
    """The lines of one flowchart, with a running edge index for `linkStyle`."""

    def __init__(self) -> None:
        self.ids = _Ids()
        self.lines = ["flowchart LR", *(f"    {c}" for c in _CLASSES)]
        self.edge_count = 0
        self.styles: list[str] = []

    def group(self, prefix: str, head: set[Edge], base: set[Edge] | None, indent: str) -> None:
        every = head | (base or set())
        declared = {n for e in every for n in (e.src, e.dst) if n[0] == "svc"}
        per_ns: dict[str, int] = Counter(n[1] for n in declared)
        if len(declared) > MAX_SERVICES:
            edges, status, per_ns = self._collapsed(prefix, head, base, per_ns, indent)
        else:
            edges = [(e.src, e.dst, e.label) for e in sorted(every)]
            status = [
                self._status(e in head, base is None or e in base, base) for e in sorted(every)
            ]
        self._nodes(prefix, {n for s, d, _ in edges for n in (s, d)}, per_ns, indent)
        for (src, dst, label), state in zip(edges, status, strict=True):
            arrow = "-.->" if state == "removed" else "-->"
            self.lines.append(
                f'{indent}{self.ids((prefix, *src))} {arrow}|"{_label(label)}"| '
                f"{self.ids((prefix, *dst))}"
            )
            if state != "same":
                self.styles.append(
                    f"    linkStyle {self.edge_count} {_ADDED if state == 'added' else _REMOVED}"
                )
            self.edge_count += 1

    def _collapsed(
        self,
        prefix: str,
        head: set[Edge],
        base: set[Edge] | None,
        per_ns: Mapping[str, int],
        indent: str,
    ) -> tuple[list[tuple[Node, Node, str]], list[str], dict[str, int]]:
        """Namespace-to-namespace arrows with call counts, within the chart's arrow budget."""
        every = head | (base or set())
        shown = _shown_namespaces(every, per_ns)
        counts = dict(per_ns)
        counts[""] = sum(n for ns, n in per_ns.items() if ns not in shown)
        counts["#more"] = len(
            {_namespace(n) for e in every for n in (e.src, e.dst)} - shown - {None}
        )
        now = _collapse(head, shown)
        was = _collapse(base if base is not None else head, shown)
        budget = max(0, MAX_EDGES - self.edge_count)
        ranked = sorted(set(now) | set(was), key=lambda p: (-(now[p] + was[p]), p))
        pairs, hidden = sorted(ranked[:budget]), ranked[budget:]
        if hidden:
            self.lines.append(
                f'{indent}{self.ids((prefix, "hidden"))}["{len(hidden)} more arrows '
                f'({_calls(sum(now[p] for p in hidden))}) not drawn"]:::peer'
            )
        edges = [(s, d, self._count_label(now[(s, d)], was[(s, d)], base)) for s, d in pairs]
        return edges, [self._status(now[p] > 0, was[p] > 0, base) for p in pairs], counts

    @staticmethod
    def _status(in_head: bool, in_base: bool, base: set[Edge] | None) -> str:
        if base is None or (in_head and in_base):
            return "same"
        return "added" if in_head else "removed"

    @staticmethod
    def _count_label(now: int, was: int, base: set[Edge] | None) -> str:
        if base is None or now == was or not now or not was:
            return _calls(now or was)
        return f"{_calls(now)} (was {was})"

    def _nodes(self, prefix: str, nodes: set[Node], per_ns: Mapping[str, int], indent: str) -> None:
        by_ns: dict[str | None, list[Node]] = defaultdict(list)
        for node in nodes:
            # A collapsed namespace is its own node: no box around it.
            by_ns[None if node[0] == "nsgroup" else _namespace(node)].append(node)
        for ns in sorted(n for n in by_ns if n is not None):
            inner = indent + "    "
            self.lines.append(
                f'{indent}subgraph {self.ids((prefix, "namespace", ns))}["{_label(ns)}"]'
            )
            for node in sorted(by_ns[ns]):
                self.lines.append(
                    f"{inner}{self.ids((prefix, *node))}{_shape(node, _text(node, per_ns))}"
                )
            self.lines.append(f"{indent}end")
        for node in sorted(by_ns.get(None, [])):
            self.lines.append(
                f"{indent}{self.ids((prefix, *node))}{_shape(node, _text(node, per_ns))}"
            )


def _groups(
    head: Mapping[str, set[Edge]], base: Mapping[str, set[Edge]] | None, order: Sequence[str]
) -> list[tuple[list[str], set[Edge], set[Edge] | None]]:
    """Clusters with the same picture (same policies now, and before) drawn once."""
    names = [c for c in order if c in head or (base and c in base)]
    names += sorted((set(head) | set(base or {})) - set(names))
    groups: dict[tuple[frozenset[Edge], frozenset[Edge] | None], list[str]] = {}
    for name in names:
        now = frozenset(head.get(name, set()))
        was = frozenset(base.get(name, set())) if base is not None else None
        groups.setdefault((now, was), []).append(name)
    return [
        (c, set(now), set(was) if was is not None else None) for (now, was), c in groups.items()
    ]


def render_mermaid(
    resources: StackExport | list[dict[str, Any]],
    *,
    base: StackExport | list[dict[str, Any]] | None = None,
    clusters: Sequence[str] = (),
) -> str:
    """The call graph of a plan as a Mermaid `flowchart LR` (``clusters`` gives the order)."""
    head_graphs = call_graphs(resources)
    base_graphs = call_graphs(base) if base is not None else None
    picture = _Picture()
    groups = _groups(head_graphs, base_graphs, clusters)
    if not groups:
        picture.lines.append('    empty["no traffic policies in this plan"]')
    for index, (names, head, was) in enumerate(groups):
        if len(groups) == 1:
            picture.group("", head, was, "    ")
            continue
        title = ("cluster " if len(names) == 1 else "clusters ") + ", ".join(names)
        picture.lines.append(f'    subgraph {picture.ids(("g", index))}["{_label(title)}"]')
        picture.group(f"g{index}", head, was, "        ")
        picture.lines.append("    end")
    return "\n".join(picture.lines + picture.styles) + "\n"
