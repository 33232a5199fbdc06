"""The policy pack, started while the program records.

An offline plan runs the program under mocks on one core and then gates the result with the
pack, a second Python process that first spends a second or more importing pulumi-policy and
the pack's rules. Started in a thread before recording, the pack loads on the idle second
core and is configured (ConfigureStack, GetAnalyzerInfo, Configure, as `run_gate` would) by
the time the plan needs it. Any error of that start is raised where the plan asks for the pack,
exactly as `run_gate` would have raised it there.

The plan then hands the pack its resources as soon as they are exported (``start_gate``): the
gate runs in a thread while the plan writes its files, so the pack analyzes on the second core
meanwhile, and ``gate_report`` returns the report (or raises the gate's error) where the plan
used to call `run_gate`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from infra.gate import GateReport, PolicyPackSession
from infra.gate.run import open_pack, run_gate

__all__ = ["EarlyPack"]


class EarlyPack:
    """``with EarlyPack(config, stack=..., project=...) as early: ... early.session()``."""

    def __init__(self, policy_config: Path | None, *, stack: str, project: str) -> None:
        self._pack: PolicyPackSession | None = None
        self._error: BaseException | None = None
        self._gate_args = {"policy_config": policy_config, "stack": stack, "project": project}
        self._thread = threading.Thread(
            target=self._open, args=(policy_config, stack, project), daemon=True
        )
        self._gate: threading.Thread | None = None
        self._report: GateReport | None = None
        self._gate_error: BaseException | None = None

    def _open(self, policy_config: Path | None, stack: str, project: str) -> None:
        try:
            self._pack = open_pack(policy_config, stack=stack, project=project)
        except BaseException as exc:  # re-raised in the plan's thread by session()
            self._error = exc

    def __enter__(self) -> EarlyPack:
        self._thread.start()
        return self

    def session(self) -> PolicyPackSession:
        """The opened pack (waits for it); raises what opening it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._pack is not None
        return self._pack

    def start_gate(self, resources: list[dict[str, Any]]) -> None:
        """Run the gate on ``resources`` (the stack export's entries) in a thread, on this
        pack with the stack and policy config it was opened for. ``resources`` must not change
        until ``gate_report`` returns."""
        self._gate = threading.Thread(target=self._run_gate, args=(resources,), daemon=True)
        self._gate.start()

    def _run_gate(self, resources: list[dict[str, Any]]) -> None:
        try:
            self._report = run_gate(resources, pack=self.session(), **self._gate_args)
        except BaseException as exc:  # re-raised in the plan's thread by gate_report()
            self._gate_error = exc

    def gate_report(self) -> GateReport:
        """The report of ``start_gate``'s run (waits for it); raises what the run raised."""
        if self._gate is None:
            raise RuntimeError("gate_report() before start_gate()")
        self._gate.join()
        if self._gate_error is not None:
            raise self._gate_error
        assert self._report is not None
        return self._report

    def __exit__(self, *exc: object) -> None:
        self._thread.join()
        if self._gate is not None:
            self._gate.join()  # a plan that failed meanwhile: the gate finishes, then the pack closes
        if self._pack is not None:
            self._pack.close()
            self._pack = None
