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

import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from infra.export_format import ENCRYPTED_SENTINEL, RESOURCE_REF_SIG, SECRET_SIG, SIG_KEY
from infra.findings_log import emit_annotations, print_findings

if TYPE_CHECKING:
    import grpc
    from pulumi.runtime.proto import analyzer_pb2

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

DEFAULT_PACK_DIR = Path(__file__).resolve().parent.parent / "policies"
ENFORCEMENT_LEVELS = ("advisory", "mandatory", "remediate", "disabled")

_MAX_MESSAGE = 400 * 1024 * 1024  # the pack's own server limit
_STARTUP_TIMEOUT = 60.0
_PIPELINE = 64  # Analyze calls in flight: hides the per-call round trip


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


# --- input -------------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateInputError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GateInputError(f"{path}: cannot read {what}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GateInputError(
            f"{path}: {what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _check_resource(index: int, res: Any) -> str | None:
    where = f"deployment.resources[{index}]"
    if not isinstance(res, dict):
        return f"{where} is not an object"
    for key in ("urn", "type"):
        if not isinstance(res.get(key), str) or not res[key]:
            return f"{where} has no {key!r} string"
    for key in ("inputs", "outputs"):
        if key in res and res[key] is not None and not isinstance(res[key], dict):
            return f"{where}.{key} is not an object"
    if not isinstance(res.get("dependencies", []) or [], list):
        return f"{where}.dependencies is not a list"
    return None


def load_export(path: Path) -> list[dict]:
    """The resources of a ``pulumi stack export`` file (or the plan's resources.json)."""
    data = _read_json(path, "stack export")
    if not isinstance(data, dict) or not isinstance(data.get("deployment"), dict):
        raise GateInputError(
            f'{path}: not a stack export: expected {{"version": 3, "deployment": '
            '{"resources": [...]}} (the output of `pulumi stack export`)'
        )
    if data.get("version") != 3:
        raise GateInputError(
            f"{path}: stack export version is {data.get('version')!r}; only version 3 is read"
        )
    resources = data["deployment"].get("resources", [])
    if resources is None:
        resources = []
    if not isinstance(resources, list):
        raise GateInputError(f"{path}: deployment.resources is not a list")
    for index, res in enumerate(resources):
        problem = _check_resource(index, res)
        if problem:
            raise GateInputError(f"{path}: {problem}")
    return resources


def load_policy_config(path: Path) -> dict[str, Any]:
    """A Pulumi policy config file: policy name -> level, or -> {enforcementLevel, props}."""
    data = _read_json(path, "policy config")
    if not isinstance(data, dict):
        raise GateInputError(
            f'{path}: policy config must be an object like {{"policy-name": "mandatory"}}'
        )
    return data


# --- policy config against the pack's schema ----------------------------------------------


