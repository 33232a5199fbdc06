"""Stack-export resources as the engine marshals them to an analyzer (AnalyzeRequest,
AnalyzerResource with provider and dependencies), and analyzer diagnostics back as violations."""

from __future__ import annotations

import json
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


def _struct(props: Mapping[str, Any] | None) -> Any:
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    if props:
        struct.update(engine_value(dict(props)))
    return struct


def _name(res: Mapping[str, Any]) -> str:
    return str(res.get("name") or res["urn"].rsplit("::", 1)[-1])


def _provider_urn(res: Mapping[str, Any]) -> str:
    ref = res.get("provider") or ""
    return ref.rsplit("::", 1)[0] if "::" in ref else ""


class Requests:
    """Builds analyzer requests from export resources, resolving provider references."""

    def __init__(self, resources: list[dict]) -> None:
        from pulumi.runtime.proto import analyzer_pb2

        self.pb = analyzer_pb2
        self.by_urn = {r["urn"]: r for r in resources}
        self._providers: dict[str, Any] = {}

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

    def _common(self, res: Mapping[str, Any], props: Mapping[str, Any] | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "type": res["type"],
            "urn": res["urn"],
            "name": _name(res),
            "properties": _struct(props),
            "options": self.pb.AnalyzerResourceOptions(
                parent=res.get("parent") or "", protect=bool(res.get("protect"))
            ),
        }
        provider = self.provider(res)
        if provider is not None:
            kwargs["provider"] = provider
        return kwargs

    def analyze(self, res: Mapping[str, Any]) -> Any:
        return self.pb.AnalyzeRequest(**self._common(res, res.get("inputs")))

    def stack_resource(self, res: Mapping[str, Any]) -> Any:
        # The engine hands AnalyzeStack each resource's outputs; an offline plan's outputs may
        # only hold what the mocks added, so inputs fill what outputs do not say.
        props = {**(res.get("inputs") or {}), **(res.get("outputs") or {})}
        deps = {
            k: self.pb.AnalyzerPropertyDependencies(urns=list(v))
            for k, v in (res.get("propertyDependencies") or {}).items()
            if isinstance(v, list)
        }
        return self.pb.AnalyzerResource(
            **self._common(res, props),
            parent=res.get("parent") or "",
            dependencies=list(res.get("dependencies") or []),
            propertyDependencies=deps,
        )


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
