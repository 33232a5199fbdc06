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

    def line(self, document: Any, loc: Sequence[Any]) -> int | None:
        node, line = document, 1
        for part in loc:
            if isinstance(node, dict) and part in node:
                line = self.keys.get(id(node), {}).get(part, line)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                line = self.items.get(id(node), [line] * len(node))[part]
                node = node[part]
            else:
                break
        return line


_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_BaseLoader):
    """A safe loader that records lines in a ``_Lines`` table and reports duplicate keys
    (plain PyYAML silently keeps the last one)."""

    def __init__(self, stream: str, lines: _Lines) -> None:
        super().__init__(stream)
        self.table = lines


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
    data: dict[Any, Any] = {}
    yield data
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            loader.table.duplicates.append((line, key_node.value, seen[key_node.value]))
        seen[key_node.value] = line
    data.update(loader.construct_mapping(node))
    # Locations name keys as written; plain scalars are their own text.
    loader.table.keys[id(data)] = {
        k.value: k.start_mark.line + 1 for k, _v in node.value if isinstance(k, yaml.ScalarNode)
    }


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[list[Any]]:
    data: list[Any] = []
    yield data
    data.extend(loader.construct_sequence(node))
    loader.table.items[id(data)] = [item.start_mark.line + 1 for item in node.value]


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
