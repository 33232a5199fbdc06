"""The policy pack as the Pulumi engine runs it: ``python -u -m pulumi.policy <engine-address>
<pack dir>`` (cwd the pack dir, port read from its stdout), a minimal Engine service for its Log
calls, and a gRPC channel driven in the engine's order (ConfigureStack, GetAnalyzerInfo,
Configure, Analyze, AnalyzeStack)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.gate.messages import Requests, diagnostics
from infra.gate.policy_config import resolve_config
from infra.gate.report import GateError, Violation

if TYPE_CHECKING:
    import grpc

__all__ = ["DEFAULT_PACK_DIR", "PolicyPackSession"]

DEFAULT_PACK_DIR = Path(__file__).resolve().parents[2] / "policies"

_MAX_MESSAGE = 400 * 1024 * 1024  # the pack's own server limit
_STARTUP_TIMEOUT = 60.0
_PIPELINE = 64  # Analyze calls in flight: hides the per-call round trip


def _engine_server(logs: list[str]) -> tuple[Any, int]:
    """A minimal Engine service for the pack's address argument; it records Log calls."""
    from concurrent import futures

    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc

    class _Engine(engine_pb2_grpc.EngineServicer):
        def Log(self, request: Any, context: Any) -> Any:
            severity = engine_pb2.LogSeverity.Name(request.severity).lower()
            logs.append(f"{severity}: {request.message}")
            return empty_pb2.Empty()

        def GetRootResource(self, request: Any, context: Any) -> Any:
            return engine_pb2.GetRootResourceResponse(urn="")

        def SetRootResource(self, request: Any, context: Any) -> Any:
            return engine_pb2.SetRootResourceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(_Engine(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


class _Drain(threading.Thread):
    """Reads a pipe to its end so the pack never blocks on a full pipe."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[str] = []
        self.first_line = threading.Event()

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
            self.first_line.set()
        self.first_line.set()


class PolicyPackSession:
    """The policy pack running as an analyzer plugin, and a channel to it.

    ``with PolicyPackSession() as pack: pack.configure_stack(...); pack.configure({...})``.
    One process serves any number of configure/analyze calls.
    """

    def __init__(
        self, pack_dir: Path = DEFAULT_PACK_DIR, *, startup_timeout: float = _STARTUP_TIMEOUT
    ) -> None:
        self.pack_dir = Path(pack_dir).resolve()
        self.startup_timeout = startup_timeout
        self.logs: list[str] = []
        self.startup_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._engine: Any = None
        self._channel: grpc.Channel | None = None
        self._info: Any = None

    def __enter__(self) -> PolicyPackSession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        import grpc
        from pulumi.runtime.proto import analyzer_pb2_grpc

        if not (self.pack_dir / "PulumiPolicy.yaml").is_file():
            raise GateError(f"{self.pack_dir}: not a policy pack (no PulumiPolicy.yaml)")
        began = time.perf_counter()
        self._engine, engine_port = _engine_server(self.logs)
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-u",
                "-m",
                "pulumi.policy",
                f"127.0.0.1:{engine_port}",
                str(self.pack_dir),
            ],
            cwd=self.pack_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._stdout, self._stderr = _Drain(self._process.stdout), _Drain(self._process.stderr)
        self._stdout.start()
        self._stderr.start()
        port = self._read_port()
        self._channel = grpc.insecure_channel(
            f"127.0.0.1:{port}",
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ],
        )
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        self.startup_seconds = time.perf_counter() - began

    def _read_port(self) -> int:
        assert self._process is not None
        self._stdout.first_line.wait(self.startup_timeout)
        first = self._stdout.lines[0].strip() if self._stdout.lines else ""
        if first.isdigit():
            return int(first)
        self._process.kill()
        self._process.wait()
        self._stderr.join(timeout=5)
        tail = "\n".join((self._stderr.lines or self._stdout.lines)[-15:]) or "(no output)"
        raise GateError(f"policy pack {self.pack_dir} did not start (no port on stdout):\n{tail}")

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._engine is not None:
            self._engine.stop(None)
            self._engine = None

    def _call(self, method: str, request: Any) -> Any:
        import grpc

        try:
            return getattr(self.stub, method)(request)
        except grpc.RpcError as exc:
            detail = exc.details() if hasattr(exc, "details") else str(exc)
            raise GateError(f"policy pack {method} failed: {detail}") from None

    # The engine's call sequence -------------------------------------------------------------

    def configure_stack(self, stack: str, project: str, *, dry_run: bool = True) -> None:
        from pulumi.runtime.proto import analyzer_pb2

        self._call(
            "ConfigureStack",
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=stack, project=project, organization="organization", dry_run=dry_run
            ),
        )

    def info(self) -> Any:
        from google.protobuf import empty_pb2

        if self._info is None:
            self._info = self._call("GetAnalyzerInfo", empty_pb2.Empty())
        return self._info

    def pack_version(self) -> str:
        """The version the CLI reports: PulumiPolicy.yaml's, over the SDK's placeholder."""
        import yaml

        try:
            project = yaml.safe_load((self.pack_dir / "PulumiPolicy.yaml").read_text("utf-8"))
            return str(project.get("version") or self.info().version)
        except (OSError, yaml.YAMLError, AttributeError):
            return self.info().version

    def configure(self, raw: Mapping[str, Any], source: str = "policy config") -> None:
        """Send a policy config (file contents) after checking it against the pack's schema."""
        from pulumi.runtime.proto import analyzer_pb2

        resolved = resolve_config(raw, self.info(), source)
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, props) in resolved.items():
            config = request.policyConfig[name]
            config.enforcementLevel = analyzer_pb2.EnforcementLevel.Value(level.upper())
            if props:
                config.properties.update(props)
        self._call("Configure", request)

    def analyze_all(self, resources: list[dict]) -> list[Violation]:
        """The engine's two steps: Analyze each custom resource (inputs as properties), then
        AnalyzeStack on all of them; violations in that order. Each resource's stack entry is
        built (from the same marshalled properties) while the pack works on the Analyze calls
        in flight."""
        messages = Requests(resources)
        stack = messages.pb.AnalyzeStackRequest()
        found = self._analyze(resources, messages, stack)
        return found + diagnostics(self._call("AnalyzeStack", stack), "")

    def analyze(self, resources: list[dict]) -> list[Violation]:
        """Analyze each custom resource (inputs as properties)."""
        return self._analyze(resources, Requests(resources), None)

    def _analyze(self, resources: list[dict], messages: Requests, stack: Any) -> list[Violation]:
        """Analyze calls pipelined: the next request is built and sent while the pack works on
        the previous ones; with ``stack`` (an AnalyzeStackRequest), each resource's entry is
        added to it."""
        found: list[Violation] = []
        window: deque[tuple[str, Any]] = deque()
        for res in resources:
            if res.get("custom"):
                window.append((res["urn"], self.stub.Analyze.future(messages.analyze(res))))
            if stack is not None:
                messages.add_stack_resource(stack, res)
            if len(window) >= _PIPELINE:
                found += self._analyzed(*window.popleft())
        while window:
            found += self._analyzed(*window.popleft())
        return found

    @staticmethod
    def _analyzed(urn: str, call: Any) -> list[Violation]:
        import grpc

        try:
            return diagnostics(call.result(), urn)
        except grpc.RpcError as exc:
            raise GateError(f"policy pack Analyze failed on {urn}: {exc.details()}") from None

    def analyze_stack(self, resources: list[dict]) -> list[Violation]:
        from pulumi.runtime.proto import analyzer_pb2

        messages = Requests(resources)
        request = analyzer_pb2.AnalyzeStackRequest(
            resources=[messages.stack_resource(r) for r in resources]
        )
        return diagnostics(self._call("AnalyzeStack", request), "")
