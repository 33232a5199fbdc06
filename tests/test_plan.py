"""The offline plan end to end: the real program under mocks, the export, the gate, the summary.

These read what `make plan` writes, the way a reviewer or another tool would read it.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from infra import plan as offline
from infra.export_format import CLUSTER_TYPES, StackExport
from infra.mocks import FAKE_ACCOUNT

REPO = Path(__file__).resolve().parents[1]


def run_plan(stack: str, out: Path, stack_file: Path | None = None, **kwargs: Any) -> int:
    return offline.run(stack, stack_file=stack_file, out_dir=out, **kwargs)


def resources(out: Path) -> list[dict[str, Any]]:
    return json.loads((out / "resources.json").read_text())["deployment"]["resources"]


def of_type(items: list[dict[str, Any]], typ: str) -> list[dict[str, Any]]:
    return [r for r in items if r["type"] == typ]


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    outs = {}
    for stack in ("staging", "prod"):
        out = tmp_path_factory.mktemp(stack)
        assert run_plan(stack, out) == 0, (out / "summary.md").read_text()
        outs[stack] = out
    return outs


STACKS = ["staging", "prod"]


class TestExportShape:
    """resources.json reads like `pulumi stack export`, so tools for real stacks read ours."""

    @pytest.mark.parametrize("stack", STACKS)
    def test_stack_export_shape(self, planned: dict[str, Path], stack: str) -> None:
        document = json.loads((planned[stack] / "resources.json").read_text())
        assert document["version"] == 3
        items = document["deployment"]["resources"]
        assert items[0]["type"] == "pulumi:pulumi:Stack"
        assert (
            items[0]["urn"]
            == f"urn:pulumi:{stack}::meshless::pulumi:pulumi:Stack::meshless-{stack}"
        )
        for res in items:
            assert {"urn", "type", "custom", "dependencies", "inputs", "outputs"} <= set(res), res[
                "urn"
            ]
            assert res["urn"].startswith(f"urn:pulumi:{stack}::meshless::")
            if res["type"] != "pulumi:pulumi:Stack":
                assert res.get("parent"), f"{res['urn']} has no parent"

    @pytest.mark.parametrize("stack", STACKS)
    def test_one_type_token_scheme(self, planned: dict[str, Path], stack: str) -> None:
        components = {r["type"] for r in resources(planned[stack]) if not r["custom"]} - {
            "pulumi:pulumi:Stack"
        }
        assert components
        assert all(
            re.fullmatch(r"meshless:(aws|gcp|cilium|deploy):[A-Z][A-Za-z]+", t) for t in components
        ), components

    @pytest.mark.parametrize("stack", STACKS)
    def test_kubeconfigs_stay_secret(self, planned: dict[str, Path], stack: str) -> None:
        for provider in of_type(resources(planned[stack]), "pulumi:providers:kubernetes"):
            assert provider["inputs"]["kubeconfig"]["ciphertext"] == "[secret]", provider["urn"]
        assert "certificate-authority-data" not in (planned[stack] / "resources.json").read_text()

    def test_wire_constants_match_the_sdk(self) -> None:
        from pulumi.runtime import rpc

        from infra import export_format as wire

        assert rpc._special_sig_key == wire.SIG_KEY
        assert rpc._special_secret_sig == wire.SECRET_SIG
        assert rpc._special_resource_sig == wire.RESOURCE_REF_SIG
        assert wire.UNKNOWN_SENTINEL == rpc.UNKNOWN

    def test_mock_outputs_look_like_the_providers(self, planned: dict[str, Path]) -> None:
        (eks,) = of_type(resources(planned["staging"]), "aws:eks/cluster:Cluster")
        assert re.fullmatch(
            r"https://[0-9A-F]{32}\.gr7\.us-west-2\.eks\.amazonaws\.com", eks["outputs"]["endpoint"]
        )
        issuer = eks["outputs"]["identities"][0]["oidcs"][0]["issuer"]
        assert issuer.startswith("https://oidc.eks.us-west-2.amazonaws.com/id/")
        roles = of_type(resources(planned["staging"]), "aws:iam/role:Role")
        assert all(
            r["outputs"]["arn"].startswith(f"arn:aws:iam::{FAKE_ACCOUNT}:role/") for r in roles
        )


class TestEksWithoutKubeProxy:
    """EKS: no kube-proxy, no VPC CNI, CoreDNS after Cilium, on the real stacks. What the
    component does for any config (taints, IAM, launch templates) is in tests/test_eks.py."""

    @pytest.mark.parametrize("stack", STACKS)
    def test_no_bootstrap_addons(self, planned: dict[str, Path], stack: str) -> None:
        clusters = of_type(resources(planned[stack]), "aws:eks/cluster:Cluster")
        assert clusters
        for cluster in clusters:
            inputs = cluster["inputs"]
            assert inputs["bootstrapSelfManagedAddons"] is False, cluster["urn"]
            assert inputs["accessConfig"]["authenticationMode"] == "API"
            assert inputs["encryptionConfig"]["resources"] == ["secrets"]
            assert set(inputs["enabledClusterLogTypes"]) >= {"api", "audit", "authenticator"}
            assert inputs["version"] == "1.32"
            vpc = inputs["vpcConfig"]
            assert vpc["endpointPrivateAccess"] is True
            assert (
                not vpc.get("endpointPublicAccess") or "0.0.0.0/0" not in vpc["publicAccessCidrs"]
            )

    @pytest.mark.parametrize("stack", STACKS)
    def test_no_kube_proxy_or_vpc_cni_addon(self, planned: dict[str, Path], stack: str) -> None:
        names = {
            a["inputs"]["addonName"]
            for a in of_type(resources(planned[stack]), "aws:eks/addon:Addon")
        }
        assert "coredns" in names
        assert not names & {"kube-proxy", "vpc-cni"}

    @pytest.mark.parametrize("stack", STACKS)
    def test_bootstrap_order(self, planned: dict[str, Path], stack: str) -> None:
        """Control plane -> Cilium (no wait) -> node groups -> CoreDNS -> policies: a node group
        only turns ACTIVE once a CNI runs on its nodes (terraform-aws-eks #3106)."""
        items = resources(planned[stack])
        by_urn = {r["urn"]: r for r in items}
        groups = {r["urn"] for r in of_type(items, "aws:eks/nodeGroup:NodeGroup")}
        eks_releases = [
            r
            for r in of_type(items, "kubernetes:helm.sh/v3:Release")
            if r["inputs"]["values"].get("eni")
        ]
        assert groups and eks_releases
        for release in eks_releases:
            assert release["inputs"]["skipAwait"] is True and release["inputs"]["atomic"] is False
            provider = by_urn[release["provider"].rsplit("::", 1)[0]]
            assert not set(provider["dependencies"]) & groups, provider["urn"]
            for group in groups:
                assert release["urn"] in by_urn[group]["dependencies"], group
        for addon in of_type(items, "aws:eks/addon:Addon"):
            assert set(addon["dependencies"]) & groups, addon["urn"]

    @pytest.mark.parametrize("stack", STACKS)
    def test_gke_release_waits_after_node_pools(self, planned: dict[str, Path], stack: str) -> None:
        """GKE pools turn RUNNING without our CNI, so the release goes after them and waits."""
        items = resources(planned[stack])
        pools = {r["urn"] for r in of_type(items, "gcp:container/nodePool:NodePool")}
        gke_releases = [
            r
            for r in of_type(items, "kubernetes:helm.sh/v3:Release")
            if r["inputs"]["values"].get("gke")
        ]
        assert pools and gke_releases
        for release in gke_releases:
            assert set(release["dependencies"]) & pools, release["urn"]
            assert release["inputs"]["atomic"] is True

    def test_prod_spans_three_zones(self, planned: dict[str, Path]) -> None:
        subnets = of_type(resources(planned["prod"]), "aws:ec2/subnet:Subnet")
        assert len({s["inputs"]["availabilityZone"] for s in subnets}) == 3


class TestCiliumPerCluster:
    """Each cluster gets exactly one digest-pinned release on its own provider."""

    @pytest.mark.parametrize("stack", STACKS)
    def test_one_release_per_cluster_on_its_provider(
        self, planned: dict[str, Path], stack: str
    ) -> None:
        items = resources(planned[stack])
        export = StackExport(items)
        releases = of_type(items, "kubernetes:helm.sh/v3:Release")
        clusters = [r for r in items if r["type"] in CLUSTER_TYPES]
        assert len(releases) == len(clusters) == 2
        assert sorted(export.releases()) == sorted(c["urn"].rsplit("::", 1)[-1] for c in clusters)
        for release in releases:
            provider_urn = release["provider"].rsplit("::", 1)[0]
            assert export.cluster_of(provider_urn) == export.cluster_of(release) is not None
            inputs = release["inputs"]
            assert inputs["chart"] == "cilium" and inputs["version"] == "1.16.19"
            assert inputs["repositoryOpts"]["repo"] == "https://helm.cilium.io"
            # EKS installs before nodes exist (no wait, so not atomic); GKE waits, atomically.
            waits = not inputs["values"].get("eni")
            assert inputs["atomic"] is waits and inputs["skipAwait"] is not waits
            assert inputs["cleanupOnFail"] is True
            assert inputs["values"]["kubeProxyReplacement"] is True
            assert inputs["values"]["k8sServicePort"] == 443

    @pytest.mark.parametrize("stack", STACKS)
    def test_values_written_per_cluster(self, planned: dict[str, Path], stack: str) -> None:
        values_files = sorted((planned[stack] / "manifests").glob("*/helm-cilium-values.yaml"))
        assert len(values_files) == 2
        for path in values_files:
            values = yaml.safe_load(path.read_text())
            assert values["image"]["useDigest"] is True
            assert values["k8sServiceHost"] not in ("auto", "")

    @pytest.mark.parametrize("stack", STACKS)
    def test_every_policy_waits_for_its_release(self, planned: dict[str, Path], stack: str) -> None:
        items = resources(planned[stack])
        releases = {r["urn"] for r in of_type(items, "kubernetes:helm.sh/v3:Release")}
        policies = of_type(items, "kubernetes:cilium.io/v2:CiliumNetworkPolicy")
        assert policies
        for policy in policies:
            assert set(policy["dependencies"]) & releases, policy["urn"]
        manifests = list((planned[stack] / "manifests").glob("*/ciliumnetworkpolicy-*.yaml"))
        assert len(manifests) == len(policies)


class TestOutputsForReviewers:
    """What a pull request shows: verdict first, the gate's report, the graph."""

    @pytest.mark.parametrize("stack", STACKS)
    def test_summary_report_and_graph(self, planned: dict[str, Path], stack: str) -> None:
        summary = (planned[stack] / "summary.md").read_text()
        assert summary.startswith("✅ **meshless plan")
        assert "```mermaid" in summary
        report = json.loads((planned[stack] / "policy-report.json").read_text())
        assert report["pack"]["name"] == "meshless-guardrails"
        assert report["mandatory"] == 0
        assert (planned[stack] / "graph.mmd").read_text().startswith(("flowchart", "graph"))

    def test_shop_call_graph_in_both_summaries_parses(
        self, planned: dict[str, Path], mermaid_parse: Any
    ) -> None:
        graphs = []
        for stack in STACKS:
            summary = (planned[stack] / "summary.md").read_text()
            graph = summary.split("```mermaid\n", 1)[1].split("```", 1)[0]
            assert graph == (planned[stack] / "graph.mmd").read_text()
            assert '"9090 gRPC Payments/{Authorize,Capture,Refund}"' in graph
            assert "api.stripe.com" in graph and "entity ingress" in graph
            graphs.append(graph)
        assert all(r["ok"] for r in mermaid_parse(graphs))

    @pytest.mark.parametrize("stack", STACKS)
    def test_counts_add_up(self, planned: dict[str, Path], stack: str) -> None:
        summary = (planned[stack] / "summary.md").read_text()
        total = len(resources(planned[stack]))
        first = summary.splitlines()[0]
        parts = re.search(r"(\d+) resources: (.*)$", first)
        assert parts and int(parts[1]) == total
        assert sum(int(n) for n in re.findall(r"(\d+) (?:in|outside)", parts[2])) == total
        headings = re.findall(r"^### \S+ \(\w+\): (\d+) resources", summary, re.M)
        # The stack resource and the deployer sit outside the clusters, and the verdict says so.
        outside = re.search(r"(\d+) outside the clusters", parts[2])
        assert outside and int(outside[1]) >= 1
        assert sum(map(int, headings)) == total - int(outside[1])
        assert summary.count("gets no upstream patches") == 1

    def test_gke_summary_says_kube_proxy_stays(self, planned: dict[str, Path]) -> None:
        assert "GKE keeps its own kube-proxy" in (planned["prod"] / "summary.md").read_text()

    def test_plans_are_deterministic(self, planned: dict[str, Path], tmp_path: Path) -> None:
        assert run_plan("staging", tmp_path) == 0
        assert (tmp_path / "resources.json").read_text() == (
            planned["staging"] / "resources.json"
        ).read_text()


def staging_with(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text()))
    change(document["config"]["meshless:clusters"][0])
    return document


