"""The YAML-with-lines reader builds exactly what PyYAML's (C) safe loader builds (its fast path
for plain strings must not change a value), records lines and duplicate keys, and leaves
Python's garbage collector as it found it."""

from __future__ import annotations

import gc
from typing import Any

import pytest
import yaml

from components.gc_pause import gc_paused
from components.yaml_lines import _BaseLoader, _LineLoader, _Lines

# Every node kind the fast path meets or hands back to PyYAML: implicit types, quoted strings,
# merge keys, aliases (also recursive), non-string keys, explicit tags, the `=` value key.
DOCUMENTS = [
    "a: 1\nb: yes\nc: '1'\nd: ~\ne: 2001-12-14\nf: [1, x, {g: h}]\ng: 1.5\nh: 0x1F\n",
    "base: &b {x: 1, y: 2}\nder:\n  <<: *b\n  y: 3\n",
    "a: &s text\nb: *s\nc: [*s, *s]\n",
    "? [1, 2]\n: v\n",
    "!!set {a, b}\n",
    "x: !!str 123\ny: !!int '7'\nz: !!binary aGVsbG8=\n",
    "a: 1\na: 2\nb: {c: 1, c: 2}\n",
    "l: !!seq {a: 1}\n",
    "m: !!map [1]\n",
    "r: &r [*r]\n",
    "=: v\n",
    "- !!omap [{a: 1}]\n- !!pairs [{a: 1}]\n",
    "k: !foo bar\n",
    "'yes': \"no\"\n1: one\nnull: x\n",
]


def _load(loader: Any) -> tuple[str, str]:
    try:
        return "ok", repr(loader.get_single_data())
    except yaml.YAMLError as exc:
        return "error", f"{type(exc).__name__}: {exc}"
    finally:
        loader.dispose()


@pytest.mark.parametrize("text", DOCUMENTS)
def test_builds_what_the_safe_loader_builds(text: str) -> None:
    assert _load(_LineLoader(text, _Lines())) == _load(_BaseLoader(text))


def test_lines_of_keys_items_and_duplicates() -> None:
    lines = _Lines()
    loader = _LineLoader("a: x\nb:\n  - 1\n  - c: y\n    c: z\n", lines)
    document = loader.get_single_data()
    loader.dispose()
    assert document == {"a": "x", "b": [1, {"c": "z"}]}
    assert lines.line(document, ["b"]) == 2
    assert lines.line(document, ["b", 1, "c"]) == 5
    assert lines.line(document, ["b", 7]) == 2  # no such item: the nearest existing place
    assert lines.duplicates == [(5, "c", 4)]


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_paused_restores_the_collector(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with gc_paused():
            assert not gc.isenabled()
            with gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the inner block leaves the outer one in charge
        assert gc.isenabled() == enabled
    finally:
        gc.unfreeze()
        (gc.enable if was else gc.disable)()
