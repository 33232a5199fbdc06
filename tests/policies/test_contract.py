"""One contract for the names program and pack share (policies/data/contract.json).

Image slots, operator digest keys, the GKE mode label and datapaths and Cilium's taint exist
once, as data both sides read. Where a second representation must remain (a pydantic Literal,
the pack's table of when the chart renders each slot, the catalog's entries), a test here holds
it equal to the contract; another makes sure no code copies a contract value back in.
"""

from __future__ import annotations

import ast
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

import pytest

from components.catalog import REQUIRED_IMAGES, load_catalog
from components.cilium import CiliumSettings, ClusterFacts, build_values
from components.contract import (
    CILIUM_AGENT_NOT_READY_TAINT,
    CONTRACT_PATH,
    GKE_DATAPATH,
    GKE_MODE_LABEL,
    IMAGE_SLOT_PATHS,
    OPERATOR_DIGEST_KEYS,
)
from components.gke import GkeMode

REPO = Path(__file__).resolve().parents[2]
PACK_DIR = REPO / "policies"


def pack_module(name: str) -> ModuleType:
    if str(PACK_DIR) not in sys.path:
        sys.path.insert(0, str(PACK_DIR))
    return importlib.import_module(name)


def _facts(cloud: str) -> ClusterFacts:
    return ClusterFacts(
        name=f"{cloud}-one",
        cloud=cloud,  # type: ignore[arg-type]
        environment="prod",
        api_host="10.0.0.1",
        api_port=443,
        node_kernel=(6, 6),
        pod_cidr="10.68.0.0/14" if cloud == "gke" else None,
        operator_role_arn="arn:aws:iam::123456789012:role/x" if cloud == "eks" else None,
    )


def _at(values: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        values = values.get(key) if isinstance(values, dict) else None  # type: ignore[assignment]
    return values


class TestOneContract:
    """Program and pack read one file; a name changed there changes on both sides."""

    def test_both_sides_read_the_same_file(self) -> None:
        assert pack_module("rules.contract").CONTRACT_PATH == CONTRACT_PATH
        assert CONTRACT_PATH.is_relative_to(PACK_DIR)

    def test_required_images_include_preflight(self) -> None:
        """The drift this contract ended: the program's list omitted preflight.image."""
        assert "preflight.image" in REQUIRED_IMAGES
        assert tuple(s.path for s in pack_module("rules.cilium").IMAGE_SLOTS) == REQUIRED_IMAGES

    def test_pack_knows_when_each_slot_renders(self) -> None:
        """A slot without a render rule would be demanded always: safe, but a missing rule."""
        assert set(pack_module("rules.cilium").RENDERED_WHEN) == set(IMAGE_SLOT_PATHS)

    def test_catalog_pins_exactly_the_slots(self) -> None:
        for version, images in load_catalog().items():
            assert set(images) == set(IMAGE_SLOT_PATHS), version

    def test_gke_mode_literal_is_the_contracts(self) -> None:
        assert set(get_args(GkeMode)) == set(GKE_DATAPATH)
        assert pack_module("rules.contract").GKE_DATAPATHS == GKE_DATAPATH
        assert pack_module("rules.kinds").GKE_MODE_LABEL == GKE_MODE_LABEL

    def test_taint_is_the_charts(self) -> None:
        """The agent removes the key its chart names (agentNotReadyTaintKey in values.yaml)."""
        values = (REPO / "vendor" / "cilium-chart" / "values-1.16.19.yaml").read_text()
        assert f'agentNotReadyTaintKey: "{CILIUM_AGENT_NOT_READY_TAINT["key"]}"' in values
        assert CILIUM_AGENT_NOT_READY_TAINT["key"] == pack_module("rules.wiring").TAINT_KEY


@pytest.mark.parametrize("cloud", ["eks", "gke"])
def test_program_values_pin_what_the_pack_checks(cloud: str) -> None:
    """Per cloud, the operator digest the program sets is the one the pack (and the chart)
    reads, and every slot the pack sees rendered is pinned to the catalog's digest."""
    cilium = pack_module("rules.cilium")
    settings = CiliumSettings(mutual_auth=True)
    values = build_values(settings, _facts(cloud))
    key = cilium.operator_digest_key(values)
    assert key == OPERATOR_DIGEST_KEYS[cloud]
    catalog = load_catalog()[settings.version]
    rendered = [slot for slot in cilium.IMAGE_SLOTS if slot.enabled(values)]
    assert {"image", "operator.image", "authentication.mutual.spire.install.agent.image"} <= {
        slot.path for slot in rendered
    }
    for slot in rendered:
        block = _at(values, slot.path)
        digest_key = key if slot.path == "operator.image" else "digest"
        assert block["useDigest"] is True, slot.path
        assert block[digest_key] == catalog[slot.path][digest_key], slot.path


def _code_strings(path: Path) -> set[str]:
    """String constants in code, docstrings excluded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    }


def test_no_code_copies_a_contract_name() -> None:
    contract = json.loads(CONTRACT_PATH.read_text(encoding="utf-8"))
    names = {
        contract["gke"]["modeLabel"],
        *contract["gke"]["datapaths"].values(),
        contract["agentNotReadyTaint"]["key"],
        *contract["operator"]["digestByCloud"].values(),
        *(key for _flag, key in contract["operator"]["digestByIpamFlag"]),
    }
    sources = [*(REPO / "components").rglob("*.py"), *(PACK_DIR / "rules").glob("*.py")]
    copies = sorted(
        f"{path.relative_to(REPO)}: {value!r}"
        for path in sources
        for value in _code_strings(path) & names
    )
    assert copies == []
