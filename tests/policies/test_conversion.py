"""Each side of the analyzer converts a resource once, to exactly what the slow way made.

The gate marshals an export entry into a protobuf Struct in one walk
(infra/gate/messages.py `_struct`); the pack turns that Struct back into the plain data its
validators read in one walk (policies/rules/_convert.py). Both must give what the SDKs give:
``Struct.update(engine_value(...))`` on the gate's side and ``plain(unknown_checking_proxy(
deserialize_properties(MessageToDict(...))))`` on the pack's, values, types and key order
alike, for any JSON an export may hold, secrets, references, assets and unknowns included.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from infra.export_format import RESOURCE_REF_SIG, SECRET_SIG, SIG_KEY
from infra.gate.messages import Requests, _struct, engine_value
from tests.wire_values import keys, scalars

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"
sys.path.insert(0, str(PACK_DIR))
try:
    from rules._convert import plain_properties
    from rules._values import plain
finally:
    sys.path.remove(str(PACK_DIR))

ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"


def _envelopes(inner: Any) -> Any:
    """The envelopes an export holds: secrets three ways, resource references."""
    return st.one_of(
        inner.map(lambda v: {SIG_KEY: SECRET_SIG, "value": v}),
        inner.map(lambda v: {SIG_KEY: SECRET_SIG, "plaintext": json.dumps(v)}),
        st.just({SIG_KEY: SECRET_SIG, "ciphertext": "AAAA"}),
        st.builds(
            lambda urn, id_: {SIG_KEY: RESOURCE_REF_SIG, "urn": urn, "id": id_},
            st.text(max_size=5),
            st.text(max_size=5),
        ),
    )


_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
        _envelopes(inner),
    ),
    max_leaves=25,
)
_props = st.dictionaries(keys, _values, max_size=6)


def _sdk_struct(props: dict[str, Any]) -> Any:
    struct = struct_pb2.Struct()
    if props:
        struct.update(engine_value(dict(props)))
    return struct


def _ordered(value: Any) -> Any:
    """A value with its dict key order made comparable (``==`` on dicts ignores order);
    assets as what they hold."""
    if isinstance(value, dict):
        return [(k, _ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return (type(value).__name__, vars(value))
    return (type(value).__name__, value)


def _sdk_plain(struct: Any) -> Any:
    return plain(unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(struct))))


@settings(max_examples=300, deadline=None)
@given(_props)
def test_gate_marshals_as_struct_update_of_engine_values(props: dict[str, Any]) -> None:
    built = _struct(props)
    assert built.SerializeToString() == _sdk_struct(props).SerializeToString()


@settings(max_examples=300, deadline=None)
@given(_props)
def test_pack_reads_as_the_sdk_and_plain_do(props: dict[str, Any]) -> None:
    struct = _sdk_struct(props)
    assert _ordered(plain_properties(struct)) == _ordered(_sdk_plain(struct))


def test_pack_reads_assets_and_refuses_bad_signatures_as_the_sdk_does() -> None:
    struct = struct_pb2.Struct()
    struct.update({"file": {SIG_KEY: ASSET_SIG, "text": "a: 1"}, "n": 3})
    assert _ordered(plain_properties(struct)) == _ordered(_sdk_plain(struct))
    struct.update({"odd": {SIG_KEY: "not-a-signature"}})
    with pytest.raises(AssertionError, match="Unrecognized signature"):
        _sdk_plain(struct)
    with pytest.raises(AssertionError, match="Unrecognized signature"):
        plain_properties(struct)


def _entry(inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "urn": "urn:pulumi:prod::meshless::kubernetes:core/v1:ConfigMap::cm",
        "custom": True,
        "type": "kubernetes:core/v1:ConfigMap",
        "inputs": inputs,
        "outputs": outputs,
    }


@pytest.mark.parametrize(
    ("inputs", "outputs"),
    [
        ({"a": {"b": 1, "c": [True]}}, {"a": {"b": 1, "c": [True]}}),  # reused
        ({"a": 1}, {"a": True}),  # == alone would say the same
        ({"a": {"b": 1, "c": 2}}, {"a": {"c": 2, "b": 1}}),  # same keys, other order
        ({"a": 1}, {"a": 1, "id": "x"}),  # outputs add a key
        ({"a": 1, "b": 2}, {}),  # nothing in outputs
        ({}, {"a": {SIG_KEY: SECRET_SIG, "plaintext": '"s"'}}),
    ],
)
def test_stack_entry_properties_are_inputs_then_outputs(
    inputs: dict[str, Any], outputs: dict[str, Any]
) -> None:
    res = _entry(inputs, outputs)
    messages = Requests([res])
    assert messages.analyze(res).properties == _sdk_struct(inputs)
    expected = _sdk_struct({**inputs, **outputs})
    got = messages.stack_resource(res).properties
    assert got.SerializeToString() == expected.SerializeToString()
