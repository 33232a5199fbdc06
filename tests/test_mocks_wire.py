"""The recording monitor's short cuts give the program and the record what the SDK's own
mock monitor gives them.

infra/mocks.py reads plain inputs with its own walk (``_plain_inputs``) and answers a
registration with only the outputs the mocks computed, leaving the echoed inputs to the SDK's
fallback. Both must be invisible: the same values, types and key order as
``rpc.deserialize_properties(..., keep_unknowns=True)``, and the same outputs in the program.
"""

from __future__ import annotations

from typing import Any

import pulumi
from google.protobuf import struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi.runtime import rpc

from infra.export_format import RESOURCE_REF_SIG, SECRET_SIG, SIG_KEY
from infra.mocks import _plain_inputs
from tests.wire_values import keys, scalars

_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
        inner.map(lambda v: {SIG_KEY: SECRET_SIG, "value": v}),
        st.just(
            {
                SIG_KEY: RESOURCE_REF_SIG,
                "urn": "urn:pulumi:s::p::aws:iam/role:Role::r",
                "id": "i",
            }
        ),
    ),
    max_leaves=25,
)


def _struct(props: dict[str, Any]) -> Any:
    struct = struct_pb2.Struct()
    struct.update(props)
    return struct


def _typed(value: Any) -> Any:
    """A value with key order and types made comparable (``==`` ignores both)."""
    if isinstance(value, dict):
        return [(k, _typed(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


_plain_values = st.recursive(
    scalars.filter(lambda v: v != rpc.UNKNOWN),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, _values, max_size=6))
def test_inputs_read_here_are_what_the_sdk_reads(props: dict[str, Any]) -> None:
    """Anything may come in; what the short cut returns is the SDK's reading, and None (the
    SDK's own path) when the inputs hold an unknown, a secret or a reference."""
    struct = _struct(props)
    ours = _plain_inputs(struct)
    if ours is not None:
        assert _typed(ours) == _typed(rpc.deserialize_properties(struct, keep_unknowns=True))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, _plain_values, max_size=6))
def test_plain_inputs_take_the_short_cut(props: dict[str, Any]) -> None:
    struct = _struct(props)
    ours = _plain_inputs(struct)
    assert ours is not None
    assert _typed(ours) == _typed(rpc.deserialize_properties(struct, keep_unknowns=True))


def test_special_forms_are_left_to_the_sdk() -> None:
    for value in (
        rpc.UNKNOWN,
        {SIG_KEY: SECRET_SIG, "value": "s"},
        [{"deep": {SIG_KEY: RESOURCE_REF_SIG, "urn": "urn:pulumi:s::p::a:b:C::r"}}],
    ):
        assert _plain_inputs(_struct({"ok": 1, "odd": value})) is None


def test_nulls_are_dropped_from_objects_and_kept_in_lists() -> None:
    struct = _struct({"a": None, "b": [None, 1], "c": {"d": None}})
    assert (
        _plain_inputs(struct) == rpc.deserialize_properties(struct) == {"b": [None, 1.0], "c": {}}
    )


def test_the_program_sees_echoed_and_computed_outputs(record: Any) -> None:
    """An echoed input resolves from the SDK's fallback, a computed output from the response;
    a nested input object keeps its shape and the export keeps the whole state."""
    seen: dict[str, Any] = {}

    def program() -> None:
        import pulumi_aws as aws

        role = aws.iam.Role(
            "r",
            name="r",
            assume_role_policy='{"Version": "2012-10-17"}',
            tags={"team": "platform", "tier": "1"},
        )
        pulumi.Output.all(role.arn, role.tags, role.assume_role_policy).apply(
            lambda values: seen.update(arn=values[0], tags=values[1], policy=values[2])
        )

    recording = record(program)
    assert seen == {
        "arn": "arn:aws:iam::123456789012:role/r",
        "tags": {"team": "platform", "tier": "1"},
        "policy": '{"Version": "2012-10-17"}',
    }
    role = recording.one("aws:iam/role:Role")
    assert role.outputs["tags"] == {"team": "platform", "tier": "1"}
    assert role.outputs["arn"] == "arn:aws:iam::123456789012:role/r"
