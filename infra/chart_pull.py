"""`meshless chart pull`: fetch each OCI chartArchive by manifest digest into the local cache.

A minimal OCI distribution client (the registry API, distribution-spec "pull"): GET the
manifest by digest and check its sha256 is that digest; find the Helm chart layer
(``application/vnd.cncf.helm.chart.content.v1.tar+gzip``, helm pkg/registry/constants.go) and
refuse it, before downloading, unless its digest is the catalog's archive sha256; GET the blob,
check its sha256, write it atomically under the manifest's cache folder
(components/chart_archive.py). The plan and the release then install that file.

Authentication: anonymous or the registry's bearer-token challenge, with basic credentials
from the Docker config (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``, ``auths``
entries; credential helpers are not run). For a registry that needs a helper (ECR,
Artifact Registry), pull with Helm 3.18+ (``helm pull oci://...@sha256:...``, helm/helm#12690)
and point chartArchive at the file instead. Plain HTTP only for a registry on localhost.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Annotated

import typer

from components.chart_archive import OciChart, chart_digest, parse_oci
from infra.config import NAMESPACE, ConfigError, parse_stack_config

__all__ = ["CHART_LAYER", "ChartPullError", "chart_app", "pull"]

CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
_MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json"
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')

chart_app = typer.Typer(help="Chart archives pinned by content (chartArchive).")


class ChartPullError(Exception):
    """A pull that must not be used: ``code`` 2 for a digest mismatch, 1 for the registry."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _basic_auth(registry: str) -> str | None:
    folder = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    try:
        auths = json.loads((Path(folder) / "config.json").read_text())["auths"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    entry = auths.get(registry) or auths.get(f"https://{registry}") or {}
    return entry.get("auth") if isinstance(entry, dict) else None


class _Registry:
    def __init__(self, chart: OciChart) -> None:
        self.chart = chart
        local = chart.registry.split(":")[0] in ("localhost", "127.0.0.1")
        self.base = f"{'http' if local else 'https'}://{chart.registry}/v2/{chart.repository}"
        self.authorization: str | None = None

    def _token(self, challenge: str) -> str:
        scheme, _, params = challenge.partition(" ")
        basic = _basic_auth(self.chart.registry)
        if scheme.lower() == "basic" and basic:
            return f"Basic {basic}"
        fields = dict(_CHALLENGE.findall(params))
        if scheme.lower() != "bearer" or "realm" not in fields:
            raise ChartPullError(
                f"{self.chart.registry} asks for {scheme} credentials; add them to the Docker "
                "config (`docker login`) or pull the chart with helm and use a local chartArchive"
            )
        query = {k: v for k, v in fields.items() if k in ("service", "scope")}
        request = urllib.request.Request(f"{fields['realm']}?{urllib.parse.urlencode(query)}")
        if basic:
            request.add_header("Authorization", f"Basic {basic}")
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        return f"Bearer {body.get('token') or body.get('access_token')}"

    def get(self, path: str, accept: str | None = None) -> bytes:
        for attempt in (0, 1):
            request = urllib.request.Request(f"{self.base}/{path}")
            if accept:
                request.add_header("Accept", accept)
            if self.authorization:
                request.add_header("Authorization", self.authorization)
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    return response.read()
            except urllib.error.HTTPError as exc:
                challenge = exc.headers.get("WWW-Authenticate")
                if exc.code != 401 or attempt or not challenge:
                    raise ChartPullError(
                        f"{request.full_url}: HTTP {exc.code} {exc.reason}"
                    ) from None
                self.authorization = self._token(challenge)
        raise AssertionError("unreachable")


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _chart_layer(manifest: bytes, chart: OciChart) -> str:
    try:
        layers = json.loads(manifest)["layers"]
        found = [layer["digest"] for layer in layers if layer.get("mediaType") == CHART_LAYER]
    except (ValueError, KeyError, TypeError):
        found = []
    if len(found) != 1:
        raise ChartPullError(
            f"{chart.reference} is not a Helm chart (no single {CHART_LAYER} layer)", 2
        )
    return str(found[0])


def pull(chart: OciChart, version: str) -> Path:
    """Fetch, verify and cache the chart; the cached path. Nothing is written on a mismatch."""
    expected = chart_digest(version)
    if expected is None:
        raise ChartPullError(f"Cilium chart {version} has no archive digest in the catalog", 2)
    target = chart.cached(version)
    registry = _Registry(chart)
    manifest = registry.get(f"manifests/{chart.digest}", _MANIFEST_TYPES)
    if _sha256(manifest) != chart.digest:
        raise ChartPullError(
            f"{chart.reference}: the registry returned a manifest with {_sha256(manifest)}, "
            f"not {chart.digest}; refusing it",
            2,
        )
    layer = _chart_layer(manifest, chart)
    if layer != expected:
        raise ChartPullError(
            f"{chart.reference}: its chart archive is {layer} but the catalog records {expected} "
            f"for Cilium chart {version}; it is not the published chart",
            2,
        )
    data = registry.get(f"blobs/{layer}")
    if _sha256(data) != layer:
        raise ChartPullError(f"{chart.reference}: blob {layer} arrived as {_sha256(data)}", 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def _oci_charts(stack_file: Path) -> list[tuple[str, OciChart, str]]:
    from infra.plan import read_stack_file  # the cloud SDKs load only for this command
    from infra.program import raw_config

    config = parse_stack_config(raw_config(read_stack_file(stack_file)))
    found, problems = [], []
    for index, cluster in enumerate(config.clusters):
        settings = cluster.cilium_settings
        source = settings.chart_archive if settings else None
        if settings is None or source is None or not source.startswith("oci://"):
            continue
        parsed = parse_oci(source)
        if isinstance(parsed, str):
            problems.append(f"{NAMESPACE}:clusters[{index}].cilium.chartArchive: {parsed}")
        else:
            found.append((cluster.name, parsed, settings.version))
    if problems:
        raise ConfigError(problems)
    return found


@chart_app.command("pull")
def pull_command(
    stack: Annotated[str, typer.Option(help="Stack: reads Pulumi.<stack>.yaml")] = "staging",
    stack_file: Annotated[
        Path | None, typer.Option(help="Read this stack file instead of Pulumi.<stack>.yaml")
    ] = None,
) -> None:
    """Pull every OCI chartArchive of the stack by digest, verified against the catalog."""
    from infra.cli import _fail
    from infra.plan import PlanInputError, default_stack_file

    try:
        charts = _oci_charts(stack_file or default_stack_file(stack))
    except ConfigError as exc:
        raise _fail(exc.problems) from None
    except PlanInputError as exc:
        raise _fail([str(exc)]) from None
    for name, chart, version in charts:
        try:
            path = pull(chart, version)
        except ChartPullError as exc:
            raise _fail([f"{name}: {exc}"], exc.code) from None
        except OSError as exc:
            raise _fail([f"{name}: {chart.reference}: {exc}"], 1) from None
        typer.echo(f"{name}: {chart.reference} -> {path} (sha256 is the catalog's)")
    if not charts:
        typer.echo("no OCI chartArchive in this stack; nothing to pull")
