"""The pack publishes on its own: `pulumi policy publish` uploads only the policies folder.

So every fact the pack reads must live inside it. These tests copy the folder alone into an
empty directory (nothing beside it: no components/, no repository), start it there the way the
engine does, and check that it still finds its catalog and its contract.
"""

from __future__ import annotations

import ast
import json
import shutil
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.gate import GateError, PolicyPackSession, Violation

REPO = Path(__file__).resolve().parents[2]
PACK_DIR = REPO / "policies"
PROD_CONFIG = json.loads((PACK_DIR / "config" / "prod.json").read_text(encoding="utf-8"))
DIGEST_A = "sha256:" + "a" * 64

_IGNORED = ("venv", "__pycache__", ".venv")


@pytest.fixture(scope="module")
def lone_pack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PolicyPackSession]:
    """The pack copied alone into an empty directory and started there, catalog override off."""
    root = tmp_path_factory.mktemp("published")
    shutil.copytree(PACK_DIR, root / "policies", ignore=shutil.ignore_patterns(*_IGNORED))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MESHLESS_DIGEST_CATALOG", raising=False)
        mp.delenv("MESHLESS_CHART_DIGESTS", raising=False)
        with PolicyPackSession(root / "policies") as session:
            session.configure_stack("prod", "meshless")
            yield session


def _run(pack: PolicyPackSession, stack) -> list[Violation]:
    pack.configure(PROD_CONFIG)
    return pack.analyze(stack.resources) + pack.analyze_stack(stack.resources)


class TestPackStandsAlone:
    """A published pack finds its catalog and contract in its own folder, or it gates nothing."""

    def test_nothing_beside_the_copy(self, lone_pack: PolicyPackSession) -> None:
        assert sorted(p.name for p in lone_pack.pack_dir.parent.iterdir()) == ["policies"]

    def test_compliant_stack_passes(self, lone_pack: PolicyPackSession, stack) -> None:
        found = _run(lone_pack, stack)
        assert found == [], [v.message for v in found]

    def test_digest_outside_the_catalog_is_caught(
        self, lone_pack: PolicyPackSession, stack
    ) -> None:
        # Pinned, but not the catalog's digest: only a pack that read its catalog can tell.
        stack.set("eks-main-cilium-release", "values.image.digest", DIGEST_A)
        hits = [
            v for v in _run(lone_pack, stack) if v.policy_name == "cilium-digests-match-catalog"
        ]
        assert len(hits) == 1, hits
        assert DIGEST_A in hits[0].message and "cannot read" not in hits[0].message

    def test_tag_only_image_is_caught(self, lone_pack: PolicyPackSession, stack) -> None:
        stack.set("gke-main-cilium-release", "values.envoy.image.useDigest", False)
        stack.delete("gke-main-cilium-release", "values.envoy.image.digest")
        hits = [v for v in _run(lone_pack, stack) if v.policy_name == "cilium-images-digest-pinned"]
        assert any("envoy.image" in h.message for h in hits), hits

    def test_published_chart_archive_is_recognised(
        self, lone_pack: PolicyPackSession, stack
    ) -> None:
        """The archive's sha256 is checked against data/cilium-charts.json, inside the pack."""
        archive = REPO / "vendor" / "cilium-chart" / "cilium-1.16.19.tgz"
        stack.set("eks-main-cilium-release", "chart", str(archive))
        stack.delete("eks-main-cilium-release", "repositoryOpts")
        found = _run(lone_pack, stack)
        assert found == [], [v.message for v in found]

    def test_no_data_folder_no_silent_pass(self, tmp_path: Path) -> None:
        """Without data/ the pack refuses to start, naming the file it needs."""
        shutil.copytree(
            PACK_DIR, tmp_path / "policies", ignore=shutil.ignore_patterns(*_IGNORED, "data")
        )
        session = PolicyPackSession(tmp_path / "policies", startup_timeout=30)
        try:
            with pytest.raises(GateError, match=r"did not start[\s\S]*data/contract\.json"):
                session.start()
        finally:
            session.close()


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _pack_venv_modules() -> set[str]:
    """Top-level modules of what the engine installs into the pack's venv: requirements.txt
    and, transitively, what those distributions require (e.g. pyyaml through pulumi)."""
    lines = (PACK_DIR / "requirements.txt").read_text(encoding="utf-8").splitlines()
    todo = [Requirement(line).name for line in lines if line.strip() and line[0] != "#"]
    dists: set[str] = set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in dists:
            continue
        dists.add(name)
        for spec in metadata.requires(name) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return {
        module
        for module, owners in metadata.packages_distributions().items()
        if any(canonicalize_name(owner) in dists for owner in owners)
    }


def test_pack_imports_only_what_it_ships_with() -> None:
    """The project's packages are importable in the test venv but not in the pack's own venv:
    an import of components or infra would pass here and break the published pack."""
    allowed = _pack_venv_modules() | {"rules"}  # rules: the pack's own package
    sources = [p for p in PACK_DIR.rglob("*.py") if not set(p.parts) & set(_IGNORED)]
    foreign = {
        f"{p.relative_to(PACK_DIR)}: {name}"
        for p in sources
        for name in _imports(p)
        if name not in sys.stdlib_module_names and name not in allowed
    }
    assert "components" not in allowed and "infra" not in allowed
    assert sources and not foreign, sorted(foreign)
