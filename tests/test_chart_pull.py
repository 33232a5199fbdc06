"""OCI chart archives by digest: `meshless chart pull` against a registry speaking the OCI
distribution API (a local HTTP server holding the vendored chart as a Helm OCI artifact, with a
bearer-token challenge), then the plan installing exactly the pulled bytes."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from components.chart_archive import CACHE_ENV, chart_digest, parse_oci
from infra.chart_pull import CHART_LAYER
from infra.cli import app
from infra.config import ConfigError
from infra.plan import plan_stack, read_stack_file
from infra.program import load

REPO = Path(__file__).resolve().parents[1]
CHART = (REPO / "vendor/cilium-chart/cilium-1.16.19.tgz").read_bytes()
TOKEN = "test-token"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Registry:
    """Blobs by digest; manifests answer only with the bearer token from /token."""

    port: int = 0
    blobs: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def push_chart(self, archive: bytes) -> str:
        config = json.dumps({"name": "cilium", "version": "1.16.19"}).encode()
        self.blobs[sha(config)] = config
        self.blobs[sha(archive)] = archive
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.cncf.helm.config.v1+json",
                    "digest": sha(config),
                    "size": len(config),
                },
                "layers": [
                    {"mediaType": CHART_LAYER, "digest": sha(archive), "size": len(archive)}
                ],
            }
        ).encode()
        self.blobs[sha(manifest)] = manifest
        return sha(manifest)

    def reference(self, digest: str) -> str:
        return f"oci://127.0.0.1:{self.port}/charts/cilium@{digest}"


@pytest.fixture
def registry() -> Iterator[Registry]:
    state = Registry()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append(self.path)
            if self.path.startswith("/token?"):
                return self._send(200, json.dumps({"token": TOKEN}).encode())
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                realm = f"http://127.0.0.1:{state.port}/token"
                self.send_response(401)
                self.send_header(
                    "WWW-Authenticate",
                    f'Bearer realm="{realm}",service="test",scope="repository:charts/cilium:pull"',
                )
                self.end_headers()
                return None
            digest = self.path.rsplit("/", 1)[-1]
            if self.path.startswith("/v2/charts/cilium/") and digest in state.blobs:
                return self._send(200, state.blobs[digest])
            return self._send(404, b"{}")

        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def chart_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


def stack_with(tmp_path: Path, archive: str) -> Path:
    document = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
    document["config"]["meshless:clusters"][0]["cilium"]["chartArchive"] = archive
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def pull(path: Path):
    return CliRunner().invoke(app, ["chart", "pull", "--stack-file", str(path)])


class TestOciChart:
    """Referenced by manifest digest, checked against the catalog, installed from the cache."""

    def test_pull_then_plan_installs_the_pulled_bytes(self, registry, tmp_path, chart_cache):
        digest = registry.push_chart(CHART)
        path = stack_with(tmp_path, registry.reference(digest))
        with pytest.raises(ConfigError, match="has not been pulled on this machine"):
            load(read_stack_file(path))
        result = pull(path)
        assert result.exit_code == 0, result.output
        cached = chart_cache / digest.replace(":", "-") / "cilium-1.16.19.tgz"
        assert cached.read_bytes() == CHART
        assert any(r.startswith("/token?") for r in registry.requests)  # the challenge ran
        plan = plan_stack("staging", path)
        [eks] = [
            r
            for r in plan.resources
            if r.type == "kubernetes:helm.sh/v3:Release" and r.name.startswith("stg-eks")
        ]
        assert eks.inputs["chart"] == str(cached.resolve())
        assert "repositoryOpts" not in eks.inputs

    def test_chart_that_is_not_the_catalogs_is_refused_before_download(
        self, registry, tmp_path, chart_cache
    ):
        tampered = CHART + b"\0"
        digest = registry.push_chart(tampered)
        result = pull(stack_with(tmp_path, registry.reference(digest)))
        assert result.exit_code == 2
        assert sha(tampered) in result.output and chart_digest("1.16.19") in result.output
        assert not any(sha(tampered) in r for r in registry.requests if "/blobs/" in r)
        assert not chart_cache.exists()

    def test_manifest_that_does_not_match_its_digest_is_refused(
        self, registry, tmp_path, chart_cache
    ):
        digest = registry.push_chart(CHART)
        other = "sha256:" + "c" * 64
        registry.blobs[other] = registry.blobs[digest]  # the registry lies about the digest
        result = pull(stack_with(tmp_path, registry.reference(other)))
        assert result.exit_code == 2
        assert f"manifest with {digest}, not {other}" in result.output
        assert not chart_cache.exists()

    def test_swapped_cache_file_is_refused_by_the_config_check(
        self, registry, tmp_path, chart_cache
    ):
        digest = registry.push_chart(CHART)
        path = stack_with(tmp_path, registry.reference(digest))
        assert pull(path).exit_code == 0
        cached = chart_cache / digest.replace(":", "-") / "cilium-1.16.19.tgz"
        cached.write_bytes(CHART + b"\0")
        with pytest.raises(ConfigError, match="is not the published chart"):
            load(read_stack_file(path))

    @pytest.mark.parametrize(
        ("reference", "words"),
        [
            ("oci://quay.io/cilium/charts/cilium:1.16.19", "names a tag"),
            ("oci://quay.io/cilium/charts/other@sha256:" + "a" * 64, "repository named cilium"),
            ("https://helm.cilium.io/cilium-1.16.19.tgz", "neither a local file nor an oci://"),
        ],
    )
    def test_references_that_are_not_pinned_are_config_errors(self, tmp_path, reference, words):
        with pytest.raises(ConfigError) as caught:
            load(read_stack_file(stack_with(tmp_path, reference)))
        [problem] = caught.value.problems
        assert problem.startswith("meshless:clusters[0].cilium.chartArchive: ")
        assert words in problem

    def test_parse(self) -> None:
        parsed = parse_oci("oci://r.example:5000/a/cilium@sha256:" + "f" * 64)
        assert not isinstance(parsed, str)
        assert parsed.registry == "r.example:5000" and parsed.repository == "a/cilium"
