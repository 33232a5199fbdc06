"""The pack's gRPC analyzer: pulumi-policy's own, except that it converts each resource once.

pulumi-policy's ``_PolicyAnalyzerServicer.Analyze`` and ``AnalyzeStack`` loop over the
policies and, inside that loop, turn every resource's protobuf properties into Python values
(``MessageToDict`` + ``deserialize_properties`` + the unknown-checking proxy, and the same for
its provider) once per policy, before the policy can say that it does not judge that type; this
pack's validators then copied those proxies back into plain data (``plain()``), once per policy
again. With some thirty policies and 2,790 resources (prod with 1,270 services) that conversion
was most of the gate's time. This servicer keeps the SDK's call sequence, enforcement levels,
reports, diagnostics and not-applicable answers, and changes only when conversion happens:

- A policy made by ``resource_policy`` (``TypedResourcePolicy``) is skipped before any
  conversion when its type filter refuses the resource's type (its validator returned at once
  for those anyway).
- Properties are converted once per resource, in one walk (``_convert.plain_properties``), and
  the plain data is shared: by every typed policy of an ``Analyze`` call and, when the same
  properties come again in ``AnalyzeStack`` (the engine sends a resource's inputs to
  ``Analyze`` and its outputs to ``AnalyzeStack``; an offline plan's are mostly the same), by
  every stack policy too. Typed policies get that plain data itself as ``props`` (read-only:
  the validators build new values, they never write to a resource's properties), which
  ``_values.readable`` passes through where the SDK's proxies are unwrapped by ``plain()``.
- ``AnalyzeStack`` converts a resource's properties only when some stack policy reads that
  type's properties (``stack_policy(needs_props=...)``); the others keep their edges and an
  empty property map, exactly what those policies saw of them before.

A policy built without these helpers sees what the SDK would give it: the SDK's proxies (made
from the same plain data) and its own provider and options objects. The body follows
pulumi-policy 1.21.0's ``policy.py`` (Apache-2.0, https://github.com/pulumi/pulumi-policy,
sdk/python/lib/pulumi_policy/policy.py), pinned in requirements.txt; tests/policies holds the
pin and compares this servicer's answers with the SDK's own on a whole plan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent import futures
from inspect import isawaitable
from typing import Any, cast

import pulumi_policy.policy as sdk
from pulumi.runtime import proto
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from ._convert import plain_properties

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


class _PlainCache:
    """Converted properties by their wire bytes: equal bytes are the same values in the same
    order, so a resource whose ``AnalyzeStack`` properties are its ``Analyze`` ones is
    converted once. Emptied after ``AnalyzeStack``, the engine's last call of a run."""

    def __init__(self) -> None:
        self._by_wire: dict[bytes, dict[str, Any]] = {}

    def plain(self, struct: Any) -> dict[str, Any]:
        wire = struct.SerializeToString()
        found = self._by_wire.get(wire)
        if found is None:
            found = self._by_wire[wire] = plain_properties(struct, wire)
        return found

    def clear(self) -> None:
        self._by_wire = {}


class _Request:
    """One ``Analyze`` request's resource, each part made at most once, for the first policy
    that looks: plain props for typed policies, the SDK's proxies for any other."""

    def __init__(self, servicer: TypedAnalyzerServicer, request: Any) -> None:
        self._servicer = servicer
        self._request = request
        self._plain: dict[str, Any] | None = None
        self._proxied: Any = None
        self._options: Any = None
        self._provider: tuple[Any] | None = None

    def props(self, policy: Any) -> Any:
        if self._plain is None:
            self._plain = self._servicer._cache.plain(self._request.properties)
        if isinstance(policy, TypedResourcePolicy):
            return self._plain
        if self._proxied is None:
            self._proxied = unknown_checking_proxy(self._plain)
        return self._proxied

    def options(self) -> Any:
        if self._options is None:
            self._options = self._servicer._get_resource_options(self._request)
        return self._options

    def provider(self) -> Any:
        if self._provider is None:
            self._provider = (self._servicer._get_provider_resource(self._request),)
        return self._provider[0]


