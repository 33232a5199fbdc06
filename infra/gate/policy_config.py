"""A policy config checked against the pack's own schemas, then resolved as the engine sends it.

The schemas come from the running pack (GetAnalyzerInfo: each policy's ``configSchema``, built
from the ``config_schema`` its author wrote in policies/rules/), so the offline check and the
pack cannot disagree about which properties exist. Validation is ``jsonschema`` (draft 7, what
the Pulumi engine's gojsonschema check understands) rather than a hand-written subset: a
``pattern``, ``minItems`` or ``required`` in a policy's schema is enforced here exactly as the
engine enforces it before Configure, e.g. ``allowedDigests: ["sha256:abc"]`` fails offline too.

The engine builds each policy's schema as ``{"type": "object", "properties": ..., "required":
...}`` (pulumi/pulumi pkg/resource/plugin: the analyzer plugin's policy config validation) and
strips ``enforcementLevel`` first; here ``enforcementLevel`` is one more property with the
engine's levels, and unknown properties are refused (a misspelt key would otherwise be ignored
silently and the policy would run on its default).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from infra.gate.report import GateInputError

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from pulumi.runtime.proto import analyzer_pb2

__all__ = ["ENFORCEMENT_LEVELS", "config_problems", "policy_schema", "resolve_config"]

ENFORCEMENT_LEVELS = ("advisory", "mandatory", "remediate", "disabled")


def policy_schema(config_schema: Mapping[str, Any]) -> dict[str, Any]:
    """One policy's entry schema: its own properties and required keys, plus enforcementLevel."""
    properties = dict(config_schema.get("properties") or {})
    properties["enforcementLevel"] = {"enum": list(ENFORCEMENT_LEVELS)}
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if config_schema.get("required"):
        schema["required"] = list(config_schema["required"])
    return schema


def _where(name: str, error: ValidationError) -> str:
    where = name
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else f".{part}"
    return where


def _message(name: str, error: ValidationError, schema: Mapping[str, Any]) -> str:
    where = _where(name, error)
    if error.validator == "additionalProperties" and not error.absolute_path:
        known = sorted(k for k in schema["properties"] if k != "enforcementLevel")
        given = error.instance if isinstance(error.instance, dict) else {}
        extra = sorted(set(given) - set(schema["properties"]))
        return (
            f"{name}: unknown property {', '.join(map(repr, extra))} "
            f"(this policy takes: {', '.join(known) or 'none'})"
        )
    if error.validator == "enum":
        return f"{where} must be one of {json.dumps(error.validator_value)}, got {json.dumps(error.instance)}"
    return f"{where}: {error.message}"


def _entry_problems(name: str, entry: Any, config_schema: Mapping[str, Any]) -> list[str]:
    if isinstance(entry, str):
        entry = {"enforcementLevel": entry}
    if not isinstance(entry, dict):
        return [f"{name}: must be an enforcement level or an object, got {json.dumps(entry)}"]
    schema = policy_schema(config_schema)
    # Imported here: every `meshless` command loads the gate's modules, few check a config.
    from jsonschema import Draft7Validator

    errors = Draft7Validator(schema).iter_errors(entry)
    return [_message(name, e, schema) for e in sorted(errors, key=lambda e: list(e.path))]


def config_problems(
    raw: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]], pack_name: str
) -> list[str]:
    """Every problem of a policy config (file contents) against policy name -> config schema."""
    problems = []
    for name, entry in raw.items():
        if name == "all":
            if entry not in ENFORCEMENT_LEVELS:
                problems.append(f"all: must be one of {', '.join(ENFORCEMENT_LEVELS)}")
        elif name not in schemas:
            problems.append(
                f"{name!r} is not a policy of {pack_name} (known: {', '.join(schemas)})"
            )
        else:
            problems += _entry_problems(name, entry, schemas[name])
    return problems


def resolve_config(
    raw: Mapping[str, Any], info: analyzer_pb2.AnalyzerInfo, source: str
) -> dict[str, tuple[str, dict[str, Any]]]:
    """policy name -> (enforcement level, properties), as the engine would send them.
    Raises GateInputError listing every problem of ``raw`` against the pack's schemas."""
    from google.protobuf import json_format
    from pulumi.runtime.proto import analyzer_pb2

    policies = {p.name: p for p in info.policies}
    schemas = {n: json_format.MessageToDict(p.configSchema) for n, p in policies.items()}
    problems = config_problems(raw, schemas, info.name)
    if problems:
        raise GateInputError(f"{source}: bad policy config:\n  " + "\n  ".join(problems))
    resolved = {}
    for name, policy in policies.items():
        default = analyzer_pb2.EnforcementLevel.Name(policy.enforcementLevel).lower()
        entry = raw.get(name, {})
        entry = {"enforcementLevel": entry} if isinstance(entry, str) else dict(entry)
        level = entry.pop("enforcementLevel", raw.get("all", default))
        resolved[name] = (level, entry)
    return resolved
