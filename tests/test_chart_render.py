"""What Helm will install: rendered releases in every plan, object diffs, and upgrade rules.

The plans here render the vendored, sha256-checked chart archives with the pinned Helm (the
same path `make plan` takes). Upgrade cases plan a one-cluster stack (staging's EKS cluster)
against a base plan, as `plan --compare` does in the pull-request workflow.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.cilium import CiliumSettings, ClusterFacts, build_values
from infra import chart_render as render
from infra import plan as offline
from infra.export_format import read_export
from infra.upgrade import UpgradeStep

REPO = Path(__file__).resolve().parents[1]
CILIUM_DS = "DaemonSet-kube-system-cilium.yaml".lower()


def _eks_only(version: str | None = None, **cilium: Any) -> dict[str, Any]:
    document = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
    clusters = document["config"]["meshless:clusters"]
    (eks,) = [c for c in clusters if c["cloud"] == "eks"]
    eks = copy.deepcopy(eks)
    if version is not None:
        eks["cilium"]["version"] = version
    eks["cilium"].update(cilium)
    document["config"]["meshless:clusters"] = [eks]
    return document


def _plan(tmp: Path, name: str, document: dict[str, Any], **kwargs: Any) -> tuple[int, Path]:
    stack_file = tmp / f"{name}.yaml"
    stack_file.write_text(yaml.safe_dump(document))
    out = tmp / name
    code = offline.run("staging", stack_file=stack_file, out_dir=out, **kwargs)
    return code, out


@pytest.fixture(scope="module")
def base_1_16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What runs now: staging's EKS cluster on Cilium 1.16.19."""
    tmp = tmp_path_factory.mktemp("base")
    code, out = _plan(tmp, "base", _eks_only())
    assert code == 0, (out / "summary.md").read_text()
    return out


@pytest.fixture(scope="module")
def upgraded_1_17(tmp_path_factory: pytest.TempPathFactory, base_1_16: Path) -> Path:
    tmp = tmp_path_factory.mktemp("head")
    code, out = _plan(
        tmp, "head", _eks_only("1.17.18", upgradeCompatibility="1.16"), compare=base_1_16
    )
    assert code == 0, (out / "summary.md").read_text()
    return out


def _rendered(out: Path) -> dict[str, Any]:
    folder = out / "manifests" / "stg-eks-usw2" / "cilium"
    return {p.name: yaml.safe_load(p.read_text()) for p in folder.glob("*.yaml")}


class TestRenderedReleases:
    """Every plan holds the objects Helm will create, every image a catalog digest."""

    def test_objects_written_per_release(self, base_1_16: Path) -> None:
        objects = _rendered(base_1_16)
        kinds = {o["kind"] for o in objects.values()}
        assert {"DaemonSet", "Deployment", "ConfigMap", "ServiceAccount"} <= kinds
        config = objects["configmap-kube-system-cilium-config.yaml"]
        assert config["data"]["kube-proxy-replacement"] == "true"
        assert "Rendered Cilium releases" in (base_1_16 / "summary.md").read_text()

    def test_every_image_is_a_catalog_digest(self, base_1_16: Path) -> None:
        images = set()
        for obj in _rendered(base_1_16).values():
            for _, container in render._containers(obj):
                images.add(container["image"])
        assert images and all("@sha256:" in i for i in images), images

    def test_mirrored_images_pass_with_the_catalog_digest(self, tmp_path: Path) -> None:
        mirror = "123456789012.dkr.ecr.us-east-1.amazonaws.com/quay.io"
        document = _eks_only()
        document["config"]["meshless:imageMirror"] = {"registries": {"quay.io": mirror}}
        code, out = _plan(tmp_path, "mirrored", document)
        assert code == 0, (out / "summary.md").read_text()
        for obj in _rendered(out).values():
            for _, container in render._containers(obj):
                assert container["image"].startswith(mirror + "/cilium/"), container["image"]

    def test_renders_are_byte_stable(self, base_1_16: Path, tmp_path: Path) -> None:
        code, again = _plan(tmp_path, "again", _eks_only())
        assert code == 0
        first = sorted((base_1_16 / "manifests").rglob("*.yaml"))
        second = sorted((again / "manifests").rglob("*.yaml"))
        assert [p.relative_to(base_1_16) for p in first] == [p.relative_to(again) for p in second]
        for a, b in zip(first, second, strict=True):
            assert a.read_bytes() == b.read_bytes(), a.name


