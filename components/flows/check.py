"""Expected flows against the policies a plan generated: which hold, which do not, and why.

``check_flows`` evaluates every expected flow of one cluster with the evaluator
(components/flows/evaluate.py) against that cluster's CiliumNetworkPolicy objects and returns
one result per flow; a failed result names the flow (file:line and name) and the rule that
decided it, so the message says what to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.flows.evaluate import PolicyIndex, Verdict
from components.flows.spec import ExpectedFlow

__all__ = ["FlowResult", "check_flows", "flows_markdown"]


@dataclass(frozen=True)
class FlowResult:
    cluster: str
    expected: ExpectedFlow
    verdict: Verdict

    @property
    def ok(self) -> bool:
        return self.verdict.allowed == self.expected.allow

    @property
    def message(self) -> str:
        """``file:line: flow "name": expected allow, but ... ; egress ...; ingress ...``."""
        expected = "allow" if self.expected.allow else "deny"
        got = "allow" if self.verdict.allowed else "deny"
        head = f'{self.expected.where}: {self.cluster}: flow "{self.expected.name}"'
        if self.ok:
            return f"{head}: {got} as expected ({self.verdict.deciding.rule})"
        deciding = self.verdict.deciding
        other = self.verdict.ingress if deciding is self.verdict.egress else self.verdict.egress
        return (
            f"{head}: expected {expected}, but the policies {got} it; decided at "
            f"{deciding.direction} by {deciding.rule}: {deciding.reason} (other side: {other})"
        )


def check_flows(
    cluster: str, objects: Iterable[Mapping[str, Any]], flows: Sequence[ExpectedFlow]
) -> list[FlowResult]:
    """Every expected flow of a cluster against its CiliumNetworkPolicy objects."""
    index = PolicyIndex(objects)
    return [FlowResult(cluster, f, index.evaluate(f.flow)) for f in flows]


def flows_markdown(results: Sequence[FlowResult]) -> str:
    """A summary section: counts per cluster, then every failed flow with its deciding rule."""
    if not results:
        return ""
    lines = ["## Expected flows", ""]
    clusters: dict[str, list[FlowResult]] = {}
    for result in results:
        clusters.setdefault(result.cluster, []).append(result)
    for cluster, items in clusters.items():
        failed = [r for r in items if not r.ok]
        verdict = "all as expected" if not failed else f"**{len(failed)} not as expected**"
        lines.append(f"- `{cluster}`: {len(items)} flows, {verdict}")
    failed = [r for r in results if not r.ok]
    if failed:
        lines += ["", "| flow | expected | decided by |", "| --- | --- | --- |"]
        for r in failed:
            d = r.verdict.deciding
            expected = "allow" if r.expected.allow else "deny"
            lines.append(
                f"| {r.expected.where} {r.expected.name} | {expected} | {d.direction}: {d.rule}: {d.reason} |"
            )
    return "\n".join(lines) + "\n"
