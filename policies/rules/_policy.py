"""Glue between the SDK's policy classes and this pack's validators.

Validators here take plain data (see _values.plain) and a report callback that only needs the
message. The wrapper also turns an unexpected exception into a violation of that policy: a
raising validator would otherwise abort the whole preview with a gRPC error that names no
resource, and a policy that could not look must not count as a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._servicer import TypedResourcePolicy, TypedStackPolicy
from ._values import readable

__all__ = [
    "ENVIRONMENT_CONFIG",
    "Report",
    "Resource",
    "StackReport",
    "is_prod",
    "kubernetes_objects",
    "of_types",
    "resource_policy",
    "stack_policy",
]

Report = Callable[[str], None]

# Config of the policies that judge prod only; the stack's environment, unset meaning prod so a
# missing config fails closed.
ENVIRONMENT_CONFIG = PolicyConfigSchema(
    properties={
        "environment": {
            "type": "string",
            "enum": ["staging", "prod"],
            "default": "prod",
            "description": "The stack's environment; unset means prod (fail closed).",
        }
    }
)


def is_prod(config: Mapping[str, Any]) -> bool:
    """Whether a prod-only policy applies (ENVIRONMENT_CONFIG)."""
    return str(config.get("environment") or "prod") == "prod"


StackReport = Callable[[str, str | None], None]


@dataclass(frozen=True)
class Resource:
    """A resource as validators see it: plain props, and for stack policies its edges."""

    type: str
    name: str
    urn: str
    props: dict[str, Any]
    parent: str | None = None
    provider: str | None = None
    dependencies: tuple[str, ...] = field(default=())
    # The resource's Pulumi `protect` option, as the engine passes it to analyzers
    # (AnalyzeRequest.options.protect -> ResourceValidationArgs.opts.protect).
    protect: bool = False


TypeFilter = Callable[[str], bool]
ResourceValidator = Callable[[Resource, Report, Mapping[str, Any]], None]


def of_types(*types: str) -> TypeFilter:
    """A filter for resource policies that look at these type tokens only."""
    return frozenset(types).__contains__


def kubernetes_objects(resource_type: str) -> bool:
    return resource_type.startswith("kubernetes:")


StackValidator = Callable[[list[Resource], StackReport, Mapping[str, Any]], None]


def _internal_error(name: str, exc: Exception) -> str:
    return (
        f"policy '{name}' could not evaluate this input ({type(exc).__name__}: {exc}); "
        "treating it as a violation rather than a pass. Report this as a policy pack bug "
        "with the resource's properties"
    )


def resource_policy(
    name: str,
    description: str,
    enforcement_level: EnforcementLevel,
    validate: ResourceValidator,
    applies_to: TypeFilter,
    config_schema: PolicyConfigSchema | None = None,
) -> ResourceValidationPolicy:
    """A resource policy whose validator only sees resources ``applies_to`` accepts. The
    engine calls every policy for every resource and most policies care about one or two
    types: the pack's servicer (see _servicer.py) asks the filter before it converts the
    properties at all, and the validator asks it again for a servicer that did not."""

    def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not applies_to(args.resource_type):
            return
        resource = Resource(
            args.resource_type,
            args.name,
            args.urn,
            readable(args.props),
            protect=bool(args.opts is not None and args.opts.protect),
        )

        def report(message: str) -> None:
            report_violation(message, None)

        try:
            validate(resource, report, args.get_config() or {})
        except Exception as exc:  # the pack must answer with a violation, never a gRPC error
            report(_internal_error(name, exc))

    return TypedResourcePolicy(
        name=name,
        description=description,
        validate=_validate,
        enforcement_level=enforcement_level,
        config_schema=config_schema,
        applies_to=applies_to,
    )


def _stack_resource(res: Any, needs_props: TypeFilter) -> Resource:
    return Resource(
        type=res.resource_type,
        name=res.name,
        urn=res.urn,
        props=readable(res.props) if needs_props(res.resource_type) else {},
        parent=res.parent.urn if res.parent is not None else None,
        provider=res.provider.urn if res.provider is not None else None,
        dependencies=tuple(dep.urn for dep in res.dependencies),
    )


def stack_policy(
    name: str,
    description: str,
    enforcement_level: EnforcementLevel,
    validate: StackValidator,
    needs_props: TypeFilter,
    config_schema: PolicyConfigSchema | None = None,
) -> StackValidationPolicy:
    """A stack policy; ``needs_props`` says whose properties it reads (the others arrive with
    empty props but with their edges: parent, provider, dependencies). The pack's servicer
    converts only the properties some stack policy reads (see _servicer.py)."""

    def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        try:
            resources = [_stack_resource(r, needs_props) for r in args.resources]
            validate(resources, report_violation, args.get_config() or {})
        except Exception as exc:  # see resource_policy
            report_violation(_internal_error(name, exc), None)

    return TypedStackPolicy(
        name=name,
        description=description,
        validate=_validate,
        enforcement_level=enforcement_level,
        config_schema=config_schema,
        needs_props=needs_props,
    )