def _schema_problems(value: Any, schema: Mapping[str, Any], where: str) -> list[str]:
    """Enough JSON Schema for policy config properties: type, enum, items."""
    kind = schema.get("type")
    checks = {
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if kind in checks and not checks[kind](value):
        return [f"{where} must be a {kind}, got {json.dumps(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where} must be one of {json.dumps(schema['enum'])}, got {json.dumps(value)}"]
    problems: list[str] = []
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            problems += _schema_problems(item, schema["items"], f"{where}[{i}]")
    return problems


def _entry_problems(name: str, entry: Any, schema: Mapping[str, Any]) -> list[str]:
    if isinstance(entry, str):
        entry = {"enforcementLevel": entry}
    if not isinstance(entry, dict):
        return [f"{name}: must be an enforcement level or an object, got {json.dumps(entry)}"]
    problems = []
    level = entry.get("enforcementLevel", "advisory")
    if level not in ENFORCEMENT_LEVELS:
        problems.append(
            f"{name}: enforcementLevel {json.dumps(level)} is not one of "
            + ", ".join(ENFORCEMENT_LEVELS)
        )
    properties = schema.get("properties", {})
    for key, value in entry.items():
        if key == "enforcementLevel":
            continue
        if key not in properties:
            known = ", ".join(sorted(properties)) or "none"
            problems.append(f"{name}: unknown property {key!r} (this policy takes: {known})")
        else:
            problems += _schema_problems(value, properties[key], f"{name}.{key}")
    return problems


def _resolve_config(
    raw: Mapping[str, Any], info: analyzer_pb2.AnalyzerInfo, source: str
) -> dict[str, tuple[str, dict[str, Any]]]:
    """policy name -> (enforcement level, properties), as the engine would send them."""
    from google.protobuf import json_format
    from pulumi.runtime.proto import analyzer_pb2

    policies = {p.name: p for p in info.policies}
    schemas = {n: json_format.MessageToDict(p.configSchema) for n, p in policies.items()}
    problems = []
    for name, entry in raw.items():
        if name == "all":
            if entry not in ENFORCEMENT_LEVELS:
                problems.append(f"all: must be one of {', '.join(ENFORCEMENT_LEVELS)}")
        elif name not in policies:
            problems.append(
                f"{name!r} is not a policy of {info.name} (known: {', '.join(policies)})"
            )
        else:
            problems += _entry_problems(name, entry, schemas[name])
    if problems:
        raise GateInputError(f"{source}: bad policy config:\n  " + "\n  ".join(problems))
    resolved = {}
    for name, policy in policies.items():
        default = analyzer_pb2.EnforcementLevel.Name(policy.enforcementLevel).lower()
        entry = raw.get(name, {})
        entry = {"enforcementLevel": entry} if isinstance(entry, str) else dict(entry)
        level = entry.pop("enforcementLevel", raw.get("all", default))
        resolved[name] = (level, entry)
    return resolved


# --- resources -> analyzer messages -------------------------------------------------------


def _engine_value(value: Any) -> Any:
    """A state value as the engine marshals it to an analyzer: secrets as secret values,
    resource references as their id (analyzers do not accept references)."""
    if isinstance(value, list):
        return [_engine_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    sig = value.get(SIG_KEY)
    if sig == SECRET_SIG:
        if "plaintext" in value:
            try:
                inner = json.loads(value["plaintext"])
            except (TypeError, json.JSONDecodeError):
                inner = value["plaintext"]
        elif "value" in value:
            inner = value["value"]
        else:  # only ciphertext: not readable here; the pack's secret-values-readable says so
            inner = ENCRYPTED_SENTINEL
        return {SIG_KEY: SECRET_SIG, "value": _engine_value(inner)}
    if sig == RESOURCE_REF_SIG:
        return value.get("id") or value.get("urn", "")
    return {k: _engine_value(v) for k, v in value.items()}


def _struct(props: Mapping[str, Any] | None) -> Any:
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    if props:
        struct.update(_engine_value(dict(props)))
    return struct


def _name(res: Mapping[str, Any]) -> str:
    return str(res.get("name") or res["urn"].rsplit("::", 1)[-1])


def _provider_urn(res: Mapping[str, Any]) -> str:
    ref = res.get("provider") or ""
    return ref.rsplit("::", 1)[0] if "::" in ref else ""


class _Messages:
    """Builds analyzer requests from export resources, resolving provider references."""

    def __init__(self, resources: list[dict]) -> None:
        from pulumi.runtime.proto import analyzer_pb2

        self.pb = analyzer_pb2
        self.by_urn = {r["urn"]: r for r in resources}
        self._providers: dict[str, Any] = {}

    def provider(self, res: Mapping[str, Any]) -> Any | None:
        urn = _provider_urn(res)
        if not urn:
            return None
        if urn not in self._providers:
            prov = self.by_urn.get(urn, {"type": urn.rsplit("::", 2)[-2] if "::" in urn else ""})
            self._providers[urn] = self.pb.AnalyzerProviderResource(
                type=prov.get("type", ""),
                urn=urn,
                name=urn.rsplit("::", 1)[-1],
                properties=_struct(prov.get("inputs")),
            )
        return self._providers[urn]

    def _common(self, res: Mapping[str, Any], props: Mapping[str, Any] | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "type": res["type"],
            "urn": res["urn"],
            "name": _name(res),
            "properties": _struct(props),
            "options": self.pb.AnalyzerResourceOptions(
                parent=res.get("parent") or "", protect=bool(res.get("protect"))
            ),
        }
        provider = self.provider(res)
        if provider is not None:
            kwargs["provider"] = provider
        return kwargs

    def analyze(self, res: Mapping[str, Any]) -> Any:
        return self.pb.AnalyzeRequest(**self._common(res, res.get("inputs")))

    def stack_resource(self, res: Mapping[str, Any]) -> Any:
        # The engine hands AnalyzeStack each resource's outputs; an offline plan's outputs may
        # only hold what the mocks added, so inputs fill what outputs do not say.
        props = {**(res.get("inputs") or {}), **(res.get("outputs") or {})}
        deps = {
            k: self.pb.AnalyzerPropertyDependencies(urns=list(v))
            for k, v in (res.get("propertyDependencies") or {}).items()
            if isinstance(v, list)
        }
        return self.pb.AnalyzerResource(
            **self._common(res, props),
            parent=res.get("parent") or "",
            dependencies=list(res.get("dependencies") or []),
            propertyDependencies=deps,
        )


# --- the pack process ---------------------------------------------------------------------


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


def _diagnostics(response: Any, default_urn: str) -> list[Violation]:
    from pulumi.runtime.proto import analyzer_pb2

    found = []
    for diag in response.diagnostics:
        message = diag.message
        if diag.description and message.startswith(diag.description + "\n"):
            message = message[len(diag.description) + 1 :]
        found.append(
            Violation(
                policy_name=diag.policyName,
                enforcement_level=analyzer_pb2.EnforcementLevel.Name(diag.enforcementLevel).lower(),
                urn=diag.urn or default_urn,
                message=message,
            )
        )
    return found


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

        resolved = _resolve_config(raw, self.info(), source)
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, props) in resolved.items():
            config = request.policyConfig[name]
            config.enforcementLevel = analyzer_pb2.EnforcementLevel.Value(level.upper())
            if props:
                config.properties.update(props)
        self._call("Configure", request)

    def analyze(self, resources: list[dict]) -> list[Violation]:
        """Analyze each custom resource (inputs as properties). Calls are pipelined: the next
        request is built and sent while the pack works on the previous ones."""
        messages = _Messages(resources)
        found: list[Violation] = []
        window: deque[tuple[str, Any]] = deque()
        for res in resources:
            if res.get("custom"):
                window.append((res["urn"], self.stub.Analyze.future(messages.analyze(res))))
            if len(window) >= _PIPELINE:
                found += self._analyzed(*window.popleft())
        while window:
            found += self._analyzed(*window.popleft())
        return found

    @staticmethod
    def _analyzed(urn: str, call: Any) -> list[Violation]:
        import grpc

        try:
            return _diagnostics(call.result(), urn)
        except grpc.RpcError as exc:
            raise GateError(f"policy pack Analyze failed on {urn}: {exc.details()}") from None

    def analyze_stack(self, resources: list[dict]) -> list[Violation]:
        from pulumi.runtime.proto import analyzer_pb2

        messages = _Messages(resources)
        request = analyzer_pb2.AnalyzeStackRequest(
            resources=[messages.stack_resource(r) for r in resources]
        )
        return _diagnostics(self._call("AnalyzeStack", request), "")


# --- the gate -----------------------------------------------------------------------------


def _stack_of(resources: Iterable[Mapping[str, Any]]) -> tuple[str, str]:
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
        violations = session.analyze(resources) + session.analyze_stack(resources)
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


def gate_command(
    file: Annotated[
        Path, typer.Argument(help="A `pulumi stack export` file or the plan's resources.json.")
    ],
    policy_config: Annotated[
        Path | None,
        typer.Option("--policy-config", help="Policy config, e.g. policies/config/prod.json."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the report as JSON here.")
    ] = None,
    stack_file: Annotated[
        Path | None,
        typer.Option(
            "--stack-file",
            help="The stack's Pulumi.<stack>.yaml: findings then name the config key's line.",
        ),
    ] = None,
) -> None:
    """Run the meshless-guardrails policy pack on a stack's resources, offline."""
    console, errors = Console(), Console(stderr=True)
    try:
        if stack_file is not None and not stack_file.is_file():
            raise GateInputError(f"{stack_file}: no such stack file (--stack-file)")
        resources = load_export(file)
        stack, project = _stack_of(resources)
        result = run_gate(resources, policy_config=policy_config, stack=stack, project=project)
    except GateError as exc:
        errors.print(f"[bold red]gate:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    locate = None
    if stack_file is not None:
        from infra.plan import stack_file_locator  # the cloud SDKs: only when asked

        locate = stack_file_locator(stack_file, {r["urn"]: r for r in resources})
    print_findings(result, console, locate=locate)
    emit_annotations(result.violations, sys.stdout, locate)
    for line in result.logs:  # the pack's own log output (pulumi.log), rarely anything
        errors.print(f"[dim]policy pack log: {escape(line)}[/]", highlight=False)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    raise typer.Exit(1 if result.mandatory else 0)
