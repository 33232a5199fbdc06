"""Fixtures shared across test modules."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.cluster_builds import EksBuilt, GkeBuilt, make_eks_builder, make_gke_builder
from tests.recording import record_program

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def record() -> Callable[..., Any]:
    """Run a small program under the offline plan's mocks and recording monitor
    (infra/mocks.py) and return what it registered: tests/recording.py ``record_program``."""
    return record_program


@pytest.fixture(scope="session")
def build_gke() -> Callable[..., GkeBuilt]:
    """``build_gke(config, environment="staging")``: a GkeCluster recorded under the plan's
    mocks, once per config and environment (tests/cluster_builds.py)."""
    return make_gke_builder()


@pytest.fixture(scope="session")
def build_eks() -> Callable[..., EksBuilt]:
    """``build_eks(config, environment="staging", stage="addons")``: an EksCluster, its CNI
    release, node groups and add-ons recorded under the plan's mocks (tests/cluster_builds.py)."""
    return make_eks_builder()


@pytest.fixture(scope="session")
def service_generator() -> ModuleType:
    """benchmarks/generate_services.py, the N-service traffic-policy generator (a script,
    not a package, so it is loaded from its path)."""
    spec = importlib.util.spec_from_file_location(
        "generate_services", REPO / "benchmarks" / "generate_services.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def repo_tmp() -> Iterator[Path]:
    """A scratch folder inside the repository (under the git-ignored out/): trafficPolicies
    folders must lie inside the repository, so generated ones go here, not in /tmp."""
    (REPO / "out").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".test-", dir=REPO / "out"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


MERMAID_DIR = REPO / "tests" / "mermaid"


@pytest.fixture(scope="session")
def mermaid_parse() -> Callable[[list[str]], list[dict[str, Any]]]:
    """Mermaid 11's own parser (tests/mermaid, installed by `make mermaid`): texts → one
    result per text, {"ok": True, "type": ...} or {"ok": False, "error": ...}.

    Skips only where node is absent and the run does not insist (.ci/run sets
    MESHLESS_REQUIRE_MERMAID=1, so CI always parses)."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("MESHLESS_REQUIRE_MERMAID"):
            pytest.fail("node is not installed, and MESHLESS_REQUIRE_MERMAID is set")
        pytest.skip("node is not installed: the Mermaid parser cannot run here")
    if not (MERMAID_DIR / "node_modules" / "mermaid").is_dir():
        pytest.fail("tests/mermaid/node_modules is missing: run `make mermaid` (npm ci)")

    def parse(texts: list[str]) -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            for i, text in enumerate(texts):
                path = Path(tmp) / f"graph-{i}.mmd"
                path.write_text(text, encoding="utf-8")
                files.append(str(path))
            done = subprocess.run(
                [node, str(MERMAID_DIR / "check.mjs"), *files],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        assert len(results) == len(texts), done.stderr
        return results

    return parse


@pytest.fixture(scope="session")
def github_text() -> Callable[..., str]:
    """What a reader sees of Markdown on GitHub: rendered (CommonMark + tables), sanitised
    with an allow-list (nh3/ammonia drops unknown tags such as <project>, as GitHub's
    sanitiser does), tags removed, entities decoded. ``drop_code=True`` leaves code out."""
    import markdown_it
    import nh3

    md = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

    def text(markdown: str, *, drop_code: bool = False) -> str:
        cleaned = nh3.clean(md.render(markdown))
        if drop_code:
            cleaned = re.sub(r"<code>.*?</code>", " ", cleaned, flags=re.S)
        return html.unescape(re.sub(r"<[^>]+>", "", cleaned))

    return text
