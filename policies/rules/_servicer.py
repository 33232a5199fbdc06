"""The pack's gRPC analyzer: pulumi-policy's own, except that it converts each resource once.

pulumi-policy's ``_PolicyAnalyzerServicer.Analyze`` and ``AnalyzeStack`` loop over the
policies and, inside that loop, turn every resource's protobuf properties into Python values
(``MessageToDict`` + ``deserialize_properties`` + the unknown-checking proxy, and the same for
its provider) once per policy, before the policy can say that it does not judge that type. With
some thirty policies and 2,790 resources (prod with 1,270 services) that conversion was most of the
gate's time. This servicer keeps the SDK's call sequence, enforcement levels, reports,
diagnostics and not-applicable answers, and changes only when conversion happens:

- ``Analyze``: a policy made by ``resource_policy`` is skipped before any conversion when its
  type filter refuses the resource's type (its validator returned at once for those anyway);
  the properties, options and provider are converted once per request, for the first policy
  that looks, and shared by the others (validators copy them through ``plain()``).
- ``AnalyzeStack``: the resource list is built once and shared by every stack policy, and a
  resource's properties are converted only when some stack policy reads that type's
  properties (``stack_policy(needs_props=...)``); the others keep their edges and an empty
  property map, exactly what those policies saw of them before.

A policy built without these helpers sees what the SDK would give it. The body follows
pulumi-policy 1.21.0's ``policy.py`` (Apache-2.0, https://github.com/pulumi/pulumi-policy,
sdk/python/lib/pulumi_policy/policy.py), pinned in requirements.txt; tests/policies holds the
pin and compares this servicer's answers with the SDK's own on a whole plan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from inspect import isawaitable
from typing import Any, cast

import pulumi_policy.policy as sdk
from google.protobuf import json_format
from pulumi.runtime import proto
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

__all__ = ["TypedResourcePolicy", "TypedStackPolicy", "install"]

TypeFilter = Callable[[str], bool]


class TypedResourcePolicy(ResourceValidationPolicy):
    """A resource policy that states which types it judges (``applies_to``)."""

    def __init__(self, *args: Any, applies_to: TypeFilter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.applies_to = applies_to


class TypedStackPolicy(StackValidationPolicy):
    """A stack policy that states whose properties it reads (``needs_props``)."""

    def __init__(self, *args: Any, needs_props: TypeFilter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.needs_props = needs_props


def _props(message: Any) -> Any:
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(message)))


class TypedAnalyzerServicer(sdk._PolicyAnalyzerServicer):
    """See the module docstring."""

    def _sdk(self, name: str) -> Any:
        """One of the SDK servicer's private (name-mangled) attributes, e.g. ``policies``."""
        return getattr(self, f"_PolicyAnalyzerServicer__{name}")

    @property
    def _policies(self) -> list[Any]:
        return self._sdk("policies")

    def _run(self, policy: Any, args: Any, report: Any, response: Any) -> None:
        """The SDK's per-policy call, its async support and its two answers kept as they are."""
        try:
            result = policy.validate(args, report)
            if isawaitable(result):
                loop = asyncio.new_event_loop()
                task: asyncio.Task[Any] = asyncio.Task(cast(Any, result), loop=loop)
                loop.run_until_complete(task)
                loop.close()
        except UnknownValueError as e:
            name = self._sdk("policy_pack_name")
            version = self._sdk("policy_pack_version")
            response.diagnostics.append(
                proto.AnalyzeDiagnostic(
                    policyName=policy.name,
                    policyPackName=name,
                    policyPackVersion=version,
                    message=(
                        f"can't run policy '{policy.name}' from policy pack "
                        f"'{name}@v{version}' during preview: {e.message}"
                    ),
                    urn="",
                    description=policy.description,
                    enforcementLevel=self._map_enforcement_level(EnforcementLevel.ADVISORY),
                )
            )
        except sdk._NotApplicableError as e:
            response.not_applicable.append(
                proto.PolicyNotApplicable(policy_name=policy.name, reason=e.reason or "")
            )

    def _report(self, response: Any, policy: Any, level: EnforcementLevel) -> Any:
        return self._create_report_violation(
            response, policy.name, policy.description, level, policy.severity
        )

    def Analyze(self, request: Any, _context: Any) -> Any:
        self._configure_runtime_settings()
        response = proto.AnalyzeResponse()
        converted: tuple[Any, Any, Any] | None = None
        for policy in self._policies:
            level = self._get_enforcement_level(policy)
            if level == EnforcementLevel.DISABLED or not isinstance(
                policy, ResourceValidationPolicy
            ):
                continue
            if not policy.has_validation():
                response.not_applicable.append(
                    proto.PolicyNotApplicable(
                        policy_name=policy.name, reason="Policy does not implement validate"
                    )
                )
                continue
            if level == EnforcementLevel.REMEDIATE:
                level = EnforcementLevel.MANDATORY
            if isinstance(policy, TypedResourcePolicy) and not policy.applies_to(request.type):
                continue
            report = self._report(response, policy, level)
            if converted is None:
                converted = (
                    _props(request.properties),
                    self._get_resource_options(request),
                    self._get_provider_resource(request),
                )
            props, opts, provider = converted
            args = ResourceValidationArgs(
                request.type,
                props,
                request.urn,
                request.name,
                opts,
                provider,
                self._get_policy_config(policy.name),
                self._sdk("stack_tags"),
            )
            self._run(policy, args, report, response)
        return response

    def _stack_resources(self, request: Any, needs_props: TypeFilter) -> list[PolicyResource]:
        """The SDK's PolicyResource graph, built once; properties only where ``needs_props``."""
        empty = unknown_checking_proxy({})
        providers: dict[bytes, Any] = {}
        built: list[tuple[PolicyResource, Any]] = []
        for r in request.resources:
            props = _props(r.properties) if needs_props(r.type) else empty
            provider = None
            if r.HasField("provider"):
                key = r.provider.SerializeToString(deterministic=True)
                if key not in providers:
                    providers[key] = self._get_provider_resource(r)
                provider = providers[key]
            resource = PolicyResource(
                r.type, props, r.urn, r.name, self._get_resource_options(r), provider, None, [], {}
            )
            built.append((resource, r))
        by_urn = {resource.urn: resource for resource, _ in built}
        for resource, r in built:
            if r.parent and r.parent in by_urn:
                resource.parent = by_urn[r.parent]
            resource.dependencies.extend(by_urn[d] for d in r.dependencies if d in by_urn)
            for key, deps in r.propertyDependencies.items():
                resource.property_dependencies[key] = [by_urn[d] for d in deps.urns if d in by_urn]
        return [resource for resource, _ in built]

    def AnalyzeStack(self, request: Any, _context: Any) -> Any:
        self._configure_runtime_settings()
        response = proto.AnalyzeResponse()
        runs = []
        for policy in self._policies:
            level = self._get_enforcement_level(policy)
            if level == EnforcementLevel.DISABLED or not isinstance(policy, StackValidationPolicy):
                continue
            if level == EnforcementLevel.REMEDIATE:
                level = EnforcementLevel.MANDATORY
            runs.append((policy, level))
        filters = [p.needs_props if isinstance(p, TypedStackPolicy) else None for p, _ in runs]

        def needs_props(typ: str) -> bool:
            # A policy that did not state its types reads every resource's properties.
            return any(f is None or f(typ) for f in filters)

        resources = self._stack_resources(request, needs_props) if runs else []
        for policy, level in runs:
            report = self._report(response, policy, level)
            args = StackValidationArgs(
                resources,
                self._get_policy_config(policy.name),
                self._sdk("stack_tags"),
            )
            self._run(policy, args, report, response)
        return response


def install() -> None:
    """Make ``PolicyPack`` serve with TypedAnalyzerServicer (call before ``PolicyPack(...)``)."""
    sdk._PolicyAnalyzerServicer = TypedAnalyzerServicer  # type: ignore[misc]
