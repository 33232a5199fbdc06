"""What Helm will install: every Cilium release of a plan rendered with the real chart.

A `pulumi preview` of a Helm release shows a values diff and nothing about the objects the chart
creates (pulumi/pulumi-kubernetes #1701, #3054). The plan knows the chart version and values and
the chart archives are vendored and pinned by sha256 (vendor/PROVENANCE.json), so it renders
each release with the pinned Helm (`helm template`, the same values and namespace, Kubernetes
1.32's version and the API versions the cluster will serve) and writes one YAML per object.

The rendered objects are then held to what the policy pack can only infer from values: every
container image is a catalog reference, cilium-config turns kube-proxy replacement on, and no
kube-proxy object exists. The pack keeps judging the values, because a real preview has no
render.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.catalog import pins_for
from infra.export_format import HELM_RELEASE, StackExport
from infra.manifests import slug
from infra.program import REPO_ROOT

__all__ = [
    "KUBE_VERSION",
    "RenderError",
    "RenderedRelease",
    "chart_archive",
    "check_rendered",
    "find_helm",
    "redact_secret",
    "render_plan",
    "write_rendered",
]

VENDOR = REPO_ROOT / "vendor"
CHARTS = VENDOR / "cilium-chart"
# The clusters run Kubernetes 1.32 (DESIGN.md); charts gate templates on .Capabilities.
KUBE_VERSION = "v1.32.0"
# API versions a cluster serves beyond the built-in ones, by the values that create them: the
# program installs the Gateway API v1.1 CRDs before the release when gatewayAPI is enabled.
_EXTRA_API_VERSIONS = {
    "gatewayAPI.enabled": (
        "gateway.networking.k8s.io/v1",
        "gateway.networking.k8s.io/v1beta1",
        "gateway.networking.k8s.io/v1alpha2",
    ),
}
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


class RenderError(Exception):
    """A release cannot be rendered: Helm or the chart archive is missing or refused."""


@dataclass
class RenderedRelease:
    cluster: str
    urn: str
    name: str
    namespace: str
    version: str
    cloud: str
    values: dict[str, Any]
    objects: list[dict[str, Any]] = field(default_factory=list)
    # What Helm said when it refused the values (the chart's own `fail` checks): the plan is
    # blocked and the gate still reports, rather than stopping at the first refusal.
    error: str | None = None

    @property
    def folder(self) -> str:
        return f"{self.cluster}/{self.name}"


def find_helm() -> Path:
    """The pinned Helm: $MESHLESS_HELM, else the one `make helm` extracts from uv.lock's wheel."""
    given = os.environ.get("MESHLESS_HELM")
    if given:
        path = Path(given)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RenderError(f"MESHLESS_HELM={given} is not an executable file")
        return path
    try:
        from devtools.helm import HelmError, helm_path
    except ImportError:
        raise RenderError(_NO_HELM) from None
    try:
        return helm_path()
    except HelmError as exc:
        raise RenderError(f"{exc}. {_NO_HELM}") from None


_NO_HELM = (
    "rendering the Cilium releases needs the pinned Helm 3.17.2: run `make helm` (or `make plan`, "
    "which does it), or point MESHLESS_HELM at a Helm 3 binary"
)


def _provenance() -> dict[str, Any]:
    return json.loads((VENDOR / "PROVENANCE.json").read_text(encoding="utf-8"))["files"]


def chart_archive(version: str) -> Path:
    """The vendored chart archive of a version, its sha256 checked against PROVENANCE.json."""
    name = f"cilium-chart/cilium-{version}.tgz"
    entry = _provenance().get(name)
    path = VENDOR / name
    if entry is None or not path.is_file():
        raise RenderError(
            f"no vendored chart archive for Cilium {version} (vendor/{name}); add it to "
            "vendor/PROVENANCE.json and run `make vendor`"
        )
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != entry["sha256"]:
        raise RenderError(
            f"vendor/{name} has sha256 {actual}, PROVENANCE.json records {entry['sha256']}; "
            "restore it with `make vendor`"
        )
    return path


def _lookup(data: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _helm_template(helm: Path, release: RenderedRelease) -> list[dict[str, Any]]:
    archive = chart_archive(release.version)
    args = [str(helm), "template", release.name, str(archive)]
    args += ["--namespace", release.namespace, "--kube-version", KUBE_VERSION]
    for values_path, versions in _EXTRA_API_VERSIONS.items():
        if _lookup(release.values, values_path) is True:
            for api_version in versions:
                args += ["--api-versions", api_version]
    with tempfile.TemporaryDirectory() as tmp:
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(json.dumps(release.values), encoding="utf-8")
        args += ["--values", str(values_file)]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        release.error = (
            f"helm template of release {release.name} ({release.cluster}, chart "
            f"{release.version}) failed: {done.stderr.strip()[-2000:]}"
        )
        return []
    return [doc for doc in yaml.load_all(done.stdout, Loader=_LOADER) if isinstance(doc, dict)]


def _releases(export: StackExport) -> Iterator[RenderedRelease]:
    for res in export.of_type(HELM_RELEASE):
        inputs = res.get("inputs") or {}
        if inputs.get("chart") != "cilium":
            continue
        values = inputs.get("values") or {}
        yield RenderedRelease(
            cluster=export.cluster_of(res) or "_stack",
            urn=res["urn"],
            name=str(inputs.get("name") or "cilium"),
            namespace=str(inputs.get("namespace") or "default"),
            version=str(inputs.get("version")),
            cloud="eks" if _lookup(values, "eni.enabled") is True else "gke",
            values=values,
        )


def render_plan(
    export: StackExport | Iterable[dict[str, Any]], helm: Path
) -> list[RenderedRelease]:
    """Every Cilium release of the plan, rendered (Helm processes run side by side)."""
    releases = list(_releases(StackExport.of(export)))
    with ThreadPoolExecutor(max_workers=max(1, min(4, len(releases)))) as pool:
        rendered = list(pool.map(lambda r: _helm_template(helm, r), releases))
    for release, objects in zip(releases, rendered, strict=True):
        release.objects = objects
    return releases


def object_key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('namespace') or '-'}/{meta.get('name')}"


