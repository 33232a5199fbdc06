"""Stack-export resources as the engine marshals them to an analyzer (AnalyzeRequest,
AnalyzerResource with provider and dependencies), and analyzer diagnostics back as violations."""

from __future__ import annotations

import json
import marshal
from collections.abc import Mapping
from typing import Any

from infra.export_format import ENCRYPTED_SENTINEL, RESOURCE_REF_SIG, SECRET_SIG, SIG_KEY
from infra.gate.report import Violation

__all__ = ["Requests", "diagnostics", "engine_value"]


def engine_value(value: Any) -> Any:
    """A state value as the engine marshals it to an analyzer: secrets as secret values,
    resource references as their id (analyzers do not accept references)."""
    if isinstance(value, list):
        return [engine_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    sig = value.get(SIG_KEY)
    if sig == SECRET_SIG:
        if "plaintext" in value:
            try:
                inner = json.loads(value["plaintext"])
            except (TypeError, json.JSONDecodeError):
                inner = value["plaintext"]
        elif "value" in value:
            inner = value["value"]
        else:  # only ciphertext: not readable here; the pack's secret-values-readable says so
            inner = ENCRYPTED_SENTINEL
        return {SIG_KEY: SECRET_SIG, "value": engine_value(inner)}
    if sig == RESOURCE_REF_SIG:
        return value.get("id") or value.get("urn", "")
    return {k: engine_value(v) for k, v in value.items()}


_ENVELOPES = (SECRET_SIG, RESOURCE_REF_SIG)


def _set_value(target: Any, value: Any) -> None:
    """protobuf's own ``Struct.update`` setter (well_known_types._SetStructValue), in place:
    for what the fast paths of ``_put`` do not take (tuples, subclasses, bad types)."""
    from google.protobuf import struct_pb2

    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, int | float):
        target.number_value = value
    elif isinstance(value, dict | struct_pb2.Struct):
        target.struct_value.Clear()
        target.struct_value.update(value)
    elif isinstance(value, list | tuple | struct_pb2.ListValue):
        target.list_value.Clear()
        target.list_value.extend(value)
    else:
        raise ValueError("Unexpected type")


def _put(target: Any, value: Any, convert: bool = True) -> None:
    """``engine_value(value)`` (with ``convert``; else ``value`` as it is) into a
    ``google.protobuf.Value`` exactly as ``Struct.update`` would put it, in one walk: the JSON
    types of an export directly, envelopes through engine_value, anything else through
    protobuf's own setter."""
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif kind is dict and not (convert and value.get(SIG_KEY) in _ENVELOPES):
        struct = target.struct_value
        struct.Clear()  # marks an empty object present, as Struct.update does
        fields = struct.fields
        for key, item in value.items():
            _put(fields[key], item, convert)
    elif kind is list:
        values = target.list_value
        values.Clear()
        for item in value:
            _put(values.values.add(), item, convert)
    elif kind is bool:
        target.bool_value = value
    elif kind is int or kind is float:
        target.number_value = value
    elif value is None:
        target.null_value = 0
    elif convert:
        _put(target, engine_value(value), False)
    else:
        _set_value(target, value)


def _struct(props: Mapping[str, Any] | None) -> Any:
    """``Struct().update(engine_value(dict(props)))``, in one walk (see _put)."""
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    if not props:
        return struct
    props = dict(props)
    if props.get(SIG_KEY) in _ENVELOPES:  # the whole map one envelope
        struct.update(engine_value(props))
        return struct
    fields = struct.fields
    for key, value in props.items():
        _put(fields[key], value)
    return struct


def _same_json(a: Any, b: Any) -> bool:
    """Whether two export values would marshal alike: ``==`` alone takes 1 for true and 1.0
    and ignores key order; marshal's format 0 writes each value's type and order (and is a
    tenth of json.dumps's time)."""
    if a is b:
        return True
    try:
        return marshal.dumps(a, 0) == marshal.dumps(b, 0)
    except ValueError:  # not a plain value: marshal it afresh
        return False


def _name(res: Mapping[str, Any]) -> str:
    return str(res.get("name") or res["urn"].rsplit("::", 1)[-1])


