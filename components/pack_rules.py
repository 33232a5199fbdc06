"""Modules of the policy pack that the program uses as they are, loaded from their files.

The pack is published alone (`pulumi policy publish policies`) and cannot import the program,
so where both need one rule the code lives in the pack (standard library only) and the program
loads that file instead of keeping a copy: the deploy rehearsal (policies/rules/rehearsal.py)
and the open-allow-list rule (policies/rules/cidrs.py).
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

__all__ = ["PACK_RULES", "load_pack_module"]

PACK_RULES = Path(__file__).resolve().parents[1] / "policies" / "rules"


@cache
def load_pack_module(name: str) -> ModuleType:
    """policies/rules/<name>.py as a module of its own (not the pack's `rules` package)."""
    path = PACK_RULES / f"{name}.py"
    module_name = f"meshless_pack_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - the files ship with the repo
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while classes build
    spec.loader.exec_module(module)
    return module
