"""Hold a real `pulumi stack export` against the offline plan's resources.json.

Compared per resource, by URN: the set of URNs, type, custom, parent, protect, retainOnDelete,
provider (its URN part), dependencies, propertyDependencies and inputs. Fields that differ by construction are
normalised first, and each such rule is listed in KNOWN_DIFFERENCES (printed by the
conformance run and quoted in the README):
"""

from __future__ import annotations

from typing import Any

from infra.export_format import SECRET_SIG, SIG_KEY, is_secret_envelope

__all__ = ["KNOWN_DIFFERENCES", "compare_exports"]

KNOWN_DIFFERENCES = {
    "provider id": (
        "a provider reference is `<provider URN>::<provider id>`; the engine gives each provider "
        "resource a random UUID, the mocks a name-derived id, so only the URN part is compared"
    ),
    "default providers": (
        "the engine records the default provider resources it creates "
        "(`pulumi:providers:<pkg>::default_<version>`) and sets them as `provider` of resources "
        "that named none; the mock monitor registers no default providers, so they are skipped "
        "and a plan resource without a provider must point at the default provider of its package"
    ),
    "provider version inputs": (
        "the engine writes the plugin version into a provider resource's inputs (`version`) "
        "and keeps its own bookkeeping under `__internal` (pkg/resource/deploy/providers/"
        "registry.go, SetProviderVersion); the SDK does not send them, so they are dropped "
        "from `pulumi:providers:*` inputs before comparing"
    ),
    "secret ciphertext": (
        "the engine encrypts secrets with the stack's passphrase, the plan shows `[secret]`; "
        "both must be secret envelopes, the ciphertext is not compared"
    ),
    "outputs": (
        "outputs come from the same MeshlessMocks in both (the stand-in providers call it), but "
        "the engine adds none of the plan's placeholder values for unknowns; not compared"
    ),
    "manifest, ids, timestamps": (
        "the deployment manifest, resource ids, `created`/`modified` times and engine "
        "bookkeeping fields (sourcePosition, propertyDependencies of the stack) are the engine's"
    ),
}

_COMPARED = (
    "type",
    "custom",
    "parent",
    "dependencies",
    "propertyDependencies",
    "protect",
    "retainOnDelete",
)


def _is_default_provider(urn: str) -> bool:
    return "::pulumi:providers:" in urn and urn.rsplit("::", 1)[-1].startswith("default")


def _normalise(value: Any) -> Any:
    if is_secret_envelope(value):
        return {SIG_KEY: SECRET_SIG}
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _provider_urn(reference: str) -> str:
    return reference.rsplit("::", 1)[0] if reference else ""


def _package(type_token: str) -> str:
    return type_token.split(":", 1)[0]


def _field(resource: dict[str, Any], key: str) -> Any:
    value = resource.get(key)
    if key in ("dependencies",):
        return sorted(set(value or []))
    if key == "propertyDependencies":
        return {k: sorted(set(v)) for k, v in (value or {}).items() if v}
    return value if value is not None else ("" if key == "parent" else value)


def _provider_problem(urn: str, planned: dict[str, Any], real: dict[str, Any]) -> str | None:
    plan_provider = _provider_urn(planned.get("provider", ""))
    real_provider = _provider_urn(real.get("provider", ""))
    if plan_provider == real_provider:
        return None
    default_of_package = f"::pulumi:providers:{_package(real['type'])}::" in real_provider
    if not plan_provider and _is_default_provider(real_provider) and default_of_package:
        return None
    return f"{urn}: provider plan={plan_provider or '-'} engine={real_provider or '-'}"


_ENGINE_PROVIDER_INPUTS = ("version", "__internal")


def _input_problems(urn: str, planned: dict[str, Any], real: dict[str, Any]) -> list[str]:
    plan_inputs = _normalise(planned.get("inputs") or {})
    real_inputs = _normalise(real.get("inputs") or {})
    if real["type"].startswith("pulumi:providers:"):
        for key in _ENGINE_PROVIDER_INPUTS:
            if key not in plan_inputs:
                real_inputs.pop(key, None)
    problems = []
    for key in sorted(set(plan_inputs) | set(real_inputs)):
        if plan_inputs.get(key) != real_inputs.get(key):
            problems.append(
                f"{urn}: input {key}: plan={plan_inputs.get(key)!r:.200} "
                f"engine={real_inputs.get(key)!r:.200}"
            )
    return problems


def compare_exports(plan: dict[str, Any], export: dict[str, Any]) -> list[str]:
    """Every difference between the plan and the engine's export, one line each; [] = same."""
    planned = {r["urn"]: r for r in plan["deployment"]["resources"]}
    real = {
        r["urn"]: r for r in export["deployment"]["resources"] if not _is_default_provider(r["urn"])
    }
    problems = [f"{urn}: only in the plan" for urn in sorted(set(planned) - set(real))]
    problems += [f"{urn}: only in the engine's export" for urn in sorted(set(real) - set(planned))]
    for urn in sorted(set(planned) & set(real)):
        for key in _COMPARED:
            if key == "propertyDependencies" and planned[urn]["type"] == "pulumi:pulumi:Stack":
                continue
            if _field(planned[urn], key) != _field(real[urn], key):
                problems.append(
                    f"{urn}: {key} plan={_field(planned[urn], key)!r} "
                    f"engine={_field(real[urn], key)!r}"
                )
        provider_problem = _provider_problem(urn, planned[urn], real[urn])
        if provider_problem:
            problems.append(provider_problem)
        problems += _input_problems(urn, planned[urn], real[urn])
    return problems
