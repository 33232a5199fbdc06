"""The pack's servicer (policies/rules/_servicer.py) answers exactly as pulumi-policy's own.

Both servicers are built in this process over the pack's policies and fed the same analyzer
requests (as `meshless gate` builds them) for a stack broken in every way the resource tests
break it, so resource and stack policies both report; every Analyze and AnalyzeStack answer
must be the same message.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pulumi_policy.policy as sdk
from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from infra.gate.messages import Requests

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"
UNKNOWN_BOOL = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
# Resource and stack policies of several concerns report on this stack (see the resource tests).
BREAKS: list[tuple[str, str, Any]] = [
    ("eks-main-cilium-release", "values.image.useDigest", False),
    ("eks-main-cilium-release", "values.envoy.image.digest", "v1.34"),
    ("eks-main-cilium-release", "values.kubeProxyReplacement", "strict"),
    ("eks-main-cilium-release", "values.hubble.relay.enabled", False),
    ("eks-main-cluster", "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"]),
    ("gke-main-cluster", "privateClusterConfig.enablePrivateNodes", False),
]


sys.path.insert(0, str(PACK_DIR))
try:
    from rules import ALL_POLICIES as ALL
    from rules._servicer import TypedAnalyzerServicer
finally:
    sys.path.remove(str(PACK_DIR))


def _servicers() -> tuple[Any, Any]:
    stock_class = sdk._PolicyAnalyzerServicer
    if issubclass(stock_class, TypedAnalyzerServicer):  # installed by an earlier import
        stock_class = TypedAnalyzerServicer.__mro__[1]
    args = ("meshless-guardrails", "0.0.1", ALL, EnforcementLevel.MANDATORY)
    return stock_class(*args), TypedAnalyzerServicer(*args)


def _answer(response: Any) -> dict[str, Any]:
    return json_format.MessageToDict(response)


def test_typed_servicer_answers_as_the_sdk_does(stack: Any) -> None:
    for resource, path, value in BREAKS:
        stack.set(resource, path, value)
    stack.remove("gke-main-cilium-release")  # what the stack policies look for
    resources = stack.resources
    messages = Requests(resources)
    stock, typed = _servicers()
    assert type(typed) is not type(stock)
    reported = 0
    for res in resources:
        if not res.get("custom"):
            continue
        request = messages.analyze(res)
        expected = _answer(stock.Analyze(request, None))
        assert _answer(typed.Analyze(request, None)) == expected, res["urn"]
        reported += len(expected.get("diagnostics", []))
    request = analyzer_pb2.AnalyzeStackRequest(
        resources=[messages.stack_resource(r) for r in resources]
    )
    expected = _answer(stock.AnalyzeStack(request, None))
    assert _answer(typed.AnalyzeStack(request, None)) == expected
    assert reported >= 5, "the broken stack must make resource policies report"
    assert expected.get("diagnostics"), "the broken stack must make stack policies report"


def _serve_all(servicer: Any, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages = Requests(resources)
    answers = [
        _answer(servicer.Analyze(messages.analyze(r), None)) for r in resources if r.get("custom")
    ]
    request = analyzer_pb2.AnalyzeStackRequest(
        resources=[messages.stack_resource(r) for r in resources]
    )
    return [*answers, _answer(servicer.AnalyzeStack(request, None))]


def test_validators_leave_the_shared_properties_as_they_were(stack: Any, monkeypatch: Any) -> None:
    """Typed policies share one converted copy of each resource's properties: none may write
    to it, or the next policy would judge what the previous one left."""
    for resource, path, value in BREAKS:
        stack.set(resource, path, value)
    _, typed = _servicers()
    module = sys.modules[type(typed).__module__]
    made: list[tuple[Any, Any]] = []
    convert = module.plain_properties

    def recording(struct: Any, wire: bytes | None = None) -> Any:
        data = convert(struct, wire)
        made.append((data, copy.deepcopy(data)))
        return data

    monkeypatch.setattr(module, "plain_properties", recording)
    _serve_all(typed, stack.resources)
    assert len(made) >= 10
    for data, before in made:
        assert data == before


def _untyped_policies() -> list[Any]:
    """Policies made without the pack's helpers: they read the SDK's proxies (and trip on an
    unknown, which the SDK answers with an advisory note)."""

    def resource(args: Any, report: Any) -> None:
        if args.resource_type.endswith("Release"):
            values = args.props["values"]
            report(f"{type(values).__name__}: {values['kubeProxyReplacement']}")

    def stack_check(args: Any, report: Any) -> None:
        kinds = sorted({type(r.props).__name__ for r in args.resources})
        report(f"{len(args.resources)} resources, props as {kinds}")

    return [
        ResourceValidationPolicy("untyped-resource", "reads proxies", resource),
        StackValidationPolicy("untyped-stack", "reads proxies", stack_check),
    ]


def test_policies_without_the_helpers_see_what_the_sdk_gives(stack: Any) -> None:
    stack.set("eks-main-cilium-release", "values.kubeProxyReplacement", UNKNOWN_BOOL)
    stock, typed = _servicers()
    args = (
        "meshless-guardrails",
        "0.0.1",
        [*ALL, *_untyped_policies()],
        EnforcementLevel.MANDATORY,
    )
    stock, typed = type(stock)(*args), type(typed)(*args)
    expected = _serve_all(stock, stack.resources)
    assert _serve_all(typed, stack.resources) == expected
    text = json.dumps(expected)
    assert "_DictProxy: True" in text and "can't run policy 'untyped-resource'" in text


def test_the_pack_serves_from_one_pool_thread() -> None:
    """install() also gives pulumi-policy's gRPC server a one-thread pool (the four threads it
    asks for only fought over the interpreter lock); and the servicer is ours."""
    sys.path.insert(0, str(PACK_DIR))
    try:
        from rules._servicer import install
    finally:
        sys.path.remove(str(PACK_DIR))
    servicer, pool_module = sdk._PolicyAnalyzerServicer, sdk.futures
    try:
        install()
        pool = sdk.futures.ThreadPoolExecutor(max_workers=4)
        try:
            assert pool._max_workers == 1
            assert pool.submit(lambda: 6 * 7).result(timeout=10) == 42
        finally:
            pool.shutdown()
        assert sdk._PolicyAnalyzerServicer is TypedAnalyzerServicer
    finally:
        sdk._PolicyAnalyzerServicer, sdk.futures = servicer, pool_module