class TestRenderedChecks:
    """A rendered object that breaks the rules fails the plan, naming object and field."""

    @pytest.fixture()
    def release(self, base_1_16: Path) -> render.RenderedRelease:
        export = read_export(base_1_16 / "resources.json")
        (release,) = render.render_plan(export, render.find_helm())
        assert render.check_rendered(release) == []
        return release

    def _object(self, release: render.RenderedRelease, kind: str, name: str) -> dict[str, Any]:
        return next(
            o for o in release.objects if o["kind"] == kind and o["metadata"]["name"] == name
        )

    def test_tag_only_image(self, release: render.RenderedRelease) -> None:
        ds = self._object(release, "DaemonSet", "cilium-envoy")
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/cilium/cilium-envoy:v1"
        (problem,) = render.check_rendered(release)
        assert "DaemonSet/kube-system/cilium-envoy containers[cilium-envoy].image" in problem

    def test_kube_proxy_replacement_off(self, release: render.RenderedRelease) -> None:
        self._object(release, "ConfigMap", "cilium-config")["data"]["kube-proxy-replacement"] = (
            "false"
        )
        (problem,) = render.check_rendered(release)
        assert "ConfigMap/kube-system/cilium-config data.kube-proxy-replacement" in problem

    def test_kube_proxy_object(self, release: render.RenderedRelease) -> None:
        ds = copy.deepcopy(self._object(release, "DaemonSet", "cilium"))
        ds["metadata"]["name"] = "kube-proxy"
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = (
            "registry.k8s.io/kube-proxy:v1.32.0@sha256:" + "0" * 64
        )
        release.objects.append(ds)
        problems = render.check_rendered(release)
        assert any("is a kube-proxy object" in p for p in problems)
        assert any("runs kube-proxy" in p for p in problems)