def redact_secret(obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret with each value replaced by its sha256: a diff sees a change, never the value."""
    if obj.get("kind") != "Secret":
        return obj
    redacted = dict(obj)
    for key in ("data", "stringData"):
        if isinstance(obj.get(key), dict):
            redacted[key] = {
                k: f"redacted sha256:{hashlib.sha256(str(v).encode()).hexdigest()[:16]}"
                for k, v in obj[key].items()
            }
    return redacted


def _file_name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    parts = [str(obj.get("kind")), str(meta.get("namespace") or "cluster"), str(meta.get("name"))]
    return "-".join(slug(p) for p in parts) + ".yaml"


def write_rendered(releases: list[RenderedRelease], manifests: Path) -> int:
    """One YAML per rendered object under manifests/<cluster>/<release>/; returns the count."""
    written = 0
    for release in releases:
        folder = manifests / release.folder
        folder.mkdir(parents=True, exist_ok=True)
        for obj in release.objects:
            body = yaml.dump(redact_secret(obj), Dumper=_DUMPER, sort_keys=True)
            (folder / _file_name(obj)).write_text(body, encoding="utf-8")
            written += 1
    return written


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    path = _POD_SPEC_PATHS.get(str(obj.get("kind")), ("spec", "template", "spec"))
    spec: Any = obj
    for key in path:
        spec = spec.get(key) if isinstance(spec, dict) else None
    return spec if isinstance(spec, dict) else None


def _containers(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = _pod_spec(obj)
    if spec is None:
        return
    for field_name in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field_name) or []:
            if isinstance(container, dict):
                yield field_name, container


def _allowed_images(release: RenderedRelease) -> set[str]:
    """Catalog references of the chart version: the upstream repository, or the one the values
    name (a registry mirror, components/registry.py), always with the catalog's digest."""
    allowed = set()
    for path, pin in pins_for(release.version, release.cloud).items():
        repositories = {pin.repository}
        block = _lookup(release.values, path)
        if isinstance(block, dict) and isinstance(block.get("repository"), str):
            mirrored = block["repository"]
            if path == "operator.image":  # the chart appends the cloud variant
                mirrored += pin.repository.removeprefix(
                    str(_lookup(_catalog_block(release.version, path), "repository"))
                )
            repositories.add(mirrored)
        for repository in repositories:
            allowed |= {f"{repository}:{pin.tag}@{pin.digest}", f"{repository}@{pin.digest}"}
    return allowed


def _catalog_block(version: str, path: str) -> dict[str, Any]:
    from components.catalog import load_catalog

    return dict(load_catalog()[version][path])


def check_rendered(release: RenderedRelease) -> list[str]:
    """What the rendered objects get wrong: a non-catalog image, kube-proxy replacement off in
    cilium-config, a kube-proxy object. Each problem names the object and the field."""
    if release.error is not None:
        return [release.error]
    allowed = _allowed_images(release)
    problems = []
    where = f"{release.cluster}/{release.name} (Cilium {release.version})"
    for obj in release.objects:
        key = object_key(obj)
        for field_name, container in _containers(obj):
            image = container.get("image")
            if image not in allowed:
                problems.append(
                    f"{where}: {key} {field_name}[{container.get('name')}].image is {image!r}, "
                    "not a digest-pinned catalog image (policies/data/cilium-images.json)"
                )
            if "kube-proxy" in str(image):
                problems.append(f"{where}: {key} runs kube-proxy ({image})")
        if (obj.get("metadata") or {}).get("name") == "kube-proxy":
            problems.append(f"{where}: {key} is a kube-proxy object; Cilium replaces kube-proxy")
        if (
            obj.get("kind") == "ConfigMap"
            and (obj.get("metadata") or {}).get("name") == "cilium-config"
        ):
            value = (obj.get("data") or {}).get("kube-proxy-replacement")
            if value != "true":
                problems.append(
                    f'{where}: {key} data.kube-proxy-replacement is {value!r}, must be "true"'
                )
    preflight_only = release.values.get("agent") is False  # components/preflight.py
    if not preflight_only and not any(
        o.get("kind") == "ConfigMap" and (o.get("metadata") or {}).get("name") == "cilium-config"
        for o in release.objects
    ):
        problems.append(f"{where}: the chart rendered no cilium-config ConfigMap")
    return problems
