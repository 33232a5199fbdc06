"""The pack's servicer (policies/rules/_servicer.py) answers exactly as pulumi-policy's own.

Both servicers are built in this process over the pack's policies and fed the same analyzer
requests (as `meshless gate` builds them) for a stack broken in every way the resource tests
break it, so resource and stack policies both report; every Analyze and AnalyzeStack answer
must be the same message.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pulumi_policy.policy as sdk
from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel

from infra.gate.messages import Requests

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"
# Resource and stack policies of several concerns report on this stack (see the resource tests).
BREAKS: list[tuple[str, str, Any]] = [
    ("eks-main-cilium-release", "values.image.useDigest", False),
    ("eks-main-cilium-release", "values.envoy.image.digest", "v1.34"),
    ("eks-main-cilium-release", "values.kubeProxyReplacement", "strict"),
    ("eks-main-cilium-release", "values.hubble.relay.enabled", False),
    ("eks-main-cluster", "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"]),
    ("gke-main-cluster", "privateClusterConfig.enablePrivateNodes", False),
]


def _servicers() -> tuple[Any, Any]:
    sys.path.insert(0, str(PACK_DIR))
    try:
        from rules import ALL_POLICIES
        from rules._servicer import TypedAnalyzerServicer
    finally:
        sys.path.remove(str(PACK_DIR))
    stock_class = sdk._PolicyAnalyzerServicer
    if issubclass(stock_class, TypedAnalyzerServicer):  # installed by an earlier import
        stock_class = TypedAnalyzerServicer.__mro__[1]
    args = ("meshless-guardrails", "0.0.1", ALL_POLICIES, EnforcementLevel.MANDATORY)
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
