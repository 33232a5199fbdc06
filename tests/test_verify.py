"""`meshless verify` against a real HTTP API server on 127.0.0.1 (tests/fake_kube.py).

The command runs unchanged: the official kubernetes client loads a kubeconfig, sends a bearer
token and reads the objects the server serves (get and paginated list endpoints, Status
objects for 404/401/403, a server too slow to answer). Each failure case breaks one thing in
an otherwise healthy cluster and expects exactly that check (and only the checks that follow
from it) to fail, with the evidence that says why.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from components.catalog import pins_for
from infra.cli import app
from infra.verify_cli import expectations_from_stack
from tests.fake_kube import (
    FakeApiServer,
    cnp,
    daemonset,
    find,
    healthy_cluster,
    pod,
)

REPO = Path(__file__).resolve().parents[1]
EKS = "stg-eks-usw2"
GKE = "stg-gke-usc1"
VERSION = "1.16.19"


@pytest.fixture(scope="module")
def staging_policies() -> dict[str, tuple[tuple[str, str], ...]]:
    """The CNPs staging declares per cluster, as the program renders them."""
    return {
        name: expectations_from_stack("staging", name, REPO)[1].policies or ()
        for name in (EKS, GKE)
    }


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer()
    yield fake
    fake.close()


def _cluster(server: FakeApiServer, policies, cloud: str = "eks", name: str = EKS) -> list:
    server.objects = healthy_cluster(cloud, VERSION, list(policies[name]))
    return server.objects


def _verify(server: FakeApiServer, tmp_path: Path, *args: str, token: str | None = None):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(server.kubeconfig(**({"token": token} if token else {}))))
    cluster = args[0] if args else EKS
    return CliRunner().invoke(
        app,
        [
            "verify",
            "--stack",
            "staging",
            "--cluster",
            cluster,
            "--kubeconfig",
            str(kubeconfig),
            "--timeout",
            "2",
            *args[1:],
        ],
        env={"COLUMNS": "250"},
    )


def _json(result) -> dict[str, Any]:
    return json.loads(result.stdout)


def _statuses(result) -> dict[str, str]:
    return {c["id"]: c["status"] for c in _json(result)["checks"]}


def _evidence(result, check: str) -> str:
    return next(c["evidence"] for c in _json(result)["checks"] if c["id"] == check)


class TestHealthyCluster:
    """A cluster that runs what the stack declares passes every check, on both clouds."""

    def test_eks_passes_every_check(self, server, tmp_path, staging_policies) -> None:
        _cluster(server, staging_policies)
        result = _verify(server, tmp_path, EKS, "--json")
        assert result.exit_code == 0, result.output
        assert set(_statuses(result).values()) == {"pass"}, result.stdout
        assert "DaemonSet kube-system/kube-proxy: NotFound" in _evidence(result, "kube-proxy")
        assert "desired 3, ready 3, updated 3, available 3" in _evidence(result, "cilium-agents")
        assert "kube-proxy-replacement='true'" in _evidence(result, "kpr-config")
        assert "3/3 agent pods" in _evidence(result, "kpr-agents")
        # 3 agents x 7 containers, 3 Envoys, 2 operators, relay, UI x 2
        assert "all match: 29 container(s) in 10 running Cilium pod(s)" in _evidence(
            result, "image-digests"
        )
        count = len(staging_policies[EKS])
        assert f"{count}/{count} exist, Valid=True" in _evidence(result, "network-policies")

    def test_gke_reports_kube_proxy_present_but_unused(
        self, server, tmp_path, staging_policies
    ) -> None:
        _cluster(server, staging_policies, "gke", GKE)
        result = _verify(server, tmp_path, GKE, "--json")
        assert result.exit_code == 0, result.output
        evidence = _evidence(result, "kube-proxy")
        assert evidence.startswith("present but unused: 3 GKE-managed kube-proxy pod(s)")
        # operator-generic and node-init on GKE: 29 containers as on EKS, plus 3 node-init
        assert "all match: 32 container(s) in 13 running Cilium pod(s)" in _evidence(
            result, "image-digests"
        )

    def test_table_and_progress(self, server, tmp_path, staging_policies) -> None:
        _cluster(server, staging_policies)
        result = _verify(server, tmp_path, EKS)
        assert result.exit_code == 0
        assert "[ 1/11] kube-proxy" in result.stderr and "[11/11] no-istio" in result.stderr
        assert "meshless verify: stg-eks-usw2" in result.stdout
        assert "PASSED: 0 of 11 check(s) failed" in result.stdout
        assert "status.conditions[type=Valid]" in result.stdout  # evidence is not markup

    def test_digest_read_from_image_id_whatever_image_shows(
        self, server, tmp_path, staging_policies
    ) -> None:
        """Runtimes report `image` as the spec's reference, a bare tag or an image ID; the
        digest that counts is imageID's."""
        objects = _cluster(server, staging_policies)
        statuses = find(objects, "Pod", "cilium-0x7kq")["status"]["containerStatuses"]
        statuses[0]["image"] = "sha256:" + "9" * 64
        relay = find(objects, "Pod", "hubble-relay-6d8f9b7c4-k2l9m")["status"]["containerStatuses"]
        relay[0]["imageID"] = "docker-pullable://" + relay[0]["imageID"]
        result = _verify(server, tmp_path, EKS, "--json")
        assert _statuses(result)["image-digests"] == "pass", _evidence(result, "image-digests")

    def test_lists_are_paginated(self, server, tmp_path, staging_policies) -> None:
        objects = _cluster(server, staging_policies)
        objects += [
            pod(
                f"web-{i}",
                "shop",
                {"app": "web"},
                [("web", "nginx@sha256:" + "e" * 64, "sha256:" + "e" * 64)],
            )
            for i in range(520)
        ]
        result = _verify(server, tmp_path, EKS, "--json")
        assert result.exit_code == 0, result.output
        assert any("continue=500" in path for path in server.requests)


