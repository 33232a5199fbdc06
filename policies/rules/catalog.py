"""The project's Cilium digest catalog, read from the file the program itself reads.

The pack runs from its own directory in its own environment (the CLI creates ``policies/venv``
from requirements.txt) and is published alone (``pulumi policy publish`` uploads only this
folder), so it cannot import ``components`` and reads nothing outside its directory: the
catalog is ``<pack dir>/data/cilium-images.json`` (the program reads that same file), or the
path in ``MESHLESS_DIGEST_CATALOG``. A catalog that cannot be read is reported by the policies that
need it (as a violation naming the path), never raised: a raising validator aborts the preview
with a gRPC error instead of saying what is wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["CATALOG_ENV", "Catalog", "catalog_path", "load_catalog"]

CATALOG_ENV = "MESHLESS_DIGEST_CATALOG"

_PACK_DIR = Path(__file__).resolve().parent.parent


def catalog_path() -> Path:
    override = os.environ.get(CATALOG_ENV)
    if override:
        return Path(override)
    return _PACK_DIR / "data" / "cilium-images.json"


@dataclass(frozen=True)
class Catalog:
    """Chart version -> values path -> image block; ``error`` says why it is empty."""

    path: Path
    versions: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    error: str | None = None

    def digest(self, version: str, values_path: str, digest_key: str) -> str | None:
        block = self.versions.get(version, {}).get(values_path)
        if not isinstance(block, dict):
            return None
        value = block.get(digest_key)
        return value if isinstance(value, str) else None


@cache
def load_catalog() -> Catalog:
    path = catalog_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return Catalog(path, error=f"cannot read {path}: {exc.strerror or exc}")
    except json.JSONDecodeError as exc:
        return Catalog(path, error=f"{path} is not valid JSON: {exc}")
    versions = data.get("versions") if isinstance(data, dict) else None
    if not isinstance(versions, dict) or not all(isinstance(v, dict) for v in versions.values()):
        return Catalog(path, error=f'{path} has no "versions" object of chart version -> images')
    return Catalog(path, versions)
