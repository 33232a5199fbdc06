"""The traffic-policy format: what users write, and the problems they are told about.

Pure tests (no Pulumi runtime): files go into a temporary folder and through
``load_policy_folder`` exactly as the program loads a cluster's ``trafficPolicies``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from components.traffic import (
    PolicySet,
    PortSpec,
    TrafficPolicyError,
    check_re2,
    grpc_path,
    literal_regex,
    load_policy_folder,
)

REPO = Path(__file__).resolve().parents[1]

CHECKOUT = """\
services:
  - name: checkout
    namespace: shop
    ports:
      - {name: http, port: 8080}
    ingress:
      - from:
          - service: frontend
        ports: [http]
        http:
          - method: GET
            path: /api/v1/orders
"""
FRONTEND = """\
services:
  - name: frontend
    namespace: shop
    ports:
      - {name: http, port: 8080}
    ingress:
      - from: [{entity: ingress}]
        ports: [http]
"""


def load(tmp_path: Path, **files: str) -> PolicySet:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return load_policy_folder(tmp_path, root=tmp_path)


def problems(tmp_path: Path, **files: str) -> list[str]:
    with pytest.raises(TrafficPolicyError) as caught:
        load(tmp_path, **files)
    return caught.value.problems


def shop(checkout_rule: str = "", frontend_extra: str = "") -> dict[str, str]:
    """The two-service shop with extra YAML appended to checkout's first ingress rule."""
    return {"checkout": CHECKOUT + checkout_rule, "frontend": FRONTEND + frontend_extra}


class TestShopExamples:
    """The repo's example policies (used by the staging and prod stacks) load cleanly."""

    def test_loads_without_warnings(self) -> None:
        policies = load_policy_folder(REPO / "traffic" / "shop")
        assert [s.name for s in policies.services] == ["checkout", "frontend", "payments"]
        assert policies.warnings == []
        assert policies.namespaces == {"shop"}
        assert policies.has_l7 and not policies.needs_mutual_auth
        assert policies.sources[("shop", "payments")] == "traffic/shop/payments.yaml"

    def test_calls_follow_the_shop(self) -> None:
        policies = load_policy_folder(REPO / "traffic" / "shop")
        assert dict(policies.calls) == {
            (("shop", "checkout"), ("shop", "payments")): (PortSpec(9090),),
            (("shop", "frontend"), ("shop", "checkout")): (PortSpec(8080),),
        }


