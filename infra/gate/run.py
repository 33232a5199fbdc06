"""One gate run: start the pack, configure it for the stack, analyze every resource."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from infra.gate.inputs import load_policy_config
from infra.gate.report import GateReport
from infra.gate.session import DEFAULT_PACK_DIR, PolicyPackSession

__all__ = ["run_gate", "stack_of"]


def stack_of(resources: Iterable[Mapping[str, Any]]) -> tuple[str, str]:
    """(stack, project) from the first URN: urn:pulumi:<stack>::<project>::<type>::<name>."""
    for res in resources:
        parts = str(res.get("urn", "")).split("::")
        if len(parts) >= 2 and parts[0].startswith("urn:pulumi:"):
            return parts[0].removeprefix("urn:pulumi:"), parts[1]
    return "unknown", "meshless"


def run_gate(
    resources: list[dict],
    *,
    policy_config: Path | None,
    stack: str,
    project: str = "meshless",
    pack_dir: Path = DEFAULT_PACK_DIR,
) -> GateReport:
    """Run the pack on ``resources`` (stack export entries). Raises GateError/GateInputError."""
    raw_config = load_policy_config(policy_config) if policy_config else {}
    source = str(policy_config) if policy_config else "policy config"
    with PolicyPackSession(pack_dir) as pack:
        pack.configure_stack(stack, project)
        info = pack.info()
        pack.configure(raw_config, source)
        violations = pack.analyze(resources) + pack.analyze_stack(resources)
        return GateReport(
            pack_name=info.name,
            pack_version=pack.pack_version(),
            stack=stack,
            policy_config=str(policy_config) if policy_config else None,
            violations=sorted(
                violations, key=lambda v: (v.enforcement_level != "mandatory", v.policy_name, v.urn)
            ),
            resources=len(resources),
            logs=list(pack.logs),
        )
