"""A YAML loader that records the line of every mapping key and sequence item and refuses
duplicate keys, so a problem can name ``file:line``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import yaml


class _Lines:
    """Where each mapping key and sequence item of one document starts (1-based lines), in a
    side table keyed by the id of the constructed dict/list (the document keeps them alive)."""

    def __init__(self) -> None:
        self.keys: dict[int, dict[Any, int]] = {}
        self.items: dict[int, list[int]] = {}
        self.duplicates: list[tuple[int, str, int]] = []

    def portable(self, document: Any) -> tuple[list[Any], list[Any], list[Any]]:
        """The table with each entry beside its dict or list instead of that object's id, for
        a pickle that holds ``document`` too (a pickle keeps shared objects shared, while ids
        mean nothing in another process): (keys, items, duplicates) for ``restored``. Only
        what ``document`` reaches is kept; nothing else can be looked up."""
        keys: list[tuple[Any, dict[Any, int]]] = []
        items: list[tuple[Any, list[int]]] = []
        seen: set[int] = set()
        stack = [document]
        while stack:  # no recursion: a deeply nested file must not overflow the stack
            node = stack.pop()
            if not isinstance(node, (dict, list)) or id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, dict):
                if id(node) in self.keys:
                    keys.append((node, self.keys[id(node)]))
                stack.extend(node.values())
            else:
                if id(node) in self.items:
                    items.append((node, self.items[id(node)]))
                stack.extend(node)
        return keys, items, list(self.duplicates)

    @classmethod
    def restored(
        cls, keys: list[Any], items: list[Any], duplicates: list[tuple[int, str, int]]
    ) -> _Lines:
        """The table ``portable`` gave, keyed again by the ids of this process's objects."""
        lines = cls()
        lines.keys = {id(node): table for node, table in keys}
        lines.items = {id(node): table for node, table in items}
        lines.duplicates = list(duplicates)
        return lines

    def line(self, document: Any, loc: Sequence[Any]) -> int | None:
        node, line = document, 1
        for part in loc:
            if isinstance(node, dict) and part in node:
                line = self.keys.get(id(node), {}).get(part, line)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                items = self.items.get(id(node))
                line = items[part] if items is not None else line
                node = node[part]
            else:
                break
        return line


_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_STR = "tag:yaml.org,2002:str"


class _LineLoader(_BaseLoader):
    """A safe loader that records lines in a ``_Lines`` table and reports duplicate keys
    (plain PyYAML silently keeps the last one)."""

    def __init__(self, stream: str, lines: _Lines) -> None:
        super().__init__(stream)
        self.table = lines
        self.resolved: dict[tuple[str, Any], str] = {}

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        """The tag of a node, remembered per scalar text for this document: the parser asks
        for every scalar, and a flows file repeats the same keys and values thousands of
        times. Safe because the safe loader has no path resolvers (the tag depends only on
        the text and its style)."""
        if kind is not yaml.ScalarNode:
            return str(super().resolve(kind, value, implicit))
        key = (value, implicit)
        tag = self.resolved.get(key)
        if tag is None:
            tag = self.resolved[key] = super().resolve(kind, value, implicit)
        return tag


def _constructed(loader: _LineLoader, node: yaml.Node) -> Any:
    """A node's value; a plain string is its own text (what PyYAML's str constructor returns),
    taken without the constructor's bookkeeping, which dominated loading 1270 services."""
    if type(node) is yaml.ScalarNode and node.tag == _STR:
        return node.value
    return loader.construct_object(node)


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
    data: dict[Any, Any] = {}
    yield data
    if not isinstance(node, yaml.MappingNode):  # `!!map [1]`: PyYAML's "expected a mapping"
        data.update(loader.construct_mapping(node))
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            loader.table.duplicates.append((line, key_node.value, seen[key_node.value]))
        seen[key_node.value] = line
    if all(type(k) is yaml.ScalarNode and k.tag == _STR for k, _v in node.value):
        # String keys only (no merge key to flatten): what construct_mapping builds.
        for key_node, value_node in node.value:
            data[key_node.value] = _constructed(loader, value_node)
    else:
        data.update(loader.construct_mapping(node))
    # Locations name keys as written; plain scalars are their own text.
    loader.table.keys[id(data)] = {
        k.value: k.start_mark.line + 1 for k, _v in node.value if isinstance(k, yaml.ScalarNode)
    }


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[list[Any]]:
    data: list[Any] = []
    yield data
    if isinstance(node, yaml.SequenceNode):
        data.extend(_constructed(loader, item) for item in node.value)
    else:
        data.extend(loader.construct_sequence(node))  # PyYAML's "expected a sequence node"
    loader.table.items[id(data)] = [item.start_mark.line + 1 for item in node.value]


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_with_lines(text: str) -> tuple[Any, _Lines]:
    """One YAML document and its line table; raises what PyYAML raises for text that is not
    YAML (the plan parses in place, components/traffic/source.py, and in its prefetch helper,
    components/yaml_prefetch.py, with this)."""
    lines = _Lines()
    loader = _LineLoader(text, lines)
    try:
        return loader.get_single_data(), lines
    finally:
        loader.dispose()