class TestErrorsPointAtFileLineAndField:
    """A mistake is reported as `file:line: field: message`, every mistake at once."""

    def test_bad_regex(self, tmp_path: Path) -> None:
        rule = "          - pathRegex: /api/(v1\n"
        found = problems(tmp_path, **shop(rule))
        assert len(found) == 1
        assert found[0].startswith(
            "checkout.yaml:13: services[0].ingress[0].http[1].pathRegex: invalid regular "
            "expression: missing ): /api/(v1"
        )

    @pytest.mark.parametrize(
        ("pattern", "reason"),
        [
            ("/a(?=b)", "lookahead"),
            ("/(a)\\1", "backreferences"),
            ("/a\\Z", "\\\\Z"),
            ("/a{2000}", "up to 1000"),
            ("(?x)/a b", "inline flag x"),
            ("/a(?<=b)", "lookbehind"),
            ("/(?P<n>a)(?P=n)", "invalid perl operator"),
            ("/a++", "possessive"),
        ],
    )
    def test_regex_outside_re2(self, tmp_path: Path, pattern: str, reason: str) -> None:
        rule = f"          - pathRegex: '{pattern}'\n"
        found = problems(tmp_path, **shop(rule))
        assert re.search(reason, found[0]), found
        assert "pathRegex" in found[0]

    @pytest.mark.parametrize(
        "pattern", ["/\\p{L}+", "/v\\pN", "/\\Q..\\E/x", "/a{2,1000}", "/\\(?=x"]
    )
    def test_regex_re2_accepts(self, tmp_path: Path, pattern: str) -> None:
        """RE2 syntax Python's re lacks (Unicode classes, \\Q..\\E) is valid for Cilium."""
        rule = f"          - pathRegex: '{pattern}'\n"
        policies = load(tmp_path, **shop(rule))
        assert pattern in policies.services[0].ingress[0].http[1].path_regexes

    def test_unknown_key_suggests(self, tmp_path: Path) -> None:
        found = problems(tmp_path, **shop("          - pathRegx: /a\n"))
        assert found == [
            "checkout.yaml:13: services[0].ingress[0].http[1].pathRegx: unknown field; did you "
            "mean 'pathRegex'? allowed here: method, path, pathPrefix, pathRegex, host, headers"
        ]

    def test_duplicate_key(self, tmp_path: Path) -> None:
        text = CHECKOUT.replace("    ports:\n", "    namespace: shop\n    ports:\n", 1)
        found = problems(tmp_path, checkout=text, frontend=FRONTEND)
        assert found == [
            "checkout.yaml:4: namespace: duplicate key (first at line 3); merge the two"
        ]

    def test_yaml_syntax(self, tmp_path: Path) -> None:
        found = problems(tmp_path, checkout="services:\n  - name: [oops\n", frontend=FRONTEND)
        assert found[0].startswith("checkout.yaml:3: not valid YAML")

    def test_several_problems_at_once(self, tmp_path: Path) -> None:
        text = CHECKOUT.replace("method: GET", "method: get").replace("port: 8080", "port: 0")
        found = problems(tmp_path, checkout=text, frontend=FRONTEND + "    colour: blue\n")
        assert found == [
            "checkout.yaml:5: services[0].ports[0].port: Input should be greater than or equal "
            "to 1 (got 0)",
            "checkout.yaml:11: services[0].ingress[0].http[0].method: 'get' is not a valid "
            "HTTP method (uppercase, case-sensitive); write it like GET",
            "frontend.yaml:9: services[0].colour: unknown field; allowed here: name, namespace, "
            "description, selector, ports, ingress, egress, cloudIdentity, kubeApiserver",
        ]

    def test_missing_and_empty(self, tmp_path: Path) -> None:
        found = problems(tmp_path, a="services:\n  - name: a\n", b="", c="services: []\n")
        assert found == [
            "a.yaml:2: services[0].namespace: required but missing; add it",
            "b.yaml: empty file; add `services:` with at least one service, or delete it",
            "c.yaml:1: services: must not be empty; add at least one entry",
        ]

    def test_no_files(self, tmp_path: Path) -> None:
        with pytest.raises(TrafficPolicyError, match=r"no \*\.yaml or \*\.yml policy files"):
            load_policy_folder(tmp_path, root=tmp_path)

    def test_peer_needs_exactly_one_kind(self, tmp_path: Path) -> None:
        text = CHECKOUT.replace("- service: frontend", "- {service: frontend, entity: world}")
        found = problems(tmp_path, checkout=text, frontend=FRONTEND)
        assert found == [
            "checkout.yaml:8: services[0].ingress[0].from[0].entity: give one of service and "
            "entity per entry; list them as separate entries"
        ]

    def test_path_with_star_points_to_prefix(self, tmp_path: Path) -> None:
        found = problems(tmp_path, **shop("          - path: /api/*\n"))
        assert "use pathPrefix: '/api/'" in found[0]

    def test_one_path_kind_per_rule(self, tmp_path: Path) -> None:
        found = problems(tmp_path, **shop("          - {path: /a, pathPrefix: /b}\n"))
        assert found[0].startswith(
            "checkout.yaml:13: services[0].ingress[0].http[1].pathPrefix: give one of path, "
            "pathPrefix and pathRegex"
        )

    def test_duplicate_service_across_files(self, tmp_path: Path) -> None:
        found = problems(tmp_path, checkout=CHECKOUT, copy=CHECKOUT, frontend=FRONTEND)
        assert found == [
            "copy.yaml:2: services[0].name: shop/checkout is already declared in checkout.yaml; "
            "one policy per service (merge them)"
        ]


