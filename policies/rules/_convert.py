"""A resource's protobuf properties as plain Python values, made in one walk.

pulumi-policy hands a policy ``unknown_checking_proxy(deserialize_properties(MessageToDict(
properties)))``, and this pack's validators read that back through ``plain()``: four walks over
every value of every resource. ``plain_properties`` makes the same values in one walk over the
protobuf ``Struct``, exactly as ``MessageToDict`` reads it (numbers as floats, null and an unset
value as None, infinities and NaN refused with MessageToDict's error) and, only where the
wire bytes carry the SDK's signature key (secrets, assets, archives), through the SDK's own
``deserialize_properties`` afterwards. Unknowns stay the SDK's sentinel strings, as ``plain()``
leaves them.
"""

from __future__ import annotations

import math
from typing import Any

from pulumi_policy.deserialize import SPECIAL_SIG_KEY, deserialize_properties

__all__ = ["plain_properties"]

_SIG = SPECIAL_SIG_KEY.encode()


def _value(value: Any) -> Any:
    """One ``google.protobuf.Value`` as json_format's ``_ValueMessageToJsonObject`` reads it."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "struct_value":
        fields = value.struct_value.fields
        return {key: _value(fields[key]) for key in fields}
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    if kind == "bool_value":
        return value.bool_value
    if kind == "number_value":
        number = value.number_value
        if math.isinf(number):
            raise ValueError(
                "Fail to serialize Infinity for Value.number_value, which would parse as "
                "string_value"
            )
        if math.isnan(number):
            raise ValueError(
                "Fail to serialize NaN for Value.number_value, which would parse as string_value"
            )
        return number
    return None  # null_value, or no kind set


def plain_properties(struct: Any, wire: bytes | None = None) -> dict[str, Any]:
    """``plain(unknown_checking_proxy(deserialize_properties(MessageToDict(struct))))`` in
    one walk. ``wire``: the struct's serialized bytes when the caller has them already."""
    # Keys, then fields[key]: the map's items() is collections.abc's generator, twice as slow.
    fields = struct.fields
    data = {key: _value(fields[key]) for key in fields}
    if _SIG in (wire if wire is not None else struct.SerializeToString()):
        return deserialize_properties(data)  # secrets, assets, archives: the SDK's own reading
    return data
