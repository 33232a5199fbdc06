"""How a pydantic validation error is worded for a user, for stack config and traffic files alike.

Each caller keeps only what differs: where the problem is (a ``meshless:`` config path, or a
``file:line: field``) and what an unknown key should have been (the stack config's known keys,
or the fields the model at that spot allows). Everything else (missing, empty, a union's tag,
our own validators' messages, a value of the wrong type) reads the same everywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["describe_error", "shorten", "shown_value"]

_MAX_SHOWN = 80
# pydantic names the model class in some messages ("... or instance of HttpRule").
_MODEL_INSTANCE = re.compile(r" or instance of \w+")


def shorten(text: str) -> str:
    """``text`` cut to a readable length, saying how long it was."""
    return text if len(text) <= _MAX_SHOWN else f"{text[:60]}... ({len(text)} chars)"


def shown_value(value: Any) -> str:
    """A value as the user wrote it (JSON spelling), or what kind of value it was."""
    if isinstance(value, str | int | float | bool) or value is None:
        return shorten(json.dumps(value))
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a value of another type"


def _union_tag(error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    tag = str(ctx.get("discriminator", "")).strip("'")
    expected = str(ctx.get("expected_tags", "")).replace("', '", "' or '")
    if error["type"] == "union_tag_not_found":
        return f"needs `{tag}`: {expected}"
    return f"{tag} must be {expected}, got {ctx.get('tag')!r}"


def describe_error(
    error: Mapping[str, Any], unknown_key: Callable[[Mapping[str, Any]], str]
) -> str:
    """The message for one entry of ``ValidationError.errors()`` (without its location).
    ``unknown_key`` words an ``extra_forbidden`` error (a key the model does not have)."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return unknown_key(error)
    if kind == "missing":
        return "required but missing; add it"
    if kind == "too_short":
        return "must not be empty; add at least one entry"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return _union_tag(error)
    if kind in ("value_error", "assertion_error", "meshless_field"):
        return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    message = _MODEL_INSTANCE.sub("", str(error["msg"]))
    return f"{message} (got {shown_value(error.get('input'))})"