class TestLiteralPaths:
    """Literal paths become regexes that match exactly them and stay readable."""

    def test_readable(self) -> None:
        assert literal_regex("/api/v1/orders") == "/api/v1/orders"
        assert literal_regex("/api/v1/order-items") == "/api/v1/order-items"
        assert literal_regex("/files/a.b+c(1)") == "/files/a\\.b\\+c\\(1\\)"
        assert grpc_path("shop.payments.v1.Payments", "Charge") == (
            "/shop\\.payments\\.v1\\.Payments/Charge"
        )
        assert grpc_path("a.B", None) == "/a\\.B/[^/]+"

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=1))
    def test_matches_exactly_itself(self, text: str) -> None:
        pattern = literal_regex(text)
        assert check_re2(pattern) is None
        assert re.fullmatch(pattern, text)
        assert not re.fullmatch(pattern, text + "x")

    def test_path_allows_query_string_only(self, tmp_path: Path) -> None:
        policies = load(tmp_path, **shop())
        pattern = policies.services[0].ingress[0].http[0].path_regexes[0]
        assert pattern == "/api/v1/orders(\\?.*)?"
        assert re.fullmatch(pattern, "/api/v1/orders?page=2")
        assert not re.fullmatch(pattern, "/api/v1/orders/7")
        assert not re.fullmatch(pattern, "/api/v1/ordersX")


class TestCallers:
    """Callers that do not exist: errors where the call can never work, else warnings."""

    def test_unknown_caller_in_a_managed_namespace(self, tmp_path: Path) -> None:
        found = problems(tmp_path, checkout=CHECKOUT.replace("frontend", "frontnd"), f=FRONTEND)
        assert found == [
            "checkout.yaml:8: services[0].ingress[0].from[0].service: unknown caller "
            "shop/frontnd (did you mean 'frontend'?): namespace shop has policies here, so it is "
            "under default deny and an undeclared workload there can never make or take this "
            "call; fix the name or add its policy file"
        ]

    def test_unknown_caller_elsewhere_is_a_warning(self, tmp_path: Path) -> None:
        text = CHECKOUT.replace("- service: frontend", "- {service: web, namespace: edge}")
        policies = load(tmp_path, checkout=text, frontend=FRONTEND)
        assert policies.warnings == [
            "checkout.yaml:8: services[0].ingress[0].from[0].service: caller edge/web is not "
            "declared in .; the rule allows pods labelled app=web in edge. Check the name"
        ]

    def test_labels_matching_no_declared_service(self, tmp_path: Path) -> None:
        text = CHECKOUT.replace("- service: frontend", "- labels: {tier: web}")
        policies = load(tmp_path, checkout=text, frontend=FRONTEND)
        assert len(policies.warnings) == 1
        assert "no service declared in shop has pods with these labels" in policies.warnings[0]

    def test_callers_by_namespace_and_labels_derive_egress(self, tmp_path: Path) -> None:
        text = CHECKOUT.replace(
            "- service: frontend", "- namespace: shop\n          - labels: {app: frontend}"
        )
        policies = load(tmp_path, checkout=text, frontend=FRONTEND)
        assert set(policies.calls) == {
            (("shop", "checkout"), ("shop", "checkout")),
            (("shop", "frontend"), ("shop", "checkout")),
        }


