"""The policy pack, started while the program records.

An offline plan runs the program under mocks on one core and then gates the result with the
pack, a second Python process that first spends a second or more importing pulumi-policy and
the pack's rules. Started in a thread before recording, the pack loads on the idle second
core and is configured (ConfigureStack, GetAnalyzerInfo, Configure, as `run_gate` would) by
the time the plan needs it. Any error of that start is raised where the plan asks for the pack,
exactly as `run_gate` would have raised it there.
"""

from __future__ import annotations

import threading
from pathlib import Path

from infra.gate import PolicyPackSession
from infra.gate.run import open_pack

__all__ = ["EarlyPack"]


class EarlyPack:
    """``with EarlyPack(config, stack=..., project=...) as early: ... early.session()``."""

    def __init__(self, policy_config: Path | None, *, stack: str, project: str) -> None:
        self._pack: PolicyPackSession | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._open, args=(policy_config, stack, project), daemon=True
        )

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

    def __exit__(self, *exc: object) -> None:
        self._thread.join()
        if self._pack is not None:
            self._pack.close()
            self._pack = None
