"""`meshless migrate istio`: input handling, the command and its exit codes, odd input,
and the committed example folder migrating to outputs that validate and plan cleanly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from components.network_policy import render_policies
from components.traffic import load_policy_folder
from infra.cli import app
from migrate.run import Migration, migrate, write_outputs
from migrate.schemas import cnp_errors, gateway_api_errors
from tests.migrate_support import (
    EXAMPLES,
    GATEWAY,
    REPO,
    ap,
    entry,
    gaps,
    objects,
    run,
    vs,
)


class TestInput:
    """Bad documents are named one by one; the rest still migrates."""

    def test_bad_documents_each_get_a_message(self, tmp_path: Path) -> None:
        text = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: typo, namespace: shop}
        spec: {hostz: [a]}
        ---
        apiVersion: networking.istio.io/v2
        kind: Gateway
        metadata: {name: future, namespace: shop}
        spec: {}
        ---
        kind: Gateway
        metadata: {name: noversion}
        ---
        - just a list
        ---
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: ok, namespace: edge}
        spec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}
        ---
        key: [unclosed
        """
        result = run(tmp_path, text)
        messages = [u.message for u in result.report.unreadable]
        assert len(messages) == 5
        assert messages[0].startswith(
            f"{tmp_path / 'in.yaml'} (document 1): VirtualService shop/typo:"
        )
        assert "hostz" in messages[0]
        assert "networking.istio.io/v2 is not served" in messages[1]
        assert "apiVersion and kind are required" in messages[2]
        assert "not a Kubernetes object" in messages[3]
        assert "not valid YAML" in messages[4]
        assert result.report.counts == {
            "fully": 1,
            "partly": 0,
            "not": 0,
            "unreadable": 5,
            "input": 6,
        }
        assert "gateway-api/edge/gateway-ok.yaml" in result.files

    def test_folders_are_read_recursively_and_sorted(self, tmp_path: Path) -> None:
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "gw.yml").write_text(GATEWAY.format(version="v1"))
        (tmp_path / "a.yaml").write_text(
            vs("- route: [{destination: {host: web, port: {number: 1}}}]\n")
        )
        (tmp_path / "notes.txt").write_text("not yaml")
        result = migrate([tmp_path])
        assert result.report.counts["fully"] == 2


class TestCommand:
    """Exit codes: 0 all fully migrated, 1 anything less, 2 usage; output is deterministic."""

    def invoke(self, *args: str) -> Any:
        return CliRunner().invoke(app, ["migrate", "istio", *args])

    def test_exit_0_when_everything_migrates(self, tmp_path: Path) -> None:
        (tmp_path / "in.yaml").write_text(GATEWAY.format(version="v1"))
        result = self.invoke(str(tmp_path / "in.yaml"), "--out", str(tmp_path / "out"))
        assert result.exit_code == 0, result.output
        assert "1 objects: 1 fully migrated" in result.output

    def test_exit_1_and_usage_errors(self, tmp_path: Path) -> None:
        (tmp_path / "in.yaml").write_text("a: [\n")
        result = self.invoke(str(tmp_path / "in.yaml"), "--out", str(tmp_path / "out"))
        assert result.exit_code == 1
        assert "not valid YAML" in result.output and "Traceback" not in result.output
        assert (
            self.invoke(str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")).exit_code == 2
        )
        assert self.invoke(str(tmp_path / "in.yaml")).exit_code == 2  # --out is required
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "keep.txt").write_text("x")
        clobber = self.invoke(str(tmp_path / "in.yaml"), "--out", str(tmp_path / "mine"))
        assert clobber.exit_code == 2 and (tmp_path / "mine" / "keep.txt").exists()

    def test_same_input_same_bytes_and_rerun_replaces(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        for _ in range(2):
            assert self.invoke(str(EXAMPLES), "--out", str(out)).exit_code == 1
            first = {
                p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
            }
            assert first
        again = migrate([EXAMPLES], display=lambda p: p.relative_to(REPO).as_posix())
        assert (
            again.files
            == migrate([EXAMPLES], display=lambda p: p.relative_to(REPO).as_posix()).files
        )


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Migration, Path]:
    """The committed examples, migrated once and written to a folder."""
    out = tmp_path_factory.mktemp("examples") / "out"
    result = migrate([EXAMPLES], display=lambda p: p.relative_to(REPO).as_posix())
    write_outputs(result, out)
    return result, out