class TestPorts:
    """Rules on ports: names must exist, undeclared ports warn, L7 needs a TCP port."""

    def test_unknown_port_name(self, tmp_path: Path) -> None:
        found = problems(tmp_path, checkout=CHECKOUT.replace("[http]", "[htp]"), f=FRONTEND)
        assert found == [
            "checkout.yaml:9: services[0].ingress[0].ports[0]: checkout declares no port named "
            "'htp' (named ports: http); add it to ports or use the number"
        ]

    def test_port_not_exposed(self, tmp_path: Path) -> None:
        policies = load(tmp_path, checkout=CHECKOUT.replace("[http]", "[8081]"), f=FRONTEND)
        assert policies.warnings == [
            "checkout.yaml:9: services[0].ingress[0].ports: shop/checkout does not expose "
            "8081/TCP (declared: 8080/TCP); nothing listens there, or add the port to its `ports`"
        ]

    def test_http_on_udp(self, tmp_path: Path) -> None:
        text = CHECKOUT.replace("port: 8080}", "port: 8080, protocol: UDP}")
        found = problems(tmp_path, checkout=text, frontend=FRONTEND)
        assert "HTTP/gRPC rules only work on TCP ports, not 8080/UDP" in found[0]

    def test_l7_needs_a_port(self, tmp_path: Path) -> None:
        text = CHECKOUT.replace("    ports:\n      - {name: http, port: 8080}\n", "")
        text = text.replace("        ports: [http]\n", "")
        found = problems(tmp_path, checkout=text, frontend=FRONTEND)
        assert found == [
            "checkout.yaml:5: services[0].ingress[0].ports: HTTP/gRPC rules need a port; add "
            "`ports` to the rule (or declare the service's ports)"
        ]

    def test_port_forms(self, tmp_path: Path) -> None:
        dns = """\
        services:
          - name: dns
            namespace: shop
            ports:
              - {name: dns, port: 53, protocol: UDP}
              - {port: 8080}
              - {port: 9000}
            ingress:
              - from: [{service: frontend}]
                ports: [dns, 8080, 9000-9010/tcp]
        """
        policies = load(tmp_path, dns=dns, frontend=FRONTEND)
        assert policies.calls[(("shop", "frontend"), ("shop", "dns"))] == (
            PortSpec(53, "UDP"),
            PortSpec(8080),
            PortSpec(9000, "TCP", 9010),
        )
        assert policies.warnings == []


class TestConflicts:
    """Contradicting intent among rules that select the same pods is reported."""

    def test_open_and_restricted_policies_for_the_same_pods(self, tmp_path: Path) -> None:
        legacy = """\
        services:
          - name: checkout-legacy
            namespace: shop
            selector: {app: checkout}
            ports: [{port: 8080}]
            ingress:
              - from: [{entity: cluster}]
        """
        policies = load(tmp_path, legacy=legacy, **shop())
        assert policies.warnings == [
            "legacy.yaml:4: services[0].selector: selects the same pods as shop/checkout "
            "(checkout.yaml:2); Cilium applies both policies' rules to them, so each may allow "
            "what the other meant to forbid",
            "checkout.yaml:7: services[0].ingress[0].from: restricts callers on 8080/TCP, but "
            "legacy.yaml:7 lets cluster in on the same port without L7 rules; Cilium unions "
            "rules, so the restriction has no effect",
        ]

    def test_l4_rule_shadows_l7_rule(self, tmp_path: Path) -> None:
        extra = "      - from: [{service: frontend}]\n        ports: [8080]\n"
        policies = load(tmp_path, **shop(extra))
        assert policies.warnings == [
            "checkout.yaml:7: services[0].ingress[0]: its L7 rules do not restrict these callers "
            "on 8080/TCP: checkout.yaml:13 allows them on that port without L7 rules, and Cilium "
            "unions rules"
        ]


class TestEgress:
    """Egress rules: callees must be able to accept, external rules that cannot work warn."""

    def test_egress_not_accepted_by_callee(self, tmp_path: Path) -> None:
        extra = "    egress:\n      - to: [{service: frontend}]\n"
        policies = load(tmp_path, checkout=CHECKOUT + extra, frontend=FRONTEND)
        assert policies.warnings == [
            "checkout.yaml:14: services[0].egress[0].to[0].service: no ingress rule of "
            "shop/frontend lets shop/checkout in, so its default deny drops this traffic; add "
            "checkout to frontend's callers (frontend.yaml)"
        ]

    def test_unknown_callee_in_managed_namespace(self, tmp_path: Path) -> None:
        extra = "    egress:\n      - to: [{service: ledger}]\n"
        found = problems(tmp_path, checkout=CHECKOUT + extra, frontend=FRONTEND)
        assert found[0].startswith(
            "checkout.yaml:14: services[0].egress[0].to[0].service: unknown callee shop/ledger"
        )

    def test_risky_external_rules_warn(self, tmp_path: Path) -> None:
        extra = """\
    egress:
      - to: [{fqdnPattern: "*"}]
        ports: [443]
        http: [{method: GET}]
      - to: [{entity: world}]
"""
        policies = load(tmp_path, checkout=CHECKOUT + extra, frontend=FRONTEND)
        assert [w.split(": ", 2)[1] for w in policies.warnings] == [
            "services[0].egress[0].to[0].fqdnPattern",
            "services[0].egress[0].http",
            "services[0].egress[1].to[0].entity",
        ]

    def test_dns_rules_need_a_server_not_a_name(self, tmp_path: Path) -> None:
        extra = """\
    egress:
      - to: [{fqdn: api.stripe.com}]
        dns: [{matchName: api.stripe.com}]
"""
        found = problems(tmp_path, checkout=CHECKOUT + extra, frontend=FRONTEND)
        assert "services[0].egress[0].dns: dns rules restrict lookups at a DNS server" in found[0]