class TestGateBlocksBadStacks:
    """A staging config that breaks a mandatory rule plans, but `make plan` exits 1."""

    @pytest.mark.parametrize(
        ("label", "change", "policy"),
        [
            (
                "tag-only-image",
                lambda c: c["cilium"].update(
                    imageOverrides={
                        "envoy": {"repository": "quay.io/cilium/cilium-envoy", "tag": "v1.34.12"}
                    }
                ),
                "cilium-images-digest-pinned",
            ),
            (
                "kpr-strict",
                lambda c: c["cilium"].update(kubeProxyReplacement="strict"),
                "kube-proxy-replacement-strict",
            ),
            (
                "kube-proxy-addon",
                lambda c: c.update(addons=[{"name": "kube-proxy"}]),
                "eks-no-conflicting-addons",
            ),
        ],
    )
    def test_exit_1_naming_the_policy(
        self, tmp_path: Path, label: str, change: Any, policy: str
    ) -> None:
        stack_file = tmp_path / "Pulumi.staging.yaml"
        stack_file.write_text(yaml.safe_dump(staging_with(change)))
        out = tmp_path / "out"
        assert run_plan("staging", out, stack_file) == 1
        report = json.loads((out / "policy-report.json").read_text())
        mandatory = {v["policy"] for v in report["violations"] if v["enforcement"] == "mandatory"}
        assert policy in mandatory, report["violations"]
        summary = (out / "summary.md").read_text()
        assert summary.startswith("❌") and policy in summary


