"""Reading Pulumi.<stack>.yaml the way the Pulumi CLI reads it, refusing what the CLI refuses.

The CLI parses stack files with a YAML decoder that rejects a mapping key given twice (so a
second ``meshless:environment: prod`` below ``staging`` is an error, never "last one wins"), and
the file must be UTF-8 text. Config values reach the program as strings: structured values as
JSON, secure values as ciphertext that the offline plan never decrypts (a marker stands in).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import yaml

from infra.export_format import REDACTED

__all__ = ["PROJECT", "StackFileError", "read_stack_file", "shorten"]

PROJECT = "meshless"
_MAX_SHOWN = 80


class StackFileError(Exception):
    """A stack file that cannot be read: the message names the file, the place and the fix."""


def shorten(text: str, limit: int = _MAX_SHOWN) -> str:
    """A value as messages show it: at most ``limit`` characters."""
    return text if len(text) <= limit else f"{text[: limit - 15]}... ({len(text)} chars)"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys, as the Pulumi CLI's decoder does."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                f"key {shorten(repr(key))} first given on line {seen[key]}",
                node.start_mark,
                f"duplicate key {shorten(repr(key))}: a key may appear once in a mapping (the "
                "Pulumi CLI refuses the file too); delete one of the two",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _text(path: Path) -> str:
    if not path.is_file():
        if path.exists():
            raise StackFileError(f"{path}: not a file; give the path of a Pulumi.<stack>.yaml")
        raise StackFileError(f"{path}: no such stack file; create it or pick another --stack")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StackFileError(f"{path}: cannot read the stack file ({exc.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StackFileError(
            f"{path}: not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); save the "
            "file as UTF-8"
        ) from None


def _document(path: Path) -> Any:
    text = _text(path)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = shorten(str(exc.problem or exc), 300)
        if exc.context:
            problem += f" ({shorten(str(exc.context), 120)})"
        raise StackFileError(f"{path}{where}: not valid YAML: {problem}; fix the syntax") from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise StackFileError(f"{path}: not valid YAML ({shorten(str(exc))})") from None


def _config_value(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return json.dumps(REDACTED)
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        pass
    try:
        # YAML dates, NaN, ...: JSON has no such value, so the CLI would send it as text.
        return json.dumps(value, default=str)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot be passed to a program ({exc})") from None


def read_stack_file(path: Path) -> dict[str, str]:
    """Config values as the Pulumi CLI hands them to a program."""
    document = _document(path)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise StackFileError(f"{path}: a stack file is a mapping with a `config:` key")
    if "config" not in document:
        close = difflib.get_close_matches("config", [str(k) for k in document], n=1, cutoff=0.7)
        if close:
            raise StackFileError(
                f"{path}: top-level key {shorten(repr(close[0]))} is not `config:`; rename it "
                "(without it the stack has no config at all)"
            )
    config = document.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path}: `config:` must be a mapping of key: value")
    values: dict[str, str] = {}
    for raw_key, value in config.items():
        if not isinstance(raw_key, str) or not raw_key.strip():
            raise StackFileError(
                f"{path}: config key {shorten(repr(raw_key))} is not a name; keys look like "
                "meshless:clusters"
            )
        key = raw_key if ":" in raw_key else f"{PROJECT}:{raw_key}"  # the CLI's default namespace
        namespace = key.partition(":")[0]
        if namespace != PROJECT and difflib.get_close_matches(namespace, [PROJECT], cutoff=0.75):
            # Another namespace's keys are the providers' business; one a letter off ours is a
            # typo that would leave its value unread.
            raise StackFileError(
                f"{path}: config key {shorten(repr(raw_key))} is in namespace {namespace!r}; "
                f"did you mean {PROJECT}:{key.partition(':')[2][:60]}?"
            )
        if key in values:
            raise StackFileError(
                f"{path}: config key {raw_key!r} is given twice (once with, once without the "
                f"{PROJECT}: namespace); keep one"
            )
        try:
            values[key] = _config_value(value)
        except ValueError as exc:
            raise StackFileError(f"{path}: config key {raw_key!r} {exc}") from None
    return values