class TestRenderInputs:
    """No render, no plan: a missing Helm or a tampered archive is exit 2, nothing written."""

    def test_without_helm(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MESHLESS_HELM", str(tmp_path / "no-helm"))
        with pytest.raises(offline.PlanInputError, match="MESHLESS_HELM"):
            offline.run("staging", out_dir=tmp_path / "out")
        assert not (tmp_path / "out").exists()

    def test_tampered_archive(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        vendor = tmp_path / "vendor"
        shutil.copytree(REPO / "vendor" / "cilium-chart", vendor / "cilium-chart")
        shutil.copy(REPO / "vendor" / "PROVENANCE.json", vendor / "PROVENANCE.json")
        archive = vendor / "cilium-chart" / "cilium-1.16.19.tgz"
        archive.write_bytes(archive.read_bytes() + b"\0")
        monkeypatch.setattr(render, "VENDOR", vendor)
        with pytest.raises(render.RenderError, match="sha256"):
            render.chart_archive("1.16.19")


class TestUpgrade:
    """1.16 -> 1.17 is one reviewed change that cannot skip a step."""

    def test_minor_upgrade_shows_the_object_diff(self, upgraded_1_17: Path) -> None:
        summary = (upgraded_1_17 / "summary.md").read_text()
        assert "Rendered objects (what Helm will change)" in summary
        row = next(
            line for line in summary.splitlines() if "`DaemonSet/kube-system/cilium`" in line
        )
        assert "quay.io/cilium/cilium:v1.16.19@sha256:" in row
        assert "quay.io/cilium/cilium:v1.17.18@sha256:" in row
        config = next(
            line for line in summary.splitlines() if "`ConfigMap/kube-system/cilium-config`" in line
        )
        assert "data." in config
        assert "1.16.19 → 1.17.18 (minor upgrade)" in summary

    def test_upgraded_images_are_1_17_catalog_digests(self, upgraded_1_17: Path) -> None:
        ds = _rendered(upgraded_1_17)["daemonset-kube-system-cilium.yaml"]
        image = ds["spec"]["template"]["spec"]["containers"][0]["image"]
        catalog = json.loads((REPO / "policies" / "data" / "cilium-images.json").read_text())
        assert image.endswith(catalog["versions"]["1.17.18"]["image"]["digest"])

    def test_minor_upgrade_needs_upgrade_compatibility(
        self, base_1_16: Path, tmp_path: Path
    ) -> None:
        code, out = _plan(tmp_path, "nocompat", _eks_only("1.17.18"), compare=base_1_16)
        assert code == 1
        summary = (out / "summary.md").read_text()
        assert summary.startswith("⛔")
        assert 'set cilium.upgradeCompatibility: "1.16"' in summary

    def test_skipping_a_minor_is_refused(self, base_1_16: Path, tmp_path: Path) -> None:
        old = tmp_path / "old"
        shutil.copytree(base_1_16, old)
        document = json.loads((old / "resources.json").read_text())
        for res in document["deployment"]["resources"]:
            if res["type"] == "kubernetes:helm.sh/v3:Release":
                res["inputs"]["version"] = "1.15.7"
        (old / "resources.json").write_text(json.dumps(document))
        code, out = _plan(
            tmp_path, "skip", _eks_only("1.17.18", upgradeCompatibility="1.15"), upgrade_from=old
        )
        assert code == 1
        assert "skips a minor version" in (out / "summary.md").read_text()

    def test_downgrade_needs_a_reason(self, base_1_16: Path, tmp_path: Path) -> None:
        code, out = _plan(tmp_path, "down", _eks_only("1.16.5"), upgrade_from=base_1_16)
        assert code == 1
        assert "is a downgrade" in (out / "summary.md").read_text()
        reason = "roll back: 1.16.19 breaks our NIC driver (INC-4711)"
        code, out = _plan(
            tmp_path, "down-ok", _eks_only("1.16.5", downgradeReason=reason), upgrade_from=base_1_16
        )
        assert code == 0
        assert reason in (out / "summary.md").read_text()

    @pytest.mark.parametrize("given", ["resources.json", "missing"])
    def test_unreadable_upgrade_from_fails_before_writing(
        self, tmp_path: Path, base_1_16: Path, given: str
    ) -> None:
        with pytest.raises(offline.PlanInputError, match=r"--upgrade-from .*(not a plan folder)"):
            _plan(tmp_path, "new", _eks_only("1.16.19"), upgrade_from=base_1_16 / given)
        assert not (tmp_path / "new").exists()

    def test_patch_upgrade_passes(self, tmp_path: Path) -> None:
        code, old = _plan(tmp_path, "old", _eks_only("1.16.5"))
        assert code == 0
        code, out = _plan(tmp_path, "new", _eks_only("1.16.19"), upgrade_from=old)
        assert code == 0
        assert "1.16.5 → 1.16.19 (patch upgrade)" in (out / "summary.md").read_text()

    def test_unparseable_base_version_is_a_problem_not_a_crash(self) -> None:
        from infra.upgrade import upgrade_steps

        def release(version: str) -> dict[str, Any]:
            return {
                "urn": "urn:pulumi:s::meshless::kubernetes:helm.sh/v3:Release::c-cilium-release",
                "type": "kubernetes:helm.sh/v3:Release",
                "inputs": {"chart": "cilium", "version": version, "values": {}},
            }

        (step,) = upgrade_steps([release("1.16.x")], [release("1.17.18")])
        assert "cannot compare chart versions" in step.problems[0]

    @pytest.mark.parametrize(
        ("base", "head", "kind"),
        [
            ("1.16.19", "1.18.0", "skip"),
            ("1.16.19", "2.0.0", "skip"),
            ("1.17.1", "1.16.19", "downgrade"),
            ("1.16.5", "1.16.19", "patch"),
            ("1.16.19", "1.17.18", "minor"),
        ],
    )
    def test_step_kinds(self, base: str, head: str, kind: str) -> None:
        assert UpgradeStep("r", base, head, {}).kind == kind

    @pytest.mark.parametrize("cloud", ["eks", "gke"])
    def test_1_17_values_match_the_1_17_schema(self, cloud: str) -> None:
        settings = CiliumSettings.model_validate(
            {"version": "1.17.18", "upgradeCompatibility": "1.16"}
        )
        facts = ClusterFacts(
            name="c",
            cloud=cloud,
            environment="staging",
            api_host="h",
            api_port=443,
            node_kernel=(6, 1),
            pod_cidr="10.4.0.0/14" if cloud == "gke" else None,
            operator_role_arn="arn:aws:iam::123456789012:role/op" if cloud == "eks" else None,
        )
        schema = json.loads(
            (REPO / "vendor" / "cilium-chart" / "values-1.17.18.schema.json").read_text()
        )
        jsonschema.validate(build_values(settings, facts), schema)


class TestPreflight:
    """Upgrade step one: the pre-flight check of the next version, one config switch."""

    def test_preflight_release_pulls_the_next_version(self, tmp_path: Path) -> None:
        code, out = _plan(tmp_path, "preflight", _eks_only(preflightVersion="1.17.18"))
        assert code == 0, (out / "summary.md").read_text()
        folder = out / "manifests" / "stg-eks-usw2" / "cilium-preflight"
        kinds = sorted(yaml.safe_load(p.read_text())["kind"] for p in folder.glob("*.yaml"))
        assert kinds == [
            "ClusterRole",
            "ClusterRoleBinding",
            "DaemonSet",
            "Deployment",
            "ServiceAccount",
        ]
        ds = yaml.safe_load(
            (folder / "daemonset-kube-system-cilium-pre-flight-check.yaml").read_text()
        )
        catalog = json.loads((REPO / "policies" / "data" / "cilium-images.json").read_text())
        digest = catalog["versions"]["1.17.18"]["preflight.image"]["digest"]
        for container in ds["spec"]["template"]["spec"]["containers"]:
            assert container["image"].endswith(f"@{digest}"), container["image"]
        items = json.loads((out / "resources.json").read_text())["deployment"]["resources"]
        (release,) = [
            r for r in items if r["urn"].endswith("::stg-eks-usw2-cilium-preflight-release")
        ]
        coredns = next(r["urn"] for r in items if r["urn"].endswith("::stg-eks-usw2-coredns"))
        assert coredns in release["dependencies"]  # after Cilium runs and nodes exist

    @pytest.mark.parametrize("version", ["1.16.5", "1.16.19"])
    def test_preflight_must_be_ahead(self, tmp_path: Path, version: str) -> None:
        from infra.config import ConfigError

        with pytest.raises(ConfigError) as caught:
            _plan(tmp_path, "behind", _eks_only(preflightVersion=version))
        assert any("preflightVersion" in p for p in caught.value.problems)