class TestFlagsForTheProgram:
    """has_l7 and needs_mutual_auth tell the program which Cilium features a set needs."""

    def test_l3_only_set_needs_no_envoy(self, tmp_path: Path) -> None:
        text = CHECKOUT.split("        http:")[0]
        policies = load(tmp_path, checkout=text, frontend=FRONTEND)
        assert not policies.has_l7
        assert not policies.needs_mutual_auth

    def test_authentication_required(self, tmp_path: Path) -> None:
        text = CHECKOUT.replace("[http]\n", "[http]\n        authentication: required\n")
        policies = load(tmp_path, checkout=text, frontend=FRONTEND)
        assert policies.needs_mutual_auth

    def test_authentication_needs_workload_peers(self, tmp_path: Path) -> None:
        text = FRONTEND + "        authentication: required\n"
        found = problems(tmp_path, checkout=CHECKOUT, frontend=text)
        assert found == [
            "frontend.yaml:9: services[0].ingress[0].authentication: mutual authentication "
            "needs workload peers (service, namespace, labels), not entity; move those peers to "
            "a rule without authentication"
        ]

    def test_kafka_is_deprecated(self, tmp_path: Path) -> None:
        broker = """\
        services:
          - name: kafka
            namespace: shop
            ports: [{name: kafka, port: 9092}]
            ingress:
              - from: [{service: checkout}]
                kafka:
                  - {role: produce, topic: orders}
        """
        policies = load(tmp_path, broker=broker, **shop())
        assert policies.has_l7
        assert policies.warnings == [
            "broker.yaml:7: services[0].ingress[0].kafka: Kafka rules are beta in Cilium 1.16 "
            "and removed in Cilium 1.20; plan to replace them"
        ]


class TestBadPolicyStopsThePlan:
    """A bad policy file stops `meshless plan` with exit 2, naming file, line and field."""

    def test_exit_2_names_file_and_field(self, tmp_path: Path, repo_tmp: Path) -> None:
        folder = repo_tmp / "traffic"
        folder.mkdir()
        (folder / "checkout.yaml").write_text(CHECKOUT + "          - pathRegex: /a(?<=b)\n")
        (folder / "frontend.yaml").write_text(FRONTEND)
        stack = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
        for cluster in stack["config"]["meshless:clusters"]:
            cluster["trafficPolicies"] = folder.relative_to(REPO).as_posix()
        (tmp_path / "stack.yaml").write_text(yaml.safe_dump(stack))
        command = [sys.executable, "-m", "infra.cli", "plan", "--stack", "staging"]
        command += ["--stack-file", str(tmp_path / "stack.yaml"), "--out", str(tmp_path / "out")]
        done = subprocess.run(
            command,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        output = " ".join((done.stdout + done.stderr).split())
        assert (
            f"{(folder / 'checkout.yaml').relative_to(REPO)}:13: services[0].ingress[0].http[1].pathRegex: invalid "
            "regular expression: lookbehind"
        ) in output, output
        assert not (tmp_path / "out" / "resources.json").exists()

    def test_hidden_files_are_not_policies(self, tmp_path: Path) -> None:
        (tmp_path / ".git").mkdir()
        (tmp_path / ".git" / "config.yaml").write_text("not: a policy\n")
        assert [s.name for s in load(tmp_path, **shop()).services] == ["checkout", "frontend"]
