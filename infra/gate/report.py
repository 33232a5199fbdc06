"""What the gate reports: a violation as the pack's analyzer returned it, the whole report, and
the errors that stop the gate (exit code 2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["GateError", "GateInputError", "GateReport", "Violation"]


class GateError(Exception):
    """The gate could not run; the message is for the user (exit code 2)."""


class GateInputError(GateError):
    """The input file or the policy config is unreadable or malformed."""


@dataclass(frozen=True)
class Violation:
    policy_name: str
    enforcement_level: str
    urn: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "policy": self.policy_name,
            "enforcement": self.enforcement_level,
            "urn": self.urn,
            "message": self.message,
        }


@dataclass
class GateReport:
    pack_name: str
    pack_version: str
    stack: str
    policy_config: str | None
    violations: list[Violation] = field(default_factory=list)
    resources: int = 0
    logs: list[str] = field(default_factory=list)

    @property
    def mandatory(self) -> int:
        return sum(v.enforcement_level == "mandatory" for v in self.violations)

    @property
    def advisory(self) -> int:
        return sum(v.enforcement_level == "advisory" for v in self.violations)

    def to_json(self) -> dict[str, Any]:
        return {
            "pack": {"name": self.pack_name, "version": self.pack_version},
            "stack": self.stack,
            "policyConfig": self.policy_config,
            "mandatory": self.mandatory,
            "advisory": self.advisory,
            "violations": [v.to_json() for v in self.violations],
        }