def _break(objects: list, case: str) -> None:
    if case == "kube-proxy":
        objects.append(daemonset("kube-proxy", 3))
        objects.append(pod("kube-proxy-x2c4v", "kube-system", {"k8s-app": "kube-proxy"}, []))
    elif case == "digest":
        status = find(objects, "Pod", "cilium-1x7kq")["status"]["containerStatuses"][0]
        status["imageID"] = "quay.io/cilium/cilium@sha256:" + "d" * 64
    elif case == "envoy":
        find(objects, "DaemonSet", "cilium-envoy")["status"].update(
            numberReady=2, numberAvailable=2
        )
    elif case == "agent":
        find(objects, "DaemonSet", "cilium")["status"].update(numberReady=2, numberAvailable=2)
        conditions = find(objects, "Pod", "cilium-2x7kq")["status"]["conditions"]
        conditions[1]["status"] = "False"
    elif case == "cnp":
        victim = next(o for o in objects if o["kind"] == "CiliumNetworkPolicy")
        objects.remove(victim)
        namespace, name = victim["metadata"]["namespace"], victim["metadata"]["name"]
        objects.append(
            cnp(namespace, name, "False", "Invalid CiliumNetworkPolicy spec: rule has no selector")
        )
    elif case == "istio":
        find(objects, "Namespace", "shop")["metadata"]["labels"]["istio-injection"] = "enabled"
        checkout = find(objects, "Pod", "checkout-5f6d7c8b9-abcde")
        checkout["spec"]["containers"].append(
            {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.3"}
        )


FAILURES = [
    ("kube-proxy", {"kube-proxy"}, "DaemonSet kube-system/kube-proxy exists (3 desired)"),
    (
        "digest",
        {"image-digests"},
        "cilium-1x7kq/cilium-agent: runs quay.io/cilium/cilium@sha256:ddd",
    ),
    ("envoy", {"cilium-envoy"}, "DaemonSet kube-system/cilium-envoy: desired 3, ready 2"),
    ("agent", {"cilium-agents", "kpr-agents"}, "desired 3, ready 2, updated 3, available 2"),
    ("cnp", {"network-policies"}, "Valid=False: Invalid CiliumNetworkPolicy spec"),
    ("istio", {"no-istio"}, "namespace shop labelled istio-injection=enabled"),
]


@pytest.mark.parametrize(("case", "failing", "words"), FAILURES, ids=[f[0] for f in FAILURES])
def test_failure_is_reported_by_its_check(
    server, tmp_path, staging_policies, case: str, failing: set[str], words: str
) -> None:
    _break(_cluster(server, staging_policies), case)
    result = _verify(server, tmp_path, EKS, "--json")
    assert result.exit_code == 1, result.output
    statuses = _statuses(result)
    assert {check for check, status in statuses.items() if status == "fail"} == failing
    evidence = " ".join(_evidence(result, check) for check in failing)
    assert words in evidence, evidence
    assert _json(result)["passed"] is False


class TestMoreFailures:
    """Cases the table above does not cover: a missing CNP, a stale agent, a drifted Envoy."""

    def test_missing_policy_and_unvalidated_policy(
        self, server, tmp_path, staging_policies
    ) -> None:
        objects = _cluster(server, staging_policies)
        policies = [o for o in objects if o["kind"] == "CiliumNetworkPolicy"]
        objects.remove(policies[0])
        policies[1]["status"] = {}
        evidence = _evidence(_verify(server, tmp_path, EKS, "--json"), "network-policies")
        assert (
            "/".join((policies[0]["metadata"]["namespace"], policies[0]["metadata"]["name"]))
            + " missing"
            in evidence
        )
        assert "not validated by the operator (no Valid condition)" in evidence

    def test_agent_started_before_the_config_changed(
        self, server, tmp_path, staging_policies
    ) -> None:
        objects = _cluster(server, staging_policies)
        running = find(objects, "Pod", "cilium-0x7kq")["status"]["containerStatuses"][0]["state"]
        running["running"]["startedAt"] = "2026-11-29T08:00:00Z"
        result = _verify(server, tmp_path, EKS, "--json")
        assert result.exit_code == 1
        assert "before cilium-config changed" in _evidence(result, "kpr-agents")
        assert "rollout restart ds/cilium" in _evidence(result, "kpr-agents")

    def test_kpr_disabled_in_config(self, server, tmp_path, staging_policies) -> None:
        objects = _cluster(server, staging_policies)
        find(objects, "ConfigMap", "cilium-config")["data"]["kube-proxy-replacement"] = "false"
        result = _verify(server, tmp_path, EKS, "--json")
        assert _statuses(result)["kpr-config"] == "fail"

    def test_envoy_from_outside_the_catalog(self, server, tmp_path, staging_policies) -> None:
        objects = _cluster(server, staging_policies)
        status = find(objects, "Pod", "cilium-envoy-0m2wd")["status"]["containerStatuses"][0]
        status.update(
            image="registry.example.com/mirror/cilium-envoy:v1.34",
            imageID="registry.example.com/mirror/cilium-envoy@sha256:" + "f" * 64,
        )
        evidence = _evidence(_verify(server, tmp_path, EKS, "--json"), "image-digests")
        assert "registry.example.com/mirror/cilium-envoy@sha256:fff" in evidence
        assert "not an image of the catalog" in evidence


class TestCannotAsk:
    """No verdict without access: exit 2 with one clear line, never a traceback."""

    def _assert_exit_2(self, result, *words: str) -> None:
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        for word in words:
            assert word in result.stderr, result.stderr
        assert result.stdout == ""

    def test_wrong_token_is_unauthorised(self, server, tmp_path, staging_policies) -> None:
        _cluster(server, staging_policies)
        result = _verify(server, tmp_path, EKS, token="expired")
        self._assert_exit_2(result, "unauthorised (401)", "refresh them")

    def test_forbidden_everywhere(self, server, tmp_path, staging_policies) -> None:
        _cluster(server, staging_policies)
        server.refuse = 403
        self._assert_exit_2(_verify(server, tmp_path, EKS), "forbidden (403)")

    def test_forbidden_midway_stops_without_a_verdict(
        self, server, tmp_path, staging_policies
    ) -> None:
        _cluster(server, staging_policies)
        server.forbid_paths = ("/apis/cilium.io/",)
        result = _verify(server, tmp_path, EKS)
        self._assert_exit_2(result, "forbidden (403) reading ciliumnetworkpolicies")
        assert "[ 9/11] image-digests" in result.stderr  # the checks before it ran

    def test_timeout(self, server, tmp_path, staging_policies) -> None:
        _cluster(server, staging_policies)
        server.delay = 1.5
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(server.kubeconfig()))
        result = CliRunner().invoke(
            app,
            [
                "verify",
                "--stack",
                "staging",
                "--cluster",
                EKS,
                "--kubeconfig",
                str(kubeconfig),
                "--timeout",
                "0.3",
            ],
        )
        self._assert_exit_2(result, "no answer within 0.3s", "timeout")

    def test_nothing_listening(self, tmp_path, staging_policies) -> None:
        fake = FakeApiServer()
        fake.close()  # the port is free again: connection refused
        result = _verify(fake, tmp_path, EKS)
        self._assert_exit_2(result, "cannot connect", "[Errno 111] Connection refused")

    def test_unreadable_kubeconfig(self, tmp_path) -> None:
        result = CliRunner().invoke(
            app, ["verify", "--cloud", "eks", "--kubeconfig", str(tmp_path / "nope")]
        )
        self._assert_exit_2(result, "cannot read the kubeconfig")

    def test_missing_credential_plugin(self, server, tmp_path) -> None:
        """EKS kubeconfigs run `aws eks get-token`; without the aws CLI the client would only
        log the failure and send no token."""
        document = server.kubeconfig()
        document["users"][0]["user"] = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "meshless-no-such-aws",
                "args": ["eks", "get-token", "--cluster-name", "stg-eks-usw2"],
            }
        }
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(document))
        result = CliRunner().invoke(
            app, ["verify", "--cloud", "eks", "--kubeconfig", str(kubeconfig)]
        )
        self._assert_exit_2(result, "credential plugin failed", "meshless-no-such-aws")
        assert server.requests == []

    def test_unknown_context(self, server, tmp_path) -> None:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(server.kubeconfig()))
        result = CliRunner().invoke(
            app, ["verify", "--cloud", "eks", "--kubeconfig", str(kubeconfig), "--context", "prod"]
        )
        self._assert_exit_2(result, "the kubeconfig does not load")


