"""Expected flows beside the traffic policies: the shop's hold on every cluster, a changed rule
breaks the named flow with the deciding rule in the message, the flows file reports mistakes
at file:line, the platform switches render what each cloud needs, and `meshless flows`
answers one question.
"""

from __future__ import annotations

import copy
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_network_policy import schema_errors
from typer.testing import CliRunner

from components.eks import EksAddon
from components.flows.check import FlowResult, check_flows
from components.flows.spec import load_flows
from components.network_policy import render_policies
from components.platform import Platform, platform_for
from components.traffic import TrafficPolicyError, load_policy_folder
from infra import plan as offline
from infra.cli import app
from infra.config import ConfigError
from infra.plan import read_stack_file
from infra.program import StackPlan, load

REPO = Path(__file__).resolve().parents[1]
SHOP = REPO / "traffic" / "shop"
GKE = Platform("gke", "us-central1")
EKS = Platform("eks", "us-west-2")
EKS_POD_IDENTITY = Platform("eks", "us-west-2", pod_identity_agent=True)


def stack(name: str) -> StackPlan:
    return load(read_stack_file(REPO / f"Pulumi.{name}.yaml"))


def shop_results(platform: Platform, mutate: Any = None) -> dict[str, FlowResult]:
    policies = load_policy_folder(SHOP)
    objects = render_policies(policies, platform)
    if mutate is not None:
        objects = copy.deepcopy(objects)
        mutate({f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in objects})
    flows = load_flows(SHOP / "flows.yaml", policies, platform)
    return {r.expected.name: r for r in check_flows("test", objects, flows)}


class TestShopFlowsHold:
    """`make plan` fails unless the shop's expected flows hold on every cluster."""

    @pytest.mark.parametrize("name", ["staging", "prod"])
    def test_every_cluster_of_the_stack(self, name: str) -> None:
        plan = stack(name)
        assert set(plan.flows) == {c.name for c in plan.config.clusters}
        for cluster in plan.config.clusters:
            objects = render_policies(plan.policies[cluster.name], platform_for(cluster))
            results = check_flows(cluster.name, objects, plan.flows[cluster.name])
            assert [r.message for r in results if not r.ok] == []
            assert sum(not r.expected.allow for r in results) >= 10  # denials are tested too

    def test_pod_identity_cluster_too(self) -> None:
        results = shop_results(EKS_POD_IDENTITY)
        assert [r.message for r in results.values() if not r.ok] == []
        names = [r.verdict.flow.destination.name for r in results.values()]
        assert "EKS Pod Identity agent 169.254.170.23" in names


class TestAChangedRuleBreaksTheNamedFlow:
    """The point of flows: a policy edit that breaks a real call fails the plan, saying where."""

    def test_dropping_a_grpc_method(self) -> None:
        def drop_refund(cnps: dict[str, Any]) -> None:
            rules = cnps["shop/payments"]["spec"]["ingress"][0]["toPorts"][0]["rules"]["http"]
            rules[:] = [r for r in rules if "Refund" not in r["path"]]

        results = shop_results(GKE, drop_refund)
        failed = [r for r in results.values() if not r.ok]
        assert [r.expected.name for r in failed] == ["checkout refunds a payment"]
        message = failed[0].message
        assert message.startswith("traffic/shop/flows.yaml:")
        assert (
            'flow "checkout refunds a payment": expected allow, but the policies deny it' in message
        )
        assert (
            "L7 rules of CiliumNetworkPolicy shop/payments (traffic/shop/payments.yaml) "
            "spec.ingress[0].toPorts[0]" in message
        )

    def test_opening_payments_to_the_cluster(self) -> None:
        def open_payments(cnps: dict[str, Any]) -> None:
            cnps["shop/payments"]["spec"]["ingress"].append({"fromEntities": ["cluster"]})
            cnps["shop/frontend"]["spec"]["egress"].append({"toEntities": ["cluster"]})

        failed = [r for r in shop_results(GKE, open_payments).values() if not r.ok]
        names = {r.expected.name for r in failed}
        assert "the frontend never reaches payments" in names
        assert "an undeclared payments method is refused" in names  # L3 rule voids the L7 one
        message = next(
            r.message for r in failed if r.expected.name == "the frontend never reaches payments"
        )
        assert "expected deny, but the policies allow it" in message
        assert (
            "CiliumNetworkPolicy shop/payments (traffic/shop/payments.yaml) spec.ingress[2]"
            in message
        )

    def test_metadata_server_by_host_entity(self) -> None:
        """The mistake of Smana/runlore#562, caught before a deploy."""

        def host_entity(cnps: dict[str, Any]) -> None:
            for rule in cnps["shop/payments"]["spec"]["egress"]:
                if rule.get("toCIDR") == ["169.254.169.254/32"]:
                    del rule["toCIDR"]
                    rule["toEntities"] = ["host"]

        failed = {r.expected.name: r for r in shop_results(GKE, host_entity).values() if not r.ok}
        assert set(failed) == {
            "payments gets cloud credentials (workload identity)",
            "the GKE metadata server is not the host entity",
        }
        assert (
            "default deny at egress of shop/payments"
            in failed["the GKE metadata server is not the host entity"].message
        )


