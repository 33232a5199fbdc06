"""The stack-export format's reader, index and writer (infra/export_format.py): what the gate,
the diff, the graph and the summary all read a plan or a `pulumi stack export` through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from infra.export_format import (
    HELM_RELEASE,
    ExportError,
    StackExport,
    document_of,
    dump_json,
    read_export,
    write_export,
)

STACK = "urn:pulumi:prod::meshless::"


def res(type_: str, name: str, parent: str = "", **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"urn": f"{STACK}{type_}::{name}", "type": type_, "custom": True}
    if parent:
        entry["parent"] = parent
    return entry | extra


def two_clusters() -> list[dict[str, Any]]:
    stack = res("pulumi:pulumi:Stack", "meshless-prod")
    eks = res("meshless:aws:EksCluster", "prod-eks", stack["urn"], custom=False)
    gke = res("meshless:gcp:GkeCluster", "prod-gke", stack["urn"], custom=False)
    cilium = res("meshless:cilium:CiliumRelease", "prod-eks-cilium", eks["urn"], custom=False)
    release = res(HELM_RELEASE, "prod-eks-cilium", cilium["urn"], inputs={"chart": "cilium"})
    gke_release = res(HELM_RELEASE, "prod-gke-cilium", gke["urn"], inputs={"chart": "cilium"})
    bucket = res("aws:s3/bucket:Bucket", "logs", stack["urn"])
    return [stack, eks, gke, cilium, release, gke_release, bucket]


class TestIndex:
    def test_cluster_of_is_the_nearest_cluster_component(self) -> None:
        export = StackExport(two_clusters())
        owners = {urn.rsplit("::", 1)[-1]: owner for urn, owner in export.owners.items()}
        assert owners == {
            "meshless-prod": None,
            "prod-eks": "prod-eks",
            "prod-gke": "prod-gke",
            "prod-eks-cilium": "prod-eks",  # the component and its release share the name
            "prod-gke-cilium": "prod-gke",
            "logs": None,
        }

    def test_releases_per_cluster_and_children(self) -> None:
        resources = two_clusters()
        export = StackExport(resources)
        releases = export.releases()
        assert sorted(releases) == ["prod-eks", "prod-gke"]
        assert [r["urn"] for r in releases["prod-eks"]] == [resources[4]["urn"]]
        assert [r["urn"] for r in export.children(resources[0]["urn"])] == [
            resources[1]["urn"],
            resources[2]["urn"],
            resources[6]["urn"],
        ]
        assert export.children("urn:nothing") == []

    def test_parent_cycle_ends_without_a_cluster(self) -> None:
        a = res("x:y:Z", "a", f"{STACK}x:y:Z::b")
        b = res("x:y:Z", "b", a["urn"])
        assert StackExport([a, b]).owners == {a["urn"]: None, b["urn"]: None}

    def test_missing_parent_is_outside_the_clusters(self) -> None:
        orphan = res("x:y:Z", "orphan", f"{STACK}meshless:aws:EksCluster::gone")
        assert StackExport([orphan]).cluster_of(orphan) is None

    def test_of_returns_an_index_unchanged(self) -> None:
        export = StackExport(two_clusters())
        assert StackExport.of(export) is export
        assert StackExport.of(two_clusters()).by_urn.keys() == export.by_urn.keys()


class TestReader:
    def _write(self, tmp_path: Path, content: Any) -> Path:
        path = tmp_path / "export.json"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content if isinstance(content, str) else json.dumps(content))
        return path

    def test_round_trip(self, tmp_path: Path) -> None:
        path = tmp_path / "resources.json"
        write_export(path, document_of(two_clusters()))
        assert read_export(path).resources == two_clusters()

    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            ("{not json", r"stack export is not valid JSON \(line 1, column 2"),
            (b"\xff\xfe{}", "not UTF-8 text"),
            ([], "not a stack export"),
            ({"deployment": {"resources": []}}, "not a stack export"),
            ({"version": 4, "deployment": {"resources": []}}, "version is 4; only version 3"),
            ({"version": 3, "deployment": {"resources": "x"}}, "resources is not a list"),
            ({"version": 3, "deployment": {"resources": [7]}}, r"resources\[0\] is not an object"),
            (
                {"version": 3, "deployment": {"resources": [{"urn": "u", "type": ""}]}},
                r"resources\[0\] has no 'type' string",
            ),
            (
                {
                    "version": 3,
                    "deployment": {"resources": [{"urn": "u", "type": "t", "parent": 1}]},
                },
                r"resources\[0\]\.parent is not a string",
            ),
            (
                {
                    "version": 3,
                    "deployment": {"resources": [{"urn": "u", "type": "t", "outputs": []}]},
                },
                r"resources\[0\]\.outputs is not an object",
            ),
        ],
    )
    def test_each_problem_names_the_file_and_the_place(
        self, tmp_path: Path, content: Any, expected: str
    ) -> None:
        path = self._write(tmp_path, content)
        with pytest.raises(ExportError, match=expected) as caught:
            read_export(path)
        assert str(caught.value).startswith(str(path))

    def test_nesting_deeper_than_the_reader_follows(self, tmp_path: Path) -> None:
        path = self._write(tmp_path, "[" * 200_000 + "]" * 200_000)
        with pytest.raises(ExportError, match="nests arrays or objects deeper"):
            read_export(path)

    def test_one_live_resource_per_urn(self, tmp_path: Path) -> None:
        twice = [res("x:y:Z", "a"), res("x:y:Z", "b"), res("x:y:Z", "a", inputs={"k": 1})]
        path = self._write(tmp_path, document_of(twice))
        with pytest.raises(
            ExportError, match=r"resources\[2\] repeats the URN of .*resources\[0\]"
        ):
            read_export(path)

    def test_the_old_half_of_a_replacement_is_not_the_resource(self, tmp_path: Path) -> None:
        old = res("x:y:Z", "a", inputs={"size": 1}, delete=True)
        new = res("x:y:Z", "a", inputs={"size": 2})
        export = read_export(self._write(tmp_path, document_of([old, new])))
        assert len(export) == 2 and export.by_urn[new["urn"]]["inputs"] == {"size": 2}

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ExportError, match="base plan not found"):
            read_export(tmp_path / "nope.json", "base plan")

    def test_null_resources_is_an_empty_stack(self, tmp_path: Path) -> None:
        path = self._write(tmp_path, {"version": 3, "deployment": {"resources": None}})
        assert len(read_export(path)) == 0


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    _containers,
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
@example(value={"beyond 64 bits": 10**30, "list": [1, "é"]})
def test_written_json_is_what_the_standard_library_writes(value: Any) -> None:
    """Byte for byte `json.dumps(indent=2)` for printable ASCII text, and always the same JSON
    (orjson writes DEL and non-ASCII characters as they are, the standard library escapes them)."""
    written = dump_json(value)
    assert json.loads(written) == value
    if all(32 <= byte < 127 or byte == 10 for byte in written):
        assert written.decode() == json.dumps(value, indent=2) + "\n"