class TypedAnalyzerServicer(sdk._PolicyAnalyzerServicer):
    """See the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cache = _PlainCache()
        self._steps_by_type: dict[str, list[tuple[Any, EnforcementLevel | None]]] = {}

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

    def Configure(self, request: Any, context: Any) -> Any:
        self._steps_by_type.clear()  # the levels the steps were chosen by may change
        return super().Configure(request, context)

    def _steps(self, resource_type: str) -> list[tuple[Any, EnforcementLevel | None]]:
        """The SDK's per-policy decisions of ``Analyze`` for one resource type, in policy
        order: (policy, level) to run it, (policy, None) to answer "not applicable". They
        depend only on the type and the configured levels, so they are made once per type."""
        steps = self._steps_by_type.get(resource_type)
        if steps is not None:
            return steps
        steps = []
        for policy in self._policies:
            level = self._get_enforcement_level(policy)
            if level == EnforcementLevel.DISABLED or not isinstance(
                policy, ResourceValidationPolicy
            ):
                continue
            if not policy.has_validation():
                steps.append((policy, None))
                continue
            if level == EnforcementLevel.REMEDIATE:
                level = EnforcementLevel.MANDATORY
            if isinstance(policy, TypedResourcePolicy) and not policy.applies_to(resource_type):
                continue
            steps.append((policy, level))
        self._steps_by_type[resource_type] = steps
        return steps

    def Analyze(self, request: Any, _context: Any) -> Any:
        self._configure_runtime_settings()
        response = proto.AnalyzeResponse()
        resource = _Request(self, request)
        for policy, level in self._steps(request.type):
            if level is None:
                response.not_applicable.append(
                    proto.PolicyNotApplicable(
                        policy_name=policy.name, reason="Policy does not implement validate"
                    )
                )
                continue
            report = self._report(response, policy, level)
            args = ResourceValidationArgs(
                request.type,
                resource.props(policy),
                request.urn,
                request.name,
                resource.options(),
                resource.provider(),
                self._get_policy_config(policy.name),
                self._sdk("stack_tags"),
            )
            self._run(policy, args, report, response)
        return response

    def _stack_resources(
        self, request: Any, props_of: Callable[[Any], Any]
    ) -> list[PolicyResource]:
        """The SDK's PolicyResource graph, built once, with ``props_of(resource)`` as props."""
        providers: dict[bytes, Any] = {}
        built: list[tuple[PolicyResource, Any]] = []
        for r in request.resources:
            provider = None
            if r.HasField("provider"):
                key = r.provider.SerializeToString(deterministic=True)
                if key not in providers:
                    providers[key] = self._get_provider_resource(r)
                provider = providers[key]
            resource = PolicyResource(
                r.type,
                props_of(r),
                r.urn,
                r.name,
                self._get_resource_options(r),
                provider,
                None,
                [],
                {},
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

    def _stack_graphs(self, request: Any, policies: list[Any]) -> dict[bool, list[PolicyResource]]:
        """The resource graph for typed stack policies (plain props, only of the types one of
        them reads) and, if any other stack policy runs, the SDK's (proxies of every resource);
        keyed by whether the policy is typed."""
        cache = self._cache
        typed = [p.needs_props for p in policies if isinstance(p, TypedStackPolicy)]
        graphs: dict[bool, list[PolicyResource]] = {}
        if typed:

            def plain_if_read(r: Any) -> Any:
                return cache.plain(r.properties) if any(f(r.type) for f in typed) else {}

            graphs[True] = self._stack_resources(request, plain_if_read)
        if len(typed) < len(policies):
            graphs[False] = self._stack_resources(
                request, lambda r: unknown_checking_proxy(cache.plain(r.properties))
            )
        return graphs

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
        graphs = self._stack_graphs(request, [policy for policy, _ in runs])
        self._cache.clear()
        for policy, level in runs:
            report = self._report(response, policy, level)
            args = StackValidationArgs(
                graphs[isinstance(policy, TypedStackPolicy)],
                self._get_policy_config(policy.name),
                self._sdk("stack_tags"),
            )
            self._run(policy, args, report, response)
        return response


class _OneWorker:
    """``concurrent.futures`` as pulumi-policy's ``PolicyPack`` sees it when it builds its gRPC
    server: a pool of one thread instead of four.

    What we optimised and why: the sync gRPC server hands every call from its polling thread
    to a pool thread and back, and with four pool threads runnable at once (the engine and the
    offline gate keep many Analyze calls in flight) those hand-offs fight over the interpreter
    lock. The answers do not depend on the pool (this servicer's work holds the lock anyway,
    so the threads never ran it in parallel); calls wait in the pool's queue instead, each one
    whole, so no two calls share the servicer's caches at once either. Measured on the
    2,790 resources of prod with 1,270 services (the gate on an opened pack, six interleaved
    runs each): medians 2.87 -> 2.52 s, the pack's CPU 2.54 -> 2.35 s. Inside a whole offline
    plan the difference drowns in noise (five interleaved runs: 20.5 s before, 21.1 s after):
    there the gate's client shares the plan's interpreter with the flow check.
    """

    @staticmethod
    def ThreadPoolExecutor(max_workers: int | None = None) -> futures.ThreadPoolExecutor:
        return futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="analyzer")


def install() -> None:
    """Make ``PolicyPack`` serve with TypedAnalyzerServicer on a one-thread pool (call before
    ``PolicyPack(...)``)."""
    sdk._PolicyAnalyzerServicer = TypedAnalyzerServicer  # type: ignore[misc]
    sdk.futures = _OneWorker  # type: ignore[assignment]
