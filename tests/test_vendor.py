"""The repository stands alone: vendored upstream files are the recorded bytes, Helm is the
pinned one, and nothing tracked reaches outside the checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from devtools import helm, vendor

REPO = Path(__file__).resolve().parents[1]


class TestVendoredFiles:
    """Every vendored file has a source, a version and the sha256 it was vendored with."""

    def test_every_file_matches_its_recorded_sha256(self) -> None:
        assert vendor.check() == []

    def test_every_entry_names_source_and_version(self) -> None:
        for name, entry in vendor.load_provenance().items():
            assert entry.get("version"), name
            assert entry.get("url", "").startswith("https://") or "derived" in entry, name
            assert len(entry["sha256"]) == 64, name

    def test_catalog_versions_are_all_vendored(self) -> None:
        from components.catalog import known_versions

        files = vendor.load_provenance()
        for version in known_versions():
            for name in (f"cilium-{version}.tgz", f"values-{version}.schema.json"):
                assert f"cilium-chart/{name}" in files

    def test_a_changed_or_unlisted_file_is_reported(self, tmp_path: Path) -> None:
        copy = tmp_path / "vendor"
        shutil.copytree(vendor.VENDOR, copy)
        schema = copy / "crd-schemas" / "ciliumnetworkpolicy_v2.json"
        schema.write_bytes(schema.read_bytes() + b" ")
        (copy / "crd-schemas" / "extra.json").write_text("{}")
        (copy / "cilium-chart" / "cilium-1.16.5.tgz").unlink()
        problems = "\n".join(vendor.check(copy))
        assert "vendor/crd-schemas/ciliumnetworkpolicy_v2.json: sha256" in problems
        assert "vendor/crd-schemas/extra.json: not in PROVENANCE.json" in problems
        assert "vendor/cilium-chart/cilium-1.16.5.tgz: missing" in problems

    def test_images_files_are_derived_from_the_archives_values(self) -> None:
        for name, entry in vendor.load_provenance().items():
            if "derived" in entry:
                source = vendor.VENDOR / entry["derived"]["from"]
                assert (
                    vendor.derive_images(source.read_bytes()) == (vendor.VENDOR / name).read_bytes()
                )

    def test_refresh_refuses_a_changed_upstream_and_writes_nothing(self, tmp_path: Path) -> None:
        copy = tmp_path / "vendor"
        shutil.copytree(vendor.VENDOR, copy)
        mirror = tmp_path / "mirror"
        shutil.copytree(vendor.VENDOR, mirror)
        tampered = mirror / "crd-schemas" / "istio-gateway_v1.json"
        tampered.write_text(json.dumps({"tampered": True}))
        before = (copy / "crd-schemas" / "istio-gateway_v1.json").read_bytes()
        problems = vendor.refresh(mirror, copy)
        assert any("istio-gateway_v1.json: upstream sha256" in p for p in problems)
        assert (copy / "crd-schemas" / "istio-gateway_v1.json").read_bytes() == before


class TestPinnedHelm:
    """Tests render charts with the Helm from uv.lock, refused if its bytes differ."""

    def test_binary_is_the_pinned_version(self) -> None:
        out = subprocess.run(
            [str(helm.helm_path()), "version", "--short"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert out.startswith(helm.HELM_VERSION)

    def test_a_swapped_binary_is_refused(self, tmp_path: Path) -> None:
        fake = tmp_path / "helm"
        fake.write_text("#!/bin/sh\necho v3.17.2\n")
        with pytest.raises(helm.HelmError, match="expected 9e7a767e"):
            helm.ensure(fake)


class TestStandsAlone:
    """A clone with nothing beside it works: no tracked file reaches outside the checkout."""

    @pytest.mark.parametrize("needle", ["../" + "shared", "/work/" + "shared"])
    def test_no_tracked_file_mentions_the_shared_folder(self, needle: str) -> None:
        # The needles are split so this file does not match itself.
        found = subprocess.run(
            ["git", "grep", "-n", "-F", needle],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert found.returncode in (0, 1), found.stderr
        assert found.stdout == "", f"tracked files mention {needle}:\n{found.stdout}"