class TestPlatformRules:
    """cloudIdentity / kubeApiserver render exactly what the cluster's cloud needs."""

    def egress(
        self, platform: Platform | None, tmp_path: Path, **switches: bool
    ) -> list[dict[str, Any]]:
        flags = "".join(f"\n    {k}: {str(v).lower()}" for k, v in switches.items())
        (tmp_path / "ctl.yaml").write_text(
            f"services:\n  - name: ctl\n    namespace: ops{flags}\n", encoding="utf-8"
        )
        objects = render_policies(load_policy_folder(tmp_path, root=tmp_path), platform)
        for obj in objects:
            assert schema_errors(obj) == [], obj
        return next(o for o in objects if o["metadata"]["name"] == "ctl")["spec"]["egress"]

    def test_gke_metadata_server_by_cidr(self, tmp_path: Path) -> None:
        egress = self.egress(GKE, tmp_path, cloudIdentity=True)
        assert egress == [
            {
                "toCIDR": ["169.254.169.254/32"],
                "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}],
            }
        ]

    def test_eks_irsa_is_sts_by_name_with_its_lookup(self, tmp_path: Path) -> None:
        egress = self.egress(EKS, tmp_path, cloudIdentity=True)
        assert egress[0] == {
            "toFQDNs": [{"matchName": "sts.us-west-2.amazonaws.com"}],
            "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
        }
        assert egress[1]["toPorts"][0]["rules"] == {
            "dns": [{"matchName": "sts.us-west-2.amazonaws.com"}]
        }
        assert len(egress) == 2

    def test_eks_pod_identity_agent_by_host_entity(self, tmp_path: Path) -> None:
        egress = self.egress(EKS_POD_IDENTITY, tmp_path, cloudIdentity=True)
        assert {
            "toEntities": ["host"],
            "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}],
        } in egress

    def test_kube_apiserver_for_controllers(self, tmp_path: Path) -> None:
        egress = self.egress(None, tmp_path, kubeApiserver=True)
        assert egress == [
            {
                "toEntities": ["kube-apiserver"],
                "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
            }
        ]

    def test_pod_identity_comes_from_the_addon(self) -> None:
        plan = stack("staging")
        eks = next(c for c in plan.config.clusters if c.cloud == "eks")
        assert platform_for(eks) == Platform("eks", "us-west-2", pod_identity_agent=False)
        with_addon = eks.model_copy(update={"addons": [EksAddon(name="eks-pod-identity-agent")]})
        assert platform_for(with_addon).pod_identity_agent


