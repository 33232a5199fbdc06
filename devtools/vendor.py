"""The vendored upstream files: check them against vendor/PROVENANCE.json, or refresh them.

Every file under vendor/ (except PROVENANCE.json and README.md) has one entry in
PROVENANCE.json: where it comes from, which version, and its sha256. Three kinds of entry:

- ``url``: downloaded as is (the Cilium chart archives, the CRD schemas);
- ``member``: a file inside a downloaded archive (the chart's values.yaml, values.schema.json);
- ``derived``: built from such a member by code in this module (images-<v>.json: every image
  block of the chart's values.yaml, the facts the digest catalog is checked against).

``check`` (also run by tests/test_vendor.py in ``make test``) needs no network. ``refresh``
downloads every source (or copies it from ``--from DIR``, a folder laid out like vendor/, for a
machine without internet), verifies each sha256 before anything is written, then replaces the
files. A changed upstream file is refused: bumping a version is a reviewed edit of
PROVENANCE.json (new source URL and version, ``"sha256": null``), after which ``refresh``
records the new digest and prints it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

__all__ = ["PROVENANCE", "VENDOR", "check", "derive_images", "load_provenance"]

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "vendor"
PROVENANCE = VENDOR / "PROVENANCE.json"
# Files in vendor/ that describe the others and so carry no provenance entry themselves.
META = {"PROVENANCE.json", "README.md"}
# Keys of a chart image block kept in images-<v>.json: what names the image (pullPolicy and
# override say how to pull it, not which bytes).
IMAGE_KEYS = {"repository", "tag", "digest", "useDigest", "suffix"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_provenance(path: Path = PROVENANCE) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["files"]


def check(vendor: Path = VENDOR) -> list[str]:
    """Every listed file present with its recorded sha256, and nothing unlisted in vendor/."""
    files = load_provenance(vendor / "PROVENANCE.json")
    problems: list[str] = []
    for name, entry in sorted(files.items()):
        path = vendor / name
        if not path.is_file():
            problems.append(f"vendor/{name}: missing (run `make vendor`)")
            continue
        actual = sha256(path.read_bytes())
        if actual != entry.get("sha256"):
            problems.append(
                f"vendor/{name}: sha256 {actual} but PROVENANCE.json records "
                f"{entry.get('sha256')} (restore it with `make vendor`)"
            )
    for path in sorted(p for p in vendor.rglob("*") if p.is_file()):
        name = path.relative_to(vendor).as_posix()
        if name not in files and name not in META and "__pycache__" not in name:
            problems.append(f"vendor/{name}: not in PROVENANCE.json (add its source)")
    return problems


def derive_images(values_yaml: bytes) -> bytes:
    """images-<v>.json from a chart's values.yaml: every block with a ``repository`` and a tag
    or digest, keyed by its dotted values path (the operator keeps its per-cloud digests)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        if isinstance(node.get("repository"), str) and ("digest" in node or "tag" in node):
            found[path] = {k: v for k, v in node.items() if k in IMAGE_KEYS or k.endswith("Digest")}
            return
        for key, value in node.items():
            walk(value, f"{path}.{key}" if path else key)

    walk(yaml.safe_load(values_yaml), "")
    return json.dumps(found, indent=2, sort_keys=True).encode()


DERIVATIONS: dict[str, Callable[[bytes], bytes]] = {"images": derive_images}


def _fetch(url: str, mirror: Path | None, name: str) -> bytes:
    if mirror is not None:
        return (mirror / name).read_bytes()
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.read()
    except OSError as exc:  # URLError included: say which source could not be fetched
        raise OSError(f"cannot download {url} ({exc}); retry, or use VENDOR_FROM=<dir>") from None


def _member(archive: bytes, member: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        extracted = tar.extractfile(member)
        if extracted is None:
            raise KeyError(member)
        return extracted.read()


def build(files: dict[str, dict[str, Any]], mirror: Path | None) -> dict[str, bytes]:
    """The bytes of every vendored file, from upstream (or the mirror folder)."""
    downloads: dict[str, bytes] = {}
    out: dict[str, bytes] = {}
    for name, entry in files.items():
        if "member" in entry or "derived" in entry:
            continue
        downloads[entry["url"]] = out[name] = _fetch(entry["url"], mirror, name)
    for name, entry in files.items():
        if "member" in entry:
            out[name] = _member(downloads[entry["url"]], entry["member"])
    for name, entry in files.items():
        if "derived" in entry:
            how = entry["derived"]
            out[name] = DERIVATIONS[how["by"]](out[how["from"]])
    return out


def refresh(mirror: Path | None = None, vendor: Path = VENDOR) -> list[str]:
    """Rebuild vendor/ from its sources; write nothing unless every sha256 matches."""
    document = json.loads((vendor / "PROVENANCE.json").read_text(encoding="utf-8"))
    files = document["files"]
    built = build(files, mirror)
    problems = [
        (
            f"vendor/{name}: upstream sha256 {sha256(data)} differs from PROVENANCE.json's "
            f"{files[name]['sha256']}; if the change is intended, set its sha256 to null"
        )
        for name, data in sorted(built.items())
        if files[name].get("sha256") not in (None, sha256(data))
    ]
    if problems:
        return problems
    with tempfile.TemporaryDirectory(dir=vendor.parent) as staging:
        for name, data in built.items():
            target = Path(staging) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            if files[name].get("sha256") is None:
                files[name]["sha256"] = sha256(data)
                print(f"recorded vendor/{name} sha256 {files[name]['sha256']}")
        for name in built:
            (vendor / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(Path(staging) / name, vendor / name)
    (vendor / "PROVENANCE.json").write_text(json.dumps(document, indent=2) + "\n")
    return check(vendor)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.vendor", description=__doc__)
    parser.add_argument("action", choices=["check", "refresh"])
    parser.add_argument(
        "--from",
        dest="mirror",
        type=Path,
        help="folder laid out like vendor/ to copy sources from instead of downloading",
    )
    args = parser.parse_args(argv)
    try:
        problems = refresh(args.mirror) if args.action == "refresh" else check()
    except (OSError, KeyError, tarfile.TarError) as error:
        print(f"vendor {args.action}: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"vendor/: {len(load_provenance())} files match PROVENANCE.json")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