def _provider_urn(res: Mapping[str, Any]) -> str:
    ref = res.get("provider") or ""
    return ref.rsplit("::", 1)[0] if "::" in ref else ""


class Requests:
    """Builds analyzer requests from export resources, resolving provider references. Each
    resource's properties are marshalled once: its stack resource reuses its Analyze
    properties when its outputs add nothing to its inputs (the common case offline)."""

    def __init__(self, resources: list[dict]) -> None:
        from pulumi.runtime.proto import analyzer_pb2

        self.pb = analyzer_pb2
        self.by_urn = {r["urn"]: r for r in resources}
        self._providers: dict[str, Any] = {}
        self._inputs: dict[str, Any] = {}  # urn -> inputs Struct

    def provider(self, res: Mapping[str, Any]) -> Any | None:
        urn = _provider_urn(res)
        if not urn:
            return None
        if urn not in self._providers:
            prov = self.by_urn.get(urn, {"type": urn.rsplit("::", 2)[-2] if "::" in urn else ""})
            self._providers[urn] = self.pb.AnalyzerProviderResource(
                type=prov.get("type", ""),
                urn=urn,
                name=urn.rsplit("::", 1)[-1],
                properties=_struct(prov.get("inputs")),
            )
        return self._providers[urn]

    def _inputs_struct(self, res: Mapping[str, Any]) -> Any:
        struct = self._inputs.get(res["urn"])
        if struct is None:
            struct = self._inputs[res["urn"]] = _struct(res.get("inputs"))
        return struct

    def _stack_struct(self, res: Mapping[str, Any]) -> Any:
        # The engine hands AnalyzeStack each resource's outputs; an offline plan's outputs may
        # only hold what the mocks added, so inputs fill what outputs do not say.
        inputs = res.get("inputs") or {}
        outputs = res.get("outputs") or {}
        if all(key in inputs and _same_json(inputs[key], outputs[key]) for key in outputs):
            return self._inputs_struct(res)  # {**inputs, **outputs} would be inputs again
        return _struct({**inputs, **outputs})

    def _common(self, res: Mapping[str, Any], properties: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "type": res["type"],
            "urn": res["urn"],
            "name": _name(res),
            "properties": properties,
            "options": self.pb.AnalyzerResourceOptions(
                parent=res.get("parent") or "", protect=bool(res.get("protect"))
            ),
        }
        provider = self.provider(res)
        if provider is not None:
            kwargs["provider"] = provider
        return kwargs

    def analyze(self, res: Mapping[str, Any]) -> Any:
        return self.pb.AnalyzeRequest(**self._common(res, self._inputs_struct(res)))

    def stack_resource(self, res: Mapping[str, Any]) -> Any:
        return self.pb.AnalyzerResource(**self._stack_fields(res))

    def add_stack_resource(self, request: Any, res: Mapping[str, Any]) -> None:
        """``res`` appended to an AnalyzeStackRequest in place (one copy of its messages)."""
        request.resources.add(**self._stack_fields(res))

    def _stack_fields(self, res: Mapping[str, Any]) -> dict[str, Any]:
        deps = {
            k: self.pb.AnalyzerPropertyDependencies(urns=list(v))
            for k, v in (res.get("propertyDependencies") or {}).items()
            if isinstance(v, list)
        }
        return {
            **self._common(res, self._stack_struct(res)),
            "parent": res.get("parent") or "",
            "dependencies": list(res.get("dependencies") or []),
            "propertyDependencies": deps,
        }


def diagnostics(response: Any, default_urn: str) -> list[Violation]:
    from pulumi.runtime.proto import analyzer_pb2

    found = []
    for diag in response.diagnostics:
        message = diag.message
        if diag.description and message.startswith(diag.description + "\n"):
            message = message[len(diag.description) + 1 :]
        found.append(
            Violation(
                policy_name=diag.policyName,
                enforcement_level=analyzer_pb2.EnforcementLevel.Name(diag.enforcementLevel).lower(),
                urn=diag.urn or default_urn,
                message=message,
            )
        )
    return found
