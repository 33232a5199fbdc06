"""Hypothesis strategies for the values a resource's properties hold on the wire: JSON
scalars (numbers within a double's exact integers), the engine's unknown sentinel, short keys.
Shared by the tests that hold our converters equal to the SDKs' (tests/test_mocks_wire.py,
tests/policies/test_conversion.py)."""

from __future__ import annotations

from hypothesis import strategies as st

from infra.export_format import UNKNOWN_SENTINEL

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.just(UNKNOWN_SENTINEL),
)
keys = st.text(min_size=1, max_size=6)