class TestCompare:
    """--compare shows what a pull request changes against the base plan."""

    def test_changed_cilium_value(self, planned: dict[str, Path], tmp_path: Path) -> None:
        stack_file = tmp_path / "Pulumi.staging.yaml"
        stack_file.write_text(
            yaml.safe_dump(staging_with(lambda c: c["cilium"].update(hubble={"ui": False})))
        )
        out = tmp_path / "out"
        assert run_plan("staging", out, stack_file, compare=planned["staging"]) == 0
        summary = (out / "summary.md").read_text()
        assert "values.hubble.ui.enabled" in summary

    def test_compares_with_compare_not_with_upgrade_from(
        self, planned: dict[str, Path], tmp_path: Path
    ) -> None:
        """The plan reads --compare's export once and hands it to the diff; with
        --upgrade-from naming another plan, the diff is still against --compare's."""
        out = tmp_path / "out"
        assert run_plan("prod", out, compare=planned["prod"], upgrade_from=planned["staging"]) == 0
        assert "No changes against the base plan." in (out / "summary.md").read_text()
        again = tmp_path / "again"
        assert (
            run_plan("prod", again, compare=planned["staging"], upgrade_from=planned["prod"]) == 0
        )
        assert "No changes against the base plan." not in (again / "summary.md").read_text()


