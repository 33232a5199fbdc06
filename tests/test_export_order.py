"""The plan's resources.json lists resources in deployment order (infra/export_format.py)."""

from __future__ import annotations

import pytest

from infra.export_format import ExportError, export_document
from infra.mocks import RecordedResource

STACK = "urn:pulumi:staging::meshless::"


def _res(name: str, parent: str = "", deps: tuple[str, ...] = ()) -> RecordedResource:
    return RecordedResource(
        urn=STACK + "test:index:Thing::" + name,
        type="test:index:Thing",
        name=name,
        custom=True,
        parent=STACK + "test:index:Thing::" + parent if parent else "",
        provider="",
        dependencies=[STACK + "test:index:Thing::" + d for d in deps],
        property_dependencies={},
        inputs={},
    )


def _names(document: dict) -> list[str]:
    return [r["urn"].rsplit("::", 1)[-1] for r in document["deployment"]["resources"]]


class TestDeploymentOrder:
    """Every resource after its parent and dependencies; nothing dropped."""

    def test_dependencies_first_then_by_urn(self) -> None:
        resources = [_res("c", deps=("b",)), _res("b", parent="a"), _res("a"), _res("d")]
        assert _names(export_document("staging", resources)) == ["a", "b", "c", "d"]

    def test_cycle_is_an_error_not_a_dropped_resource(self) -> None:
        resources = [_res("a", deps=("b",)), _res("b", deps=("a",)), _res("c")]
        with pytest.raises(ExportError, match=r"cycle.*Thing::(a|b)"):
            export_document("staging", resources)
