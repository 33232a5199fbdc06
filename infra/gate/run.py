"""One gate run: start the pack, configure it for the stack, analyze every resource."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from infra.gate.inputs import load_policy_config
from infra.gate.report import GateReport
from infra.gate.session import DEFAULT_PACK_DIR, PolicyPackSession

__all__ = ["open_pack", "run_gate", "stack_of"]


def stack_of(resources: Iterable[Mapping[str, Any]]) -> tuple[str, str]:
    """(stack, project) from the first URN: urn:pulumi:<stack>::<project>::<type>::<name>."""
    for res in resources:
        parts = str(res.get("urn", "")).split("::")
        if len(parts) >= 2 and parts[0].startswith("urn:pulumi:"):
            return parts[0].removeprefix("urn:pulumi:"), parts[1]
    return "unknown", "meshless"


def open_pack(
    policy_config: Path | None,
    *,
    stack: str,
    project: str = "meshless",
    pack_dir: Path = DEFAULT_PACK_DIR,
) -> PolicyPackSession:
    """Start the pack and take it through the engine's sequence up to the first Analyze
    (ConfigureStack, GetAnalyzerInfo, Configure); the caller closes it."""
    raw_config = load_policy_config(policy_config) if policy_config else {}
    source = str(policy_config) if policy_config else "policy config"
    pack = PolicyPackSession(pack_dir)
    try:
        pack.start()
        pack.configure_stack(stack, project)
        pack.info()
        pack.configure(raw_config, source)
    except BaseException:
        pack.close()
        raise
    return pack


def run_gate(
    resources: list[dict],
    *,
    policy_config: Path | None,
    stack: str,
    project: str = "meshless",
    pack_dir: Path = DEFAULT_PACK_DIR,
    pack: PolicyPackSession | None = None,
) -> GateReport:
    """Run the pack on ``resources`` (stack export entries). Raises GateError/GateInputError.
    ``pack``: one already opened by ``open_pack`` for this stack and config (the plan starts
    it while the program records); left open for its owner to close."""
    session = pack or open_pack(policy_config, stack=stack, project=project, pack_dir=pack_dir)
    try:
        info = session.info()
        violations = session.analyze_all(resources)
        return GateReport(
            pack_name=info.name,
            pack_version=session.pack_version(),
            stack=stack,
            policy_config=str(policy_config) if policy_config else None,
            violations=sorted(
                violations, key=lambda v: (v.enforcement_level != "mandatory", v.policy_name, v.urn)
            ),
            resources=len(resources),
            logs=list(session.logs),
        )
    finally:
        if pack is None:
            session.close()