class TestExampleFolder:
    """The committed examples: every output validates, the report adds up, the stack plans."""

    def test_at_least_30_varied_objects_and_counts_add_up(
        self, migrated: tuple[Migration, Path]
    ) -> None:
        result, _ = migrated
        report = json.loads(result.files["report.json"])
        counts = report["counts"]
        documents = sum(
            1 for p in EXAMPLES.glob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d
        )
        assert counts["input"] == documents >= 30
        assert (
            counts["fully"] + counts["partly"] + counts["not"] + counts["unreadable"]
            == counts["input"]
        )
        assert len(report["objects"]) + len(report["unreadable"]) == counts["input"]
        assert {o["kind"] for o in report["objects"]} >= {
            "VirtualService",
            "DestinationRule",
            "Gateway",
            "ServiceEntry",
            "Sidecar",
            "AuthorizationPolicy",
            "PeerAuthentication",
            "RequestAuthentication",
        }
        assert {o["status"] for o in report["objects"]} == {"fully", "partly", "not"}
        assert all(o["notCarriedOver"] for o in report["objects"] if o["status"] != "fully")
        md = result.files["report.md"]
        assert f"{counts['input']} input objects: {counts['fully']} fully migrated" in md

    def test_gateway_api_objects_validate(self, migrated: tuple[Migration, Path]) -> None:
        result, _ = migrated
        found = objects(result, "gateway-api/")
        assert {o["kind"] for o in found.values()} == {
            "Gateway",
            "HTTPRoute",
            "GRPCRoute",
            "ReferenceGrant",
        }
        for name, obj in found.items():
            assert gateway_api_errors(obj) == [], name

    def test_traffic_folder_loads_and_its_cnps_validate(
        self, migrated: tuple[Migration, Path]
    ) -> None:
        _, out = migrated
        policies = load_policy_folder(out / "traffic", root=out)
        cnps = render_policies(policies)
        assert len(cnps) > len(policies.services)  # plus one default deny per namespace
        for cnp in cnps:
            assert cnp_errors(cnp) == [], cnp["metadata"]

    def test_a_stack_using_the_generated_folder_plans_cleanly(
        self, migrated: tuple[Migration, Path], tmp_path: Path, repo_tmp: Path
    ) -> None:
        from infra import plan as offline

        _, out = migrated
        # trafficPolicies must lie inside the repository: copy the folder under out/.
        traffic = repo_tmp / "traffic"
        shutil.copytree(out / "traffic", traffic)
        document = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
        for cluster in document["config"]["meshless:clusters"]:
            cluster["trafficPolicies"] = traffic.relative_to(REPO).as_posix()
        stack_file = tmp_path / "Pulumi.staging.yaml"
        stack_file.write_text(yaml.safe_dump(document), encoding="utf-8")
        code = offline.run("staging", stack_file=stack_file, out_dir=tmp_path / "plan")
        assert code == 0
        manifests = list((tmp_path / "plan" / "manifests").rglob("*.yaml"))
        assert any("bookinfo" in p.read_text() for p in manifests)


class TestOddInput:
    """Values Kubernetes or Gateway API would refuse are reported, not written, not a crash."""

    def test_invalid_labels_and_hostnames(self, tmp_path: Path) -> None:
        body = "selector: {matchLabels: {app: 'Foo Bar!'}}\nrules: [{to: [{operation: {ports: ['8080']}}]}]\n"
        text = (
            ap(body, name="weird")
            + "---"
            + GATEWAY.format(version="v1")
            + "---"
            + vs("- route: [{destination: {host: web, port: {number: 8080}}}]\n").replace(
                "hosts: [shop.example.com]", "hosts: ['shop.example.com:80', ok.example.com]"
            )
        )
        result = run(tmp_path, text)
        assert entry(result, "AuthorizationPolicy", "weird")["status"] == "not"
        assert "not a valid label value" in gaps(result, "AuthorizationPolicy", "weird")["selector"]
        assert not [n for n in result.files if n.startswith("traffic/")]
        route = objects(result, "gateway-api/shop/httproute-web.yaml")[
            "gateway-api/shop/httproute-web.yaml"
        ]
        assert route["spec"]["hostnames"] == ["ok.example.com"]
        assert "hosts" in gaps(result, "VirtualService", "web")


class TestVendoredSchemas:
    """The schemas checked against are the ones vendor/PROVENANCE.json records."""

    def test_a_changed_schema_is_refused(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from migrate import schemas

        copy = tmp_path / "vendor"
        (copy / "crd-schemas").mkdir(parents=True)
        (copy / "PROVENANCE.json").write_bytes((schemas.VENDOR / "PROVENANCE.json").read_bytes())
        (copy / "crd-schemas" / "istio-gateway_v1.json").write_text('{"type": "object"}')
        monkeypatch.setattr(schemas, "VENDOR", copy)
        schemas._validator.cache_clear()
        schemas._recorded.cache_clear()
        try:
            with pytest.raises(
                schemas.VendoredSchemaError, match=r"differs from vendor/PROVENANCE\.json"
            ):
                schemas.istio_errors("Gateway", {"spec": {}})
        finally:
            schemas._validator.cache_clear()
            schemas._recorded.cache_clear()
