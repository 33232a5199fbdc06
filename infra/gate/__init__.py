"""The offline policy gate: run meshless-guardrails on a stack's resources, no Pulumi CLI needed.

The pack is started exactly as the Pulumi engine starts it (``python -u -m pulumi.policy
<engine-address> <pack dir>``, cwd the pack dir, port read from its stdout) and driven through
its gRPC Analyzer interface in the engine's order: ConfigureStack, GetAnalyzerInfo, Configure,
Analyze for every custom resource, AnalyzeStack for all of them. So the gate checks what
``pulumi preview --policy-pack policies`` would check, with the same code.

Input is a ``pulumi stack export`` file (or the offline plan's ``resources.json``, same shape).
Exit codes of ``meshless gate``: 0 no mandatory violation, 1 at least one, 2 the input file or
the policy config is unreadable or malformed (or the pack could not be started).
"""

from __future__ import annotations

from infra.gate.command import gate_command
from infra.gate.inputs import load_export, load_policy_config
from infra.gate.policy_config import ENFORCEMENT_LEVELS
from infra.gate.report import GateError, GateInputError, GateReport, Violation
from infra.gate.run import run_gate
from infra.gate.session import DEFAULT_PACK_DIR, PolicyPackSession

__all__ = [
    "DEFAULT_PACK_DIR",
    "ENFORCEMENT_LEVELS",
    "GateError",
    "GateInputError",
    "GateReport",
    "PolicyPackSession",
    "Violation",
    "gate_command",
    "load_export",
    "load_policy_config",
    "run_gate",
]
