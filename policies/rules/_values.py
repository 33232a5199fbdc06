"""Reading resource properties without tripping over preview's unknown values.

The SDK hands validators its "unknown-checking proxy": touching an unknown raises
``UnknownValueError``, which the SDK turns into an *advisory* "can't run policy" note. That is
the wrong outcome for a digest or ``kubeProxyReplacement`` (they must be literal), so policies
here never read through the proxy: ``plain()`` unwraps it once and ``lookup()`` returns the
unknown sentinel as an ordinary value for the policy to judge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from pulumi_policy import proxy as _proxy

# The proxy classes are private to pulumi-policy; requirements.txt pins the version and
# tests/policies/test_requirements.py holds the pin, so a change of shape is caught there.
from pulumi_policy.proxy import _DictProxy, _ListProxy

__all__ = [
    "DIGEST_RE",
    "ENCRYPTED",
    "MISSING",
    "UNKNOWNS",
    "describe",
    "is_encrypted",
    "is_true",
    "is_unknown",
    "iter_dicts",
    "lookup",
    "plain",
    "readable",
    "resource_label",
    "truthy_flag",
]

UNKNOWNS: Final = frozenset(
    {
        _proxy.UNKNOWN_BOOLEAN_VALUE,
        _proxy.UNKNOWN_NUMBER_VALUE,
        _proxy.UNKNOWN_STRING_VALUE,
        _proxy.UNKNOWN_ARRAY_VALUE,
        _proxy.UNKNOWN_ASSET_VALUE,
        _proxy.UNKNOWN_ARCHIVE_VALUE,
        _proxy.UNKNOWN_OBJECT_VALUE,
    }
)

# What the offline gate (infra/gate/messages.py) puts where a stack export holds only a secret's
# ciphertext: the value exists but cannot be read without the stack's secrets provider. It
# counts as unknown (a value that must be literal fails; a computed one is skipped by its
# owner) and secret-values-readable reports it. The engine itself never sends it: during
# preview and update it decrypts secrets before calling a policy pack.
ENCRYPTED: Final = "meshless:encrypted-secret-not-readable"

DIGEST_RE: Final = re.compile(r"^sha256:[0-9a-f]{64}$")


class _Missing:
    """Marker for "the property is not set at all" (distinct from null and from unknown)."""

    def __repr__(self) -> str:
        return "<not set>"


MISSING: Final = _Missing()


def plain(value: Any) -> Any:
    """The data behind the SDK's proxies: dicts, lists and scalars, unknowns left as sentinels."""
    kind = type(value)  # exact type checks first: this runs for every property of every resource
    if kind is _DictProxy or kind is _ListProxy:
        value = value["__target"]
        kind = type(value)
    if kind is dict:
        return {k: plain(v) for k, v in value.items()}
    if kind is list:
        return [plain(v) for v in value]
    if kind in (str, int, float, bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(v) for v in value]
    return value


def readable(props: Any) -> Any:
    """A resource's properties as plain data, for a validator to read and never to write:
    the pack's servicer (_servicer.py) hands typed policies the plain dict it converted once
    and shares with every other policy; the SDK's own servicer hands its proxies, which
    ``plain()`` unwraps into a copy."""
    return props if type(props) is dict else plain(props)


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and (value in UNKNOWNS or value == ENCRYPTED)


def is_encrypted(value: Any) -> bool:
    return value == ENCRYPTED


def lookup(data: Any, path: str) -> Any:
    """``data["a"]["b"]`` for ``path="a.b"``; MISSING when absent, a sentinel when unknown.

    An unknown container on the way down makes the whole value unknown: during preview a
    values object computed from another resource hides every key under it.
    """
    current = data
    for key in path.split("."):
        if is_unknown(current):
            return current
        if not isinstance(current, Mapping) or key not in current:
            return MISSING
        current = current[key]
    return current


def is_true(value: Any) -> bool:
    """A literal boolean true (Helm also accepts the string "true")."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def truthy_flag(value: Any, *, default: bool) -> bool | None:
    """A Helm ``enabled`` flag as the chart reads it; None when unknown during preview."""
    if is_unknown(value):
        return None
    if value is MISSING or value is None:
        return default
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def describe(value: Any) -> str:
    """An offending value as a reader should see it in a violation message."""
    if value is MISSING:
        return "not set"
    if is_encrypted(value):
        return "an encrypted secret the gate cannot read"
    if is_unknown(value):
        return "unknown during preview"
    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def resource_label(resource_type: str, name: str) -> str:
    """How messages name a resource: its type token and logical name."""
    return f"{resource_type} '{name}'"


def iter_dicts(value: Any) -> Iterator[dict[str, Any]]:
    """The dict elements of a list-valued property, skipping anything else."""
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item