class TestWhereTheClusterComesFrom:
    """--stack reads the kubeconfig through the Pulumi CLI; without one, exit 2 says so."""

    def _fake_pulumi(self, tmp_path: Path, outputs: dict[str, Any], code: int = 0) -> Path:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        script = bin_dir / "pulumi"
        body = json.dumps(outputs).replace("'", "'\\''")
        script.write_text(
            "#!/bin/sh\n"
            f'echo "$@" > "{tmp_path}/args"\n'
            + (
                f"printf '%s' '{body}'\n"
                if code == 0
                else "echo 'error: no stack named staging found' >&2\n"
            )
            + f"exit {code}\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        return bin_dir

    def test_kubeconfig_from_stack_outputs(self, server, tmp_path, staging_policies) -> None:
        _cluster(server, staging_policies)
        outputs = {f"{EKS}-kubeconfig": json.dumps(server.kubeconfig()), "clusters": {}}
        bin_dir = self._fake_pulumi(tmp_path, outputs)
        result = CliRunner().invoke(
            app,
            ["verify", "--stack", "staging", "--cluster", EKS, "--json"],
            env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        )
        assert result.exit_code == 0, result.output
        args = (tmp_path / "args").read_text().split()
        assert args == ["stack", "output", "--stack", "staging", "--show-secrets", "--json"]

    @pytest.mark.parametrize(
        ("outputs", "words"),
        [
            ({"clusters": {}}, "has no output 'stg-eks-usw2-kubeconfig' (outputs: clusters)"),
            ({f"{EKS}-kubeconfig": "{not: [yaml"}, "is not a kubeconfig"),
        ],
    )
    def test_stack_without_a_usable_kubeconfig(self, tmp_path, outputs, words) -> None:
        bin_dir = self._fake_pulumi(tmp_path, outputs)
        result = CliRunner().invoke(
            app,
            ["verify", "--stack", "staging", "--cluster", EKS],
            env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        )
        assert result.exit_code == 2, result.output
        assert words in result.stderr

    def test_failing_pulumi_cli(self, tmp_path) -> None:
        bin_dir = self._fake_pulumi(tmp_path, {}, code=255)
        result = CliRunner().invoke(
            app,
            ["verify", "--stack", "staging", "--cluster", EKS],
            env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        )
        assert result.exit_code == 2
        assert "no stack named staging found" in result.stderr

    def test_no_pulumi_cli(self, tmp_path) -> None:
        empty = tmp_path / "empty"
        empty.mkdir()
        result = CliRunner().invoke(
            app, ["verify", "--stack", "staging", "--cluster", EKS], env={"PATH": str(empty)}
        )
        assert result.exit_code == 2
        assert "Pulumi CLI (`pulumi`) is not on PATH" in result.stderr
        assert "--kubeconfig FILE" in result.stderr

    @pytest.mark.parametrize(
        ("args", "words"),
        [
            ([], "say where the cluster is"),
            (["--stack", "staging"], "has 2 clusters (stg-eks-usw2, stg-gke-usc1)"),
            (["--stack", "staging", "--cluster", "nope"], "no cluster 'nope'"),
            (["--stack", "qa", "--cluster", EKS], "Pulumi.qa.yaml: no such stack file"),
            (["--kubeconfig", "k"], "--cloud eks|gke"),
            (
                ["--kubeconfig", "k", "--cloud", "eks", "--chart-version", "1.15.0"],
                "not in the digest catalog",
            ),
        ],
    )
    def test_bad_command_line(self, args: list[str], words: str) -> None:
        result = CliRunner().invoke(app, ["verify", *args])
        assert result.exit_code == 2, result.output
        assert words in result.stderr

    def test_without_a_stack_checks_every_cnp_labelled_ours(self, server, tmp_path) -> None:
        server.objects = healthy_cluster(
            "eks", VERSION, [("shop", "checkout"), ("shop", "meshless-default-deny")]
        )
        server.objects.append(cnp("shop", "hand-made", "False", "bad"))
        server.objects[-1]["metadata"]["labels"] = {}  # not ours: not judged
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(server.kubeconfig()))
        result = CliRunner().invoke(
            app, ["verify", "--cloud", "eks", "--kubeconfig", str(kubeconfig), "--json"]
        )
        assert result.exit_code == 0, result.output
        assert "2/2 exist, Valid=True" in _evidence(result, "network-policies")
        assert pins_for(VERSION, "eks")["image"].digest  # the catalog the default version used