def flows_folder(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "shop"
    shutil.copytree(SHOP, folder, ignore=shutil.ignore_patterns("flows.yaml"))
    (folder / "flows.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


class TestFlowsFileMistakes:
    """A wrong flows file stops the plan (exit 2) with file:line: field: message."""

    def problems(self, tmp_path: Path, text: str) -> list[str]:
        folder = flows_folder(tmp_path, text)
        policies = load_policy_folder(folder, root=tmp_path)
        with pytest.raises(TrafficPolicyError) as caught:
            load_flows(folder / "flows.yaml", policies, GKE, root=tmp_path)
        return caught.value.problems

    def test_each_mistake_at_its_line(self, tmp_path: Path) -> None:
        problems = self.problems(
            tmp_path,
            """\
            namespace: shop
            flows:
              - from: {service: frontend}
                to: {service: payment}
                port: 9090
                expect: deny
              - from: {service: checkout}
                to: {service: payments}
                port: rpc
                expect: allow
              - from: {service: checkout}
                to: {ip: 10.0.0.300}
                port: 80
                expect: maybe
            """,
        )
        assert problems[0].startswith(
            "shop/flows.yaml:12: flows[2].to.ip: '10.0.0.300' is not an IP address"
        )
        assert problems[1].startswith("shop/flows.yaml:14: flows[2].expect:")
        second = self.problems(
            tmp_path / "b",
            """\
            namespace: shop
            flows:
              - from: {service: frontend}
                to: {service: payment}
                port: 9090
                expect: deny
              - from: {service: checkout}
                to: {service: payments}
                port: rpc
                expect: allow
            """,
        )
        assert second == [
            "shop/flows.yaml:4: flows[0].to.service: shop/payment is not a service in shop "
            "(did you mean 'payments'?); use labels + namespace for workloads without a policy file",
            "shop/flows.yaml:9: flows[1].port: no port named 'rpc' (named ports: grpc, metrics); use a number",
        ]

    def test_shape_rules(self, tmp_path: Path) -> None:
        problems = self.problems(
            tmp_path,
            """\
            flows:
              - from: {service: frontend, entity: host}
                to: {fqdn: api.stripe.com}
                port: 443
                expect: deny
              - from: {service: frontend, namespace: shop}
                to: {platform: cloud-identity}
                port: 80
                expect: deny
              - from: {service: frontend, namespace: shop}
                to: {service: checkout, namespace: shop}
                expect: allow
                colour: red
            """,
        )
        assert problems == [
            "shop/flows.yaml:2: flows[0].from.entity: give exactly one of service, labels, "
            "entity, ip, fqdn, platform (got service and entity)",
            "shop/flows.yaml:8: flows[1].port: the platform end brings its own ports; remove port",
            "shop/flows.yaml:13: flows[2].colour: unknown field; did you mean 'clouds'? allowed "
            "here: name, from, to, port, protocol, http, grpc, expect, clouds",
        ]

    def test_the_plan_refuses_it_with_exit_2(self, tmp_path: Path) -> None:
        folder = flows_folder(tmp_path, "flows: []\n")
        values = read_stack_file(REPO / "Pulumi.staging.yaml")
        values = {
            k: v.replace('"trafficPolicies": "traffic/shop"', f'"trafficPolicies": "{folder.name}"')
            for k, v in values.items()
        }
        with pytest.raises(ConfigError) as caught:
            load(values, root=tmp_path)
        assert caught.value.problems == [
            "shop/flows.yaml:1: flows: must not be empty; add at least one entry"
        ]


class TestFlowsCommand:
    """`meshless flows` answers one question per cluster, exit 0 allowed / 1 denied / 2 bad input."""

    def run(self, *args: str) -> Any:
        return CliRunner().invoke(
            app, ["flows", "--stack", "staging", *args], env={"COLUMNS": "300"}
        )

    def test_allowed(self) -> None:
        result = self.run(
            "--from", "checkout", "--to", "payments", "--port", "grpc",
            "--grpc", "shop.payments.v1.Payments/Capture", "--cluster", "stg-gke-usc1",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "ALLOWED" in result.output
        assert "spec.ingress[0].toPorts[0].rules.http[1]" in result.output

    def test_denied_names_the_rule(self) -> None:
        result = self.run("--from", "frontend", "--to", "payments", "--port", "9090")
        assert result.exit_code == 1
        assert result.output.count("/TCP: DENIED") == 2  # both clusters
        assert "default deny at egress of shop/frontend" in result.output

    def test_platform_differs_per_cloud(self) -> None:
        result = self.run("--from", "payments", "--to", "platform:cloud-identity")
        assert result.exit_code == 0, result.output
        assert "sts.us-west-2.amazonaws.com:443/TCP: ALLOWED" in result.output
        assert "169.254.169.254:80/TCP: ALLOWED" in result.output

    def test_bad_input_exits_2(self) -> None:
        result = self.run("--from", "nosuch", "--to", "payments", "--port", "9090")
        assert result.exit_code == 2
        assert "error: from.service: shop/nosuch is not a service" in result.output


class TestPlanChecksFlows:
    """`meshless plan` (and so `make plan`) exits 1 when an expected flow does not hold."""

    def test_a_wrong_expectation_blocks_the_plan(self, tmp_path: Path, repo_tmp: Path) -> None:
        text = (SHOP / "flows.yaml").read_text(encoding="utf-8")
        flipped = text.replace(
            "  - name: the frontend never reaches payments\n"
            "    from: {service: frontend}\n"
            "    to: {service: payments}\n"
            "    port: grpc\n"
            "    grpc: {service: shop.payments.v1.Payments, method: Authorize}\n"
            "    expect: deny\n",
            "  - name: the frontend never reaches payments\n"
            "    from: {service: frontend}\n"
            "    to: {service: payments}\n"
            "    port: grpc\n"
            "    grpc: {service: shop.payments.v1.Payments, method: Authorize}\n"
            "    expect: allow\n",
        )
        assert flipped != text
        # trafficPolicies must lie inside the repository: the scratch folder is under out/.
        folder = flows_folder(repo_tmp, flipped)
        document = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
        for cluster in document["config"]["meshless:clusters"]:
            cluster["trafficPolicies"] = folder.relative_to(REPO).as_posix()
        stack_file = tmp_path / "Pulumi.staging.yaml"
        stack_file.write_text(yaml.safe_dump(document))
        out = tmp_path / "out"
        assert offline.run("staging", stack_file=stack_file, out_dir=out) == 1
        report = json.loads((out / "flows-report.json").read_text())
        failed = [r for r in report if not r["ok"]]
        assert [r["cluster"] for r in failed] == ["stg-eks-usw2", "stg-gke-usc1"]
        assert (
            'flow "the frontend never reaches payments": expected allow, but the policies deny it'
            in failed[0]["message"]
        )
        assert "default deny at egress of shop/frontend" in failed[0]["message"]
        summary = (out / "summary.md").read_text()
        assert "❌ **2 expected flow(s) not as expected**" in summary.splitlines()[2]
        assert json.loads((out / "policy-report.json").read_text())["mandatory"] == 0
