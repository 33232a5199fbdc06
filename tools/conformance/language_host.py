"""Stand-in for `pulumi-language-python`, the Python language host, for the conformance run.

Why a stand-in: the real host is the Go module
github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3, and the Go module proxy
this project can reach answers 403 "This module version is not available" for every version
of it (tried v3.272.0, v3.274.1, v3.274.0, v3.260.0, v3.229.0 and the version list), so it
cannot be built here. Everything around it is real: the CLI and engine start this plugin
through the same LanguageRuntime gRPC protocol, hand it the `main: infra/` entry point from
Pulumi.yaml, and start the policy pack through its RunPlugin method exactly as with the real
host.

What it does, and where it follows the real host:
- Run: executes the program in this process with the Python SDK's own LanguageServer (the
  code Pulumi ships for Automation API inline programs: it configures the runtime from the
  RunRequest and runs the program in a stack). The real host starts a second Python process
  (`pulumi-language-python-exec`) doing the same. This process is started with `uv run`
  in the project (Pulumi.yaml's `toolchain: uv`), so the program sees the locked packages.
- RunPlugin: runs `<virtualenv>/bin/python <policy pack dir> <engine address>` with the pack's
  `virtualenv` option, streaming stdout/stderr back, as the real host's RunPlugin does
  (sdk/python/cmd/pulumi-language-python/main.go: `tc.Command(ctx, ProgramDirectory, args...)`
  with cmd.Dir = req.Pwd). Like the real pip toolchain it refuses a missing virtualenv.
- GetRequiredPlugins/Packages: none declared; the engine loads each provider when the first
  resource asks for it (the project's `plugins:` section points at the binaries).
"""

from __future__ import annotations

import os
import queue
import runpy
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from pulumi.automation._server import LanguageServer
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

from conformance.plugin_server import serve

VERSION = "3.272.0"  # the Python SDK this stands in for (uv.lock)


def program_entry(info: Any) -> Path:
    """The file the real host runs: `main:` may name a directory (then its __main__.py)."""
    target = Path(info.program_directory) / (info.entry_point or ".")
    return target / "__main__.py" if target.is_dir() else target


def runtime_options(info: Any) -> dict[str, Any]:
    return json_format.MessageToDict(info.options) if info.HasField("options") else {}


class StandInLanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    def Handshake(self, request: Any, context: Any) -> Any:
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=VERSION)

    def GetRequiredPlugins(self, request: Any, context: Any) -> Any:
        return language_pb2.GetRequiredPluginsResponse()

    def GetRequiredPackages(self, request: Any, context: Any) -> Any:
        return language_pb2.GetRequiredPackagesResponse()

    def InstallDependencies(self, request: Any, context: Any) -> Iterator[Any]:
        # `make sync` installed the project from uv.lock before the run.
        return iter(())

    def About(self, request: Any, context: Any) -> Any:
        version = ".".join(map(str, sys.version_info[:3]))
        return language_pb2.AboutResponse(executable=sys.executable, version=version)

    def GetProgramDependencies(self, request: Any, context: Any) -> Any:
        return language_pb2.GetProgramDependenciesResponse()

    def Run(self, request: Any, context: Any) -> Any:
        toolchain = runtime_options(request.info).get("toolchain", "pip")
        if toolchain != "uv":
            return language_pb2.RunResponse(
                error=f"conformance language host runs uv projects only, Pulumi.yaml says toolchain: {toolchain}"
            )
        entry = program_entry(request.info)
        if not entry.is_file():
            return language_pb2.RunResponse(error=f"{entry}: no program (Pulumi.yaml main:)")
        os.chdir(request.pwd or request.info.root_directory)
        sys.path.insert(0, str(Path(request.info.root_directory)))
        server = LanguageServer(lambda: runpy.run_path(str(entry), run_name="__main__"))
        return server.Run(request, context)

    def RunPlugin(self, request: Any, context: Any) -> Iterator[Any]:
        options = runtime_options(request.info)
        pack_dir = Path(request.info.program_directory)
        venv = pack_dir / str(options.get("virtualenv", "venv"))
        python = venv / "bin" / "python"
        if not python.is_file():
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"The 'virtualenv' option in PulumiPolicy.yaml is set to {venv.name!r}, but {venv} "
                f"is not a virtual environment; create it: python3 -m venv {venv} && "
                f"{python} -m pip install -r {pack_dir / 'requirements.txt'}",
            )
        env = {**os.environ, **dict(item.split("=", 1) for item in request.env if "=" in item)}
        proc = subprocess.Popen(
            [str(python), str(pack_dir), *request.args],
            cwd=request.pwd or str(pack_dir),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # The engine ends the plugin by cancelling this stream.
        context.add_callback(proc.kill)
        yield from _stream(proc)


def _stream(proc: subprocess.Popen[bytes]) -> Iterator[Any]:
    chunks: queue.Queue[tuple[str, bytes]] = queue.Queue()

    def pump(name: str, pipe: Any) -> None:
        for chunk in iter(lambda: pipe.read1(65536), b""):
            chunks.put((name, chunk))
        chunks.put((name, b""))

    for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        threading.Thread(target=pump, args=(name, pipe), daemon=True).start()
    open_pipes = 2
    while open_pipes:
        name, chunk = chunks.get()
        if not chunk:
            open_pipes -= 1
            continue
        yield language_pb2.RunPluginResponse(**{name: chunk})
    yield language_pb2.RunPluginResponse(exitcode=proc.wait())


def main() -> None:
    host = StandInLanguageHost()
    serve(lambda server: language_pb2_grpc.add_LanguageRuntimeServicer_to_server(host, server))


if __name__ == "__main__":
    main()
