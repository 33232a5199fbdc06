"""Private registries and air-gapped installs: mirrored values, the real chart rendered from
them, `meshless images`, pinned chart archives and the config errors around them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_cilium import facts, pod_specs, render  # the chart-render helpers (vendored chart)
from typer.testing import CliRunner

from components.catalog import load_catalog
from components.chart_archive import CHARTS_PATH, chart_digest, check_archive
from components.cilium import CiliumSettings, build_values
from components.registry import (
    PULL_SECRET_NAME,
    RegistryMirror,
    deployed_image_paths,
    images_to_copy,
    split_repository,
)
from devtools.vendor import load_provenance
from infra.cli import app
from infra.config import ConfigError
from infra.export_format import SECRET_SIG
from infra.plan import plan_stack, read_stack_file
from infra.program import load

REPO = Path(__file__).resolve().parents[1]
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
GAR = "us-central1-docker.pkg.dev/acme"
MIRROR = RegistryMirror(
    registries={"quay.io": f"{ECR}/quay.io", "ghcr.io": f"{ECR}/ghcr.io", "docker.io": f"{ECR}/hub"}
)
# Every component a release can run: all of them on (SPIRE and ClusterMesh exclude each other).
EVERYTHING = {
    "spire": CiliumSettings(mutual_auth=True, image_mirror=MIRROR),
    "clustermesh": CiliumSettings(cluster_mesh=True, cluster_id=3, image_mirror=MIRROR),
}


def image_blocks(values: dict[str, Any], path: str = "") -> dict[str, dict[str, Any]]:
    """Every block with a repository in a values tree, by dotted path."""
    found: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        here = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            if "repository" in value:
                found[here] = value
            else:
                found |= image_blocks(value, here)
    return found


class TestMirroredValues:
    """Every component's repository moves to the mirror; every digest stays the catalog's."""

    @pytest.mark.parametrize("cloud", ["eks", "gke"])
    @pytest.mark.parametrize("case", list(EVERYTHING))
    def test_every_image_block_is_mirrored_with_catalog_digest(self, cloud: str, case: str):
        settings = EVERYTHING[case]
        blocks = image_blocks(build_values(settings, facts(cloud)))
        catalog = load_catalog()[settings.version]
        # Every image the release runs, plus the blocks set for disabled components.
        assert set(deployed_image_paths(settings, cloud)) <= set(blocks)
        for path, block in blocks.items():
            upstream = catalog[path]
            registry, rest = split_repository(str(upstream["repository"]))
            assert block["repository"] == f"{MIRROR.registries[registry]}/{rest}", path
            for key in ("digest", "awsDigest", "genericDigest"):
                if key in block:
                    assert block[key] == upstream[key], f"{path}.{key}"
            assert block["useDigest"] is True

    def test_gar_mirror_and_pull_secret(self) -> None:
        mirror = RegistryMirror(registries={"quay.io": f"{GAR}/quay"}, pull_secret="registry:gar")
        values = build_values(CiliumSettings(image_mirror=mirror), facts("gke"))
        assert values["image"]["repository"] == f"{GAR}/quay/cilium/cilium"
        assert values["nodeinit"]["image"]["repository"] == f"{GAR}/quay/cilium/startup-script"
        assert values["imagePullSecrets"] == [{"name": PULL_SECRET_NAME}]

    def test_no_mirror_leaves_values_unchanged(self) -> None:
        plain = build_values(CiliumSettings(), facts("eks"))
        assert plain["image"]["repository"] == "quay.io/cilium/cilium"
        assert "imagePullSecrets" not in plain


class TestRenderedMirror:
    """The real chart (vendored archive, pinned Helm) runs only mirror images by catalog digest."""

    @pytest.mark.parametrize(
        ("cloud", "case"), [("eks", "spire"), ("gke", "clustermesh"), ("gke", "spire")]
    )
    def test_rendered_pods_pull_only_from_the_mirror(
        self, cloud: str, case: str, tmp_path: Path
    ) -> None:
        settings = EVERYTHING[case].model_copy(
            update={"image_mirror": MIRROR.model_copy(update={"pull_secret": "registry:auth"})}
        )
        objects = render(build_values(settings, facts(cloud)), settings.version, tmp_path)
        expected = {c.target for c in images_to_copy(settings, cloud, MIRROR)}
        seen = set()
        for where, spec in pod_specs(objects):
            assert spec.get("imagePullSecrets") == [{"name": PULL_SECRET_NAME}], where
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                image = container["image"]
                assert image.startswith(f"{ECR}/"), f"{where}: {image} is not from the mirror"
                repository, _, digest = image.partition("@")
                seen.add(f"{repository.rsplit(':', 1)[0]}@{digest}")
        # What `meshless images` lists is exactly what the chart runs.
        assert seen == expected

    @pytest.mark.parametrize("cloud", ["eks", "gke"])
    def test_deployed_paths_match_the_chart_without_mirror(self, cloud: str, tmp_path) -> None:
        settings = CiliumSettings()
        objects = render(build_values(settings, facts(cloud)), settings.version, tmp_path)
        rendered = {
            c["image"]
            for _, spec in pod_specs(objects)
            for c in spec.get("containers", []) + spec.get("initContainers", [])
        }
        listed = {c.source for c in images_to_copy(settings, cloud, None)}
        assert rendered == listed
        assert len(deployed_image_paths(settings, cloud)) == len(listed)


def stack_file(tmp_path: Path, base: str = "staging", **config: Any) -> Path:
    document = yaml.safe_load((REPO / f"Pulumi.{base}.yaml").read_text())
    for key, value in config.items():
        if value is None:
            document["config"].pop(key, None)
        else:
            document["config"][key] = value
    path = tmp_path / f"Pulumi.{base}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def load_file(path: Path):
    return load(read_stack_file(path))


QUAY_ONLY = {"registries": {"quay.io": f"{ECR}/quay.io"}}


class TestMirrorConfig:
    """Mistakes in the mirror config are config errors naming the key and the fix."""

    def test_unmapped_registry_of_a_running_image(self, tmp_path: Path) -> None:
        document = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
        clusters = document["config"]["meshless:clusters"]
        clusters[0]["cilium"]["mutualAuth"] = True
        path = stack_file(
            tmp_path, **{"meshless:imageMirror": QUAY_ONLY, "meshless:clusters": clusters}
        )
        with pytest.raises(ConfigError) as caught:
            load_file(path)
        text = "\n".join(caught.value.problems)
        assert "meshless:imageMirror.registries: stg-eks-usw2 runs" in text
        assert "from ghcr.io" in text and "from docker.io" in text
        assert "stg-gke-usc1" not in text  # no SPIRE there: quay.io covers it

    def test_plan_summary_says_where_images_come_from(self, tmp_path: Path) -> None:
        from infra.summary import _cluster_notes

        plan = load_file(stack_file(tmp_path, **{"meshless:imageMirror": QUAY_ONLY}))
        for cluster in plan.config.clusters:
            notes = _cluster_notes(cluster)
            assert any(f"from the mirror ({ECR}/quay.io)" in line for line in notes)

    def test_cluster_mirror_wins_and_errors_name_it(self, tmp_path: Path) -> None:
        document = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
        clusters = document["config"]["meshless:clusters"]
        clusters[1]["cilium"]["imageMirror"] = {"registries": {"quay.io": f"{GAR}/quay"}}
        path = stack_file(
            tmp_path, **{"meshless:imageMirror": QUAY_ONLY, "meshless:clusters": clusters}
        )
        plan = load_file(path)
        mirrors = {c.name: c.cilium_settings.image_mirror for c in plan.config.clusters}
        assert mirrors["stg-eks-usw2"].registries == QUAY_ONLY["registries"]
        assert mirrors["stg-gke-usc1"].registries == {"quay.io": f"{GAR}/quay"}
        clusters[1]["cilium"]["mutualAuth"] = True
        path = stack_file(
            tmp_path, **{"meshless:imageMirror": QUAY_ONLY, "meshless:clusters": clusters}
        )
        with pytest.raises(ConfigError, match=r"clusters\[1\]\.cilium\.imageMirror\.registries"):
            load_file(path)

    @pytest.mark.parametrize(
        ("mirror", "words"),
        [
            ({"registries": {"quay.io": f"https://{ECR}/quay.io"}}, "without scheme"),
            ({"registries": {"quay.io": f"{ECR}/quay.io:v1"}}, "without scheme, tag or digest"),
            ({"registries": {"https://quay.io": "x.io/y"}}, "is not a registry host"),
            ({"registries": {}}, "must not be empty"),
            ({**QUAY_ONLY, "pullSecret": "meshless:auth"}, "meshless namespace"),
            ({**QUAY_ONLY, "pullSecret": "registry:auth"}, "has no key registry:auth"),
        ],
    )
    def test_bad_mirror(self, tmp_path: Path, mirror: dict, words: str) -> None:
        path = stack_file(tmp_path, **{"meshless:imageMirror": mirror})
        with pytest.raises(ConfigError) as caught:
            load_file(path)
        text = "\n".join(caught.value.problems)
        assert text.startswith("meshless:imageMirror"), text
        assert words in text

    def test_pull_secret_is_a_pulumi_secret(self, tmp_path: Path) -> None:
        path = stack_file(
            tmp_path,
            **{
                "meshless:imageMirror": {**QUAY_ONLY, "pullSecret": "registry:auth"},
                "registry:auth": {"secure": "v1:AAAA"},
            },
        )
        result = plan_stack("staging", path)
        secrets = [
            r
            for r in result.resources
            if r.type == "kubernetes:core/v1:Secret"
            and r.inputs["metadata"]["name"] == PULL_SECRET_NAME
        ]
        assert len(secrets) == 2  # one per cluster (beside the Hubble TLS secrets)
        for secret in secrets:
            assert secret.inputs["metadata"]["name"] == PULL_SECRET_NAME
            # Marked secret the way the SDK marks it, so the engine encrypts it in state.
            assert SECRET_SIG in json.dumps(secret.inputs["stringData"])
            assert "v1:AAAA" not in json.dumps(secret.inputs)
        releases = [r for r in result.resources if r.type == "kubernetes:helm.sh/v3:Release"]
        for release in releases:
            assert release.inputs["values"]["imagePullSecrets"] == [{"name": PULL_SECRET_NAME}]


class TestImagesCommand:
    """`meshless images`: what to copy into a mirror, one line per image, for both stacks."""

    @pytest.mark.parametrize("stack", ["staging", "prod"])
    def test_text_lists_each_running_image_once(self, stack: str) -> None:
        result = CliRunner().invoke(app, ["images", "--stack", stack])
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines and len(lines) == len(set(lines))
        plan = load(read_stack_file(REPO / f"Pulumi.{stack}.yaml"))
        expected = set()
        for cluster in plan.config.clusters:
            if cluster.cilium_settings is not None:
                settings = cluster.cilium_settings
                expected |= {
                    f"{c.source} -> {c.target}"
                    for c in images_to_copy(settings, cluster.cloud, None)
                }
        assert set(lines) == expected
        # Both operator variants when the stack has both clouds; everything by digest.
        assert any("/operator-aws:" in line for line in lines)
        assert any("/operator-generic:" in line for line in lines)
        for line in lines:
            source, arrow, target = line.split(" ")
            assert arrow == "->" and "@sha256:" in source and "@sha256:" in target
            assert source.split("@")[1] == target.split("@")[1]

    def test_json_with_mirror(self, tmp_path: Path) -> None:
        path = stack_file(
            tmp_path, "prod", **{"meshless:imageMirror": MIRROR.model_dump(by_alias=True)}
        )
        result = CliRunner().invoke(app, ["images", "--stack-file", str(path), "--format", "json"])
        assert result.exit_code == 0, result.output
        images = json.loads(result.output)["images"]
        targets = [i["target"] for i in images]
        assert len(targets) == len(set(targets))
        for image in images:
            assert image["target"].startswith(f"{ECR}/")
            assert image["target"].endswith(f"@{image['digest']}")
            assert image["sourceByDigest"].endswith(f"@{image['digest']}")
            assert ":" not in image["sourceByDigest"].split("/")[-1].split("@")[0]
            assert image["targetTag"].startswith(image["target"].split("@")[0] + ":")
            assert image["clusters"]

    def test_bad_config_exits_2_without_traceback(self, tmp_path: Path) -> None:
        path = stack_file(tmp_path, **{"meshless:imageMirror": {"registries": {}}})
        result = CliRunner().invoke(app, ["images", "--stack-file", str(path)])
        assert result.exit_code == 2
        assert "Traceback" not in result.output


CHART = "vendor/cilium-chart/cilium-1.16.19.tgz"


class TestChartArchive:
    """A chart archive is installed only if its bytes are the catalog's."""

    def test_catalog_digests_equal_the_vendored_provenance(self) -> None:
        charts = json.loads(CHARTS_PATH.read_text())["charts"]
        provenance = load_provenance()
        assert set(charts) == set(load_catalog())
        for version in charts:
            recorded = provenance[f"cilium-chart/cilium-{version}.tgz"]["sha256"]
            assert chart_digest(version) == f"sha256:{recorded}"

    def test_verified_archive_is_what_the_release_installs(self, tmp_path: Path) -> None:
        document = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
        clusters = document["config"]["meshless:clusters"]
        clusters[0]["cilium"]["chartArchive"] = CHART
        result = plan_stack("staging", stack_file(tmp_path, **{"meshless:clusters": clusters}))
        releases = {
            r.name: r.inputs for r in result.resources if r.type == "kubernetes:helm.sh/v3:Release"
        }
        eks = releases["stg-eks-usw2-cilium-release"]
        assert eks["chart"] == str((REPO / CHART).resolve())
        assert "repositoryOpts" not in eks
        gke = releases["stg-gke-usc1-cilium-release"]
        assert gke["chart"] == "cilium" and gke["repositoryOpts"]["repo"]

    def test_tampered_archive_is_refused_naming_both_digests(self, tmp_path: Path) -> None:
        tampered = tmp_path / "charts" / "cilium-1.16.19.tgz"
        tampered.parent.mkdir()
        shutil.copy(REPO / CHART, tampered)
        with tampered.open("ab") as handle:
            handle.write(b"\0")
        document = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
        clusters = document["config"]["meshless:clusters"]
        clusters[1]["cilium"]["chartArchive"] = str(tampered)
        with pytest.raises(ConfigError) as caught:
            load_file(stack_file(tmp_path, **{"meshless:clusters": clusters}))
        [problem] = caught.value.problems
        assert problem.startswith("meshless:clusters[1].cilium.chartArchive: ")
        assert chart_digest("1.16.19") in problem
        import hashlib

        actual = "sha256:" + hashlib.sha256(tampered.read_bytes()).hexdigest()
        assert actual in problem

    @pytest.mark.parametrize(
        ("path", "version", "words"),
        [
            ("vendor/cilium-chart/cilium-1.16.5.tgz", "1.16.19", "must be named cilium-1.16.19"),
            ("charts/cilium-1.16.19.tgz", "1.16.19", "cannot read"),
        ],
    )
    def test_wrong_name_or_missing_file(self, path: str, version: str, words: str) -> None:
        problem = check_archive(path, version)
        assert problem is not None and words in problem

    def test_another_versions_archive_renamed_is_refused(self, tmp_path: Path) -> None:
        renamed = tmp_path / "cilium-1.16.19.tgz"
        shutil.copy(REPO / "vendor/cilium-chart/cilium-1.16.5.tgz", renamed)
        problem = check_archive(str(renamed), "1.16.19")
        assert problem is not None and "not the published chart" in problem
