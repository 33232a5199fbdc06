"""What the Pulumi engine refuses but the SDK's mock monitor accepts, checked on a recorded plan.

The mock monitor answers every RegisterResource without looking at the rest of the graph, so
a plan could show a deployment the engine would stop half-way. Two rules live here; duplicate
URNs belong where the mock monitor records a registration (infra/mocks.py), not here:

- A resource's `provider` must be a provider resource (`pulumi:providers:<package>`) already
  registered in this deployment. The engine looks the reference up when the resource
  registers and fails with "unknown provider '<ref>'" otherwise (pulumi pkg/v3 v3.274.1,
  resource/deploy/source_eval.go, getProviderFromSource), and a snapshot holding such a
  resource fails the integrity check "resource X refers to unknown provider Y"
  (resource/deploy/snapshot.go, VerifyIntegrity).
- The parent/provider/dependency graph has no cycle: a snapshot must list every resource after
  what it refers to ("child resource X's parent Y comes after it", snapshot.go), which no order
  satisfies for a cycle; the plan's export order (plan._ordered) would silently drop the
  resources in one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "EngineRuleError",
    "check_engine_rules",
    "engine_urn",
    "find_cycle",
    "provider_problems",
]

PROVIDER_TYPE_PREFIX = "pulumi:providers:"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def engine_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """The URN the engine gives a resource: the parent's whole qualified type chain, none for
    a child of the root stack (sdk/go/common/resource/urn/urn.go `New`, called with
    `parent.QualifiedType()` in pkg/resource/deploy/source_eval.go). The SDK's MockMonitor
    keeps only the parent's last type and prefixes `pulumi:pulumi:Stack$` to top-level
    resources, so its URNs matched no real stack export (found by `make conformance`)."""
    qualified = type_
    if parent:
        parent_type = parent.split("::")[2]
        if parent_type != ROOT_STACK_TYPE:
            qualified = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


class Registered(Protocol):
    urn: str
    type: str
    parent: str
    provider: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]


class EngineRuleError(Exception):
    """The plan registered something the engine would refuse; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def provider_problems(resources: Sequence[Registered]) -> list[str]:
    """Resources whose provider reference names no provider registered before them
    (`resources` in registration order)."""
    problems: list[str] = []
    registered: dict[str, str] = {}
    for res in resources:
        if res.provider:
            provider_urn = res.provider.rsplit("::", 1)[0]
            provider_type = registered.get(provider_urn)
            if provider_type is None:
                problems.append(
                    f"{res.urn}: provider {provider_urn} is used before it exists (the engine "
                    "fails with 'unknown provider'); create the provider first and pass that object"
                )
            elif not provider_type.startswith(PROVIDER_TYPE_PREFIX):
                problems.append(
                    f"{res.urn}: provider {provider_urn} is a {provider_type}, not a provider "
                    "resource (the engine fails with 'unknown provider')"
                )
        registered[res.urn] = res.type
    return problems


def _edges(res: Registered, known: set[str]) -> list[str]:
    needs = {res.parent, res.provider.rsplit("::", 1)[0], *res.dependencies}
    for urns in res.property_dependencies.values():
        needs.update(urns)
    return sorted(urn for urn in needs if urn in known)


def find_cycle(resources: Sequence[Registered]) -> list[str] | None:
    """One cycle of the parent/provider/dependency graph as [a, b, ..., a], or None."""
    known = {res.urn for res in resources}
    graph = {res.urn: _edges(res, known) for res in resources}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        iterators = [iter(graph[start])]
        state[start] = 1
        while iterators:
            nxt = next(iterators[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                iterators.append(iter(graph[nxt]))
    return None


def check_engine_rules(resources: Sequence[Registered]) -> None:
    """Raise EngineRuleError naming every resource the engine would refuse."""
    problems = provider_problems(resources)
    cycle = find_cycle(resources)
    if cycle:
        problems.append(
            "dependency cycle (the engine cannot order these resources): " + " -> ".join(cycle)
        )
    if problems:
        raise EngineRuleError(problems)
