"""One wording of pydantic errors for stack config and traffic files (components/pydantic_errors.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from components.pydantic_errors import describe_error
from components.traffic import TrafficPolicyError, load_policy_folder
from infra.config import ConfigError, parse_stack_config


def _unknown(_error: object) -> str:
    return "unknown"


class TestOneWording:
    """Stack config and traffic files word the same mistake the same way."""

    def test_wrong_type_shows_the_value_in_json(self) -> None:
        error = {
            "type": "int_parsing",
            "loc": ("x",),
            "msg": "Input should be a valid integer",
            "input": "abc",
        }
        assert describe_error(error, _unknown) == 'Input should be a valid integer (got "abc")'
        error = {**error, "input": {"a": 1}}
        assert describe_error(error, _unknown) == "Input should be a valid integer (got a mapping)"

    def test_long_values_are_cut(self) -> None:
        error = {"type": "string_type", "loc": ("x",), "msg": "bad", "input": "a" * 200}
        assert describe_error(error, _unknown) == f'bad (got "{"a" * 59}... (202 chars))'

    def test_traffic_file_and_stack_config_agree(self, tmp_path: Path) -> None:
        (tmp_path / "svc.yaml").write_text(
            "services:\n  - name: a\n    namespace: shop\n    ports: [{port: [80]}]\n"
        )
        with pytest.raises(TrafficPolicyError) as traffic:
            load_policy_folder(tmp_path, root=tmp_path)
        with pytest.raises((ConfigError, ValidationError)) as config:
            parse_stack_config({"environment": [80]})
        traffic_text = " ".join(traffic.value.problems)
        config_text = str(config.value)
        assert "(got a list)" in traffic_text, traffic_text
        assert "(got a list)" in config_text, config_text
