"""Large YAML files parsed by a helper process (components/yaml_prefetch.py) read exactly as if
parsed in place: the same document, the same line behind every location, the same problems;
and anything the helper cannot do falls back to the in-place parse."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.traffic.source import _read_source
from components.yaml_lines import _Lines, load_with_lines
from components.yaml_prefetch import PREFETCH_MIN_BYTES, Prefetch, prefetching
from tests.test_yaml_lines import DOCUMENTS

# Aliases shared between flows (as benchmarks/generate_services.py writes them), a duplicate key
# and nesting: every kind of line-table entry.
FLOW = """- name: flow {i}
  from: &from{i}
    entity: ingress
  to: &to{i}
    service: svc-{i}
    namespace: team
  port: 8080
  http: {{method: GET, path: /api/{i}}}
  expect: allow
- name: again {i}
  from: *from{i}
  to: *to{i}
  port: 8080
  port: 8081
"""


def _big_flows_file(folder: Path) -> Path:
    path = folder / "flows.yaml"
    body = "".join(FLOW.format(i=i) for i in range(2100))
    path.write_text("namespace: team\nflows:\n" + body, encoding="utf-8")
    assert path.stat().st_size >= PREFETCH_MIN_BYTES
    return path


def _locations(value: Any, loc: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [loc]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _locations(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _locations(item, (*loc, index))
    return found


def _builds(text: str) -> bool:
    try:
        load_with_lines(text)
    except yaml.YAMLError:
        return False
    return True


# The documents of test_yaml_lines.py the loader builds (a helper sends nothing for the others),
# but the recursive one, which has a test of its own (== cannot compare it).
BUILT = [d for d in DOCUMENTS if _builds(d) and "&r [*r]" not in d]


@pytest.mark.parametrize("text", [*BUILT, FLOW.format(i=1)])
def test_a_line_table_survives_the_pickle(text: str) -> None:
    document, lines = load_with_lines(text)
    keys, items, duplicates = lines.portable(document)
    back, *table = pickle.loads(pickle.dumps((document, keys, items, duplicates)))
    restored = _Lines.restored(*table)
    assert back == document
    assert restored.duplicates == lines.duplicates
    for loc in _locations(document):
        assert restored.line(back, loc) == lines.line(document, loc), loc


def test_a_recursive_document_survives_the_pickle() -> None:
    document, lines = load_with_lines("r: &r [*r]\n")
    back, *table = pickle.loads(pickle.dumps((document, *lines.portable(document))))
    assert back["r"][0] is back["r"]
    assert _Lines.restored(*table).line(back, ["r", 0]) == lines.line(document, ["r", 0])


def test_a_prefetched_file_reads_as_if_parsed_in_place(tmp_path: Path) -> None:
    path = _big_flows_file(tmp_path)
    in_place, problems, parsed = _read_source(path, "flows.yaml")
    with prefetching([path]) as prefetch:
        assert prefetch is not None  # large enough: the helper runs
        source, problems_after, parsed_after = _read_source(path, "flows.yaml")
    assert (problems_after, parsed_after) == (problems, parsed)
    assert problems == [
        f"flows.yaml:{16 + 14 * i}: port: duplicate key (first at line {15 + 14 * i}); merge the two"
        for i in range(2100)
    ]
    assert source.document == in_place.document
    for loc in _locations(in_place.document)[::97]:
        assert source.place(loc) == in_place.place(loc), loc


def test_the_helper_is_used_only_for_large_files(tmp_path: Path) -> None:
    small = tmp_path / "flows.yaml"
    small.write_text("flows: []\n", encoding="utf-8")
    with prefetching([small]) as prefetch:
        assert prefetch is None
    with prefetching([tmp_path / "missing.yaml"]) as prefetch:
        assert prefetch is None


def test_what_the_helper_cannot_parse_is_parsed_in_place(tmp_path: Path) -> None:
    path = _big_flows_file(tmp_path)
    path.write_text(path.read_text(encoding="utf-8") + "- [unclosed\n", encoding="utf-8")
    expected = _read_source(path, "flows.yaml")[1:]
    assert expected[1] is False and "not valid YAML" in expected[0][0]
    with prefetching([path]) as prefetch:
        assert prefetch is not None
        assert prefetch.take(path) is None  # the helper said it could not
    with prefetching([path]):
        assert _read_source(path, "flows.yaml")[1:] == expected


def test_a_helper_that_died_leaves_the_parse_in_place(tmp_path: Path) -> None:
    path = _big_flows_file(tmp_path)
    prefetch = Prefetch([path])
    assert prefetch._child is not None
    prefetch._child.kill()
    prefetch._child.wait()
    try:
        assert prefetch.take(path) is None
    finally:
        prefetch.close()


def test_only_flows_files_inside_the_repository_are_prefetched(
    tmp_path: Path, repo_tmp: Path
) -> None:
    # The load refuses a policy folder outside the repository before reading it; the helper
    # must not read a file there either.
    from infra.config import parse_stack_config
    from infra.plan import read_stack_file
    from infra.program import REPO_ROOT, _flows_files, raw_config

    outside, inside = tmp_path / "outside", repo_tmp / "inside"
    for folder in (outside, inside):
        folder.mkdir()
        _big_flows_file(folder)
    values = read_stack_file(REPO_ROOT / "Pulumi.staging.yaml")
    config = raw_config(values)
    first, second = config["clusters"][:2]
    first["trafficPolicies"] = str(Path("..") / Path(*[".."] * 8) / outside.relative_to("/"))
    second["trafficPolicies"] = inside.relative_to(REPO_ROOT).as_posix()
    stack = parse_stack_config(config)
    assert _flows_files(stack, REPO_ROOT) == [REPO_ROOT / second["trafficPolicies"] / "flows.yaml"]