class TestGatewayApi:
    """Gateway API is opt-in, and its pinned CRDs exist before Cilium starts."""

    def test_crds_installed_before_the_release(self, tmp_path: Path) -> None:
        stack_file = tmp_path / "Pulumi.staging.yaml"
        stack_file.write_text(
            yaml.safe_dump(staging_with(lambda c: c["cilium"].update(gatewayApi=True)))
        )
        out = tmp_path / "out"
        assert run_plan("staging", out, stack_file) == 0
        items = resources(out)
        crds = {
            r["urn"]: r["inputs"]["file"] for r in of_type(items, "kubernetes:yaml/v2:ConfigFile")
        }
        assert len(crds) == 6
        assert all("/gateway-api/v1.1.0/" in url for url in crds.values())
        release = next(
            r for r in of_type(items, "kubernetes:helm.sh/v3:Release") if "stg-eks" in r["urn"]
        )
        assert set(crds) <= set(release["dependencies"])
        assert release["inputs"]["values"]["gatewayAPI"]["enabled"] is True


class TestGkeModesAndScale:
    """Both GKE modes plan and pass the gate; the seed's 127-service migration plans on prod."""

    def test_both_gke_modes_plan_clean(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        assert run_plan("staging", out, REPO / "tests" / "fixtures" / "gke-modes.yaml") == 0
        items = resources(out)
        clusters = {r["inputs"]["name"]: r for r in of_type(items, "gcp:container/cluster:Cluster")}
        assert clusters["modes-dpv2"]["inputs"]["datapathProvider"] == "ADVANCED_DATAPATH"
        assert set(StackExport(items).releases()) == {"modes-cilium"}
        assert "Google runs Cilium without kube-proxy" in (out / "summary.md").read_text()

    def test_prod_with_127_generated_services(
        self, tmp_path: Path, repo_tmp: Path, service_generator: ModuleType
    ) -> None:
        folder = repo_tmp / "services"
        service_generator.write(127, folder)
        document = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
        for cluster in document["config"]["meshless:clusters"]:
            cluster["trafficPolicies"] = folder.relative_to(REPO).as_posix()
        stack_file = tmp_path / "Pulumi.prod.yaml"
        stack_file.write_text(yaml.safe_dump(document))
        out = tmp_path / "out"
        assert run_plan("prod", out, stack_file) == 0, (out / "summary.md").read_text()[:2000]
        assert (
            len(of_type(resources(out), "kubernetes:cilium.io/v2:CiliumNetworkPolicy")) >= 2 * 127
        )
        graph = (out / "graph.mmd").read_text()
        counts = re.findall(r'\["team-\d+<br/>(\d+) services"\]', graph)
        # cloudIdentity renders per cloud (metadata server on GKE, STS on EKS), so the two
        # clusters' policies differ and each cluster gets its own picture.
        assert sum(map(int, counts)) == 2 * 127 and "svc_team" not in graph


PROTECTED_TYPES = {
    "aws:eks/cluster:Cluster",
    "aws:eks/nodeGroup:NodeGroup",
    "aws:kms/key:Key",
    "gcp:container/cluster:Cluster",
    "gcp:container/nodePool:NodePool",
    "gcp:kms/cryptoKey:CryptoKey",
    "kubernetes:helm.sh/v3:Release",
}


class TestProtection:
    """Prod's clusters, nodes, keys and Cilium cannot be deleted by a mistaken change."""

    def test_prod_protects_what_must_not_be_deleted(self, planned: dict[str, Path]) -> None:
        items = resources(planned["prod"])
        protected = {r["urn"] for r in items if r.get("protect") is True}
        listed = [r for r in items if r["type"] in PROTECTED_TYPES]
        assert {r["type"] for r in listed} == PROTECTED_TYPES  # both clouds are in prod
        assert [r["urn"] for r in listed if r["urn"] not in protected] == []
        # Only those: a protected VPC or IAM role would just make teardown harder.
        assert {r["type"] for r in items if r["urn"] in protected} == PROTECTED_TYPES
        retained = [r["type"] for r in items if r.get("retainOnDelete")]
        assert retained == ["kubernetes:helm.sh/v3:Release"] * 2

    def test_staging_protects_nothing(self, planned: dict[str, Path]) -> None:
        items = resources(planned["staging"])
        assert [r["urn"] for r in items if "protect" in r or "retainOnDelete" in r] == []

    def test_prod_with_protection_lifted_is_blocked(self, tmp_path: Path) -> None:
        document = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
        eks = next(c for c in document["config"]["meshless:clusters"] if c["cloud"] == "eks")
        document["config"]["meshless:clusters"] = [{**eks, "protect": False}]
        document["config"]["meshless:deployer"]["reaches"] = [eks["name"]]
        stack_file = tmp_path / "Pulumi.prod.yaml"
        stack_file.write_text(yaml.safe_dump(document))
        out = tmp_path / "out"
        assert run_plan("prod", out, stack_file) == 1
        report = json.loads((out / "policy-report.json").read_text())
        flagged = {v["urn"].rsplit("::", 1)[-1] for v in report["violations"]}
        assert {v["policy"] for v in report["violations"]} == {"prod-resources-protected"}
        assert flagged == {
            "prod-eks-use1-cluster",
            "prod-eks-use1-general",
            "prod-eks-use1-system",
            "prod-eks-use1-secrets-key",
            "prod-eks-use1-cilium-release",
        }


class TestCreationPhases:
    """summary.md shows the rehearsal's creation order: on EKS Cilium before the node groups."""

    @pytest.mark.parametrize("stack", STACKS)
    def test_summary_lists_phases_per_cluster(self, planned: dict[str, Path], stack: str) -> None:
        summary = (planned[stack] / "summary.md").read_text()
        section = summary.split("## Creation order (deploy rehearsal)", 1)[1]
        eks = section.split("**", 2)[2].split("**")[0]
        assert eks.index("(no wait)") < eks.index("NodeGroup") < eks.index("coredns")


class TestHubbleTls:
    """Hubble's certificates come from the program: no hook Job, no diff between previews."""

    @pytest.mark.parametrize("stack", STACKS)
    def test_release_uses_program_made_secrets(self, planned: dict[str, Path], stack: str) -> None:
        items = resources(planned[stack])
        secrets = {r["urn"]: r for r in of_type(items, "kubernetes:core/v1:Secret")}
        for release in of_type(items, "kubernetes:helm.sh/v3:Release"):
            tls = release["inputs"]["values"]["hubble"]["tls"]
            assert tls["auto"] == {"enabled": False}
            mine = {
                secrets[urn]["inputs"]["metadata"]["name"]
                for urn in release["dependencies"]
                if urn in secrets
                and secrets[urn]["provider"] == release["provider"]  # same cluster
            }
            assert mine == {"hubble-server-certs", "hubble-relay-client-certs"}, release["urn"]
        for secret in secrets.values():
            assert secret["inputs"]["type"] == "kubernetes.io/tls"
            assert secret["inputs"]["stringData"]["ciphertext"] == "[secret]"
        keys = of_type(items, "tls:index/privateKey:PrivateKey")
        assert keys and all(k["outputs"]["privateKeyPem"]["ciphertext"] == "[secret]" for k in keys)
