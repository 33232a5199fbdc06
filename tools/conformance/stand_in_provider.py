"""Test-only stand-in for the `aws`, `gcp`, `tls` and (for `pulumi up` only) `kubernetes`
resource providers, speaking the real provider gRPC protocol to the real Pulumi engine.

Why: pulumi-aws, pulumi-gcp and pulumi-tls embed patched Terraform providers (not buildable
from the Go module proxy) and the cloud ones reach real clouds; the
conformance run has neither credentials nor a network to them, and no Kubernetes API server
exists for `up`. This plugin is written into a throw-away plugin folder by
tools/conformance/run.py and named in that run's generated Pulumi.yaml `plugins:` section
only; it is never installed on PATH or into a user's ~/.pulumi.

One implementation of the fake cloud: every id and computed output comes from
infra.mocks.MeshlessMocks, the same object the offline plan (`make plan`) uses, so the real
engine's state and the plan's resources.json are built from the same values.
"""

from __future__ import annotations

import sys
from typing import Any

from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from conformance.plugin_server import serve
from infra.export_format import UNKNOWN_SENTINEL
from infra.mocks import MeshlessMocks

#: What each stand-in reports as its version: the SDK version from uv.lock it stands in for,
#: marked as a test build (semver build metadata).
VERSIONS = {"aws": "7.51.1", "gcp": "10.2.0", "kubernetes": "4.34.2", "tls": "5.6.2"}


def _to_python(struct: struct_pb2.Struct) -> dict[str, Any]:
    _ensure_event_loop()
    return rpc.deserialize_properties(struct, keep_unknowns=True)


def _to_struct(values: dict[str, Any]) -> struct_pb2.Struct:
    _ensure_event_loop()
    return _sync_await(rpc.serialize_properties(values, {}))


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _type(urn: str) -> str:
    return urn.split("::")[-2].rsplit("$", 1)[-1]


class StandInProvider(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, package: str) -> None:
        self.package = package
        self.mocks = MeshlessMocks()

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=f"{VERSIONS[self.package]}+meshless-test")

    def GetSchema(self, request: Any, context: Any) -> Any:
        return provider_pb2.GetSchemaResponse(
            schema=f'{{"name": "{self.package}", "version": "{VERSIONS[self.package]}"}}'
        )

    def CheckConfig(self, request: Any, context: Any) -> Any:
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(self, request: Any, context: Any) -> Any:
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)

    def Configure(self, request: Any, context: Any) -> Any:
        return provider_pb2.ConfigureResponse(
            acceptSecrets=True, acceptResources=True, supportsPreview=True, acceptOutputs=False
        )

    def Check(self, request: Any, context: Any) -> Any:
        return provider_pb2.CheckResponse(inputs=request.news)

    def Diff(self, request: Any, context: Any) -> Any:
        olds, news = _to_python(request.olds), _to_python(request.news)
        changed = sorted(k for k in set(olds) | set(news) if olds.get(k) != news.get(k))
        if not changed:
            return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_SOME, diffs=changed)

    def _outputs(self, urn: str, properties: struct_pb2.Struct) -> tuple[str, struct_pb2.Struct]:
        args = pulumi_mocks.MockResourceArgs(
            typ=_type(urn), name=_name(urn), inputs=_to_python(properties), custom=True
        )
        resource_id, state = self.mocks.new_resource(args)
        return resource_id, _to_struct(state)

    def Create(self, request: Any, context: Any) -> Any:
        if request.preview:
            return provider_pb2.CreateResponse(properties=self._preview(request))
        resource_id, outputs = self._outputs(request.urn, request.properties)
        return provider_pb2.CreateResponse(id=resource_id, properties=outputs)

    def _preview(self, request: Any) -> struct_pb2.Struct:
        """What a bridged provider previews for a create: the inputs, and every attribute the
        cloud computes (here: every key whose mock value is not the input's) unknown."""
        inputs = _to_python(request.properties)
        args = pulumi_mocks.MockResourceArgs(
            typ=_type(request.urn), name=_name(request.urn), inputs=inputs, custom=True
        )
        _, state = self.mocks.new_resource(args)
        struct = _to_struct(inputs)
        for key, value in state.items():
            if key not in inputs or inputs[key] != value:
                struct[key] = UNKNOWN_SENTINEL
        return struct

    def Update(self, request: Any, context: Any) -> Any:
        _, outputs = self._outputs(request.urn, request.news)
        return provider_pb2.UpdateResponse(properties=outputs)

    def Read(self, request: Any, context: Any) -> Any:
        return provider_pb2.ReadResponse(
            id=request.id, properties=request.properties, inputs=request.inputs
        )

    def Delete(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()

    def Invoke(self, request: Any, context: Any) -> Any:
        args = pulumi_mocks.MockCallArgs(
            token=request.tok, args=_to_python(request.args), provider=""
        )
        result, _ = self.mocks.call(args)
        return provider_pb2.InvokeResponse(**{"return": _to_struct(result)})

    def Cancel(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()


def main() -> None:
    package = sys.argv[1]
    if package not in VERSIONS:
        sys.exit(f"stand_in_provider: unknown package {package!r}; one of {sorted(VERSIONS)}")
    provider = StandInProvider(package)
    serve(lambda server: provider_pb2_grpc.add_ResourceProviderServicer_to_server(provider, server))


if __name__ == "__main__":
    main()
