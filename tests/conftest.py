"""Fixtures shared across test modules."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


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
