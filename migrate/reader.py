"""Read Istio YAML: files or folders, multi-document, checked against Istio's CRD schemas.

Every document becomes either an ``IstioObject`` (a kind we know, valid for its schema) or an
``Unreadable`` entry naming the file, the document, and the kind and name when they could be
read. One bad document never stops the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from migrate.schemas import istio_errors

__all__ = [
    "KNOWN_KINDS",
    "IstioObject",
    "Unreadable",
    "read_inputs",
]

_NETWORKING = "networking.istio.io"
_SECURITY = "security.istio.io"
_NETWORKING_VERSIONS = ("v1", "v1beta1", "v1alpha3")
_SECURITY_VERSIONS = ("v1", "v1beta1")
# kind -> API group; the kinds this command reads.
KNOWN_KINDS = {
    "VirtualService": _NETWORKING,
    "DestinationRule": _NETWORKING,
    "Gateway": _NETWORKING,
    "ServiceEntry": _NETWORKING,
    "Sidecar": _NETWORKING,
    "AuthorizationPolicy": _SECURITY,
    "PeerAuthentication": _SECURITY,
    "RequestAuthentication": _SECURITY,
}
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class IstioObject:
    """One input document with a readable kind and name. ``known`` is False for kinds this
    command does not migrate (they are listed in the report, nothing more)."""

    file: str
    doc: int  # 1-based document number in the file
    api_version: str
    kind: str
    namespace: str
    name: str
    spec: dict[str, Any] = field(hash=False, compare=False)
    known: bool = True

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def where(self) -> str:
        return f"{self.file} (document {self.doc})"

    @property
    def sort_key(self) -> tuple[str, str, str, str, int]:
        return (self.kind, self.namespace, self.name, self.file, self.doc)


@dataclass(frozen=True)
class Unreadable:
    """A document that could not be read: not YAML, no kind or name, a wrong API version, or
    invalid for its CRD schema."""

    file: str
    doc: int
    kind: str
    name: str
    problems: tuple[str, ...]

    @property
    def message(self) -> str:
        head = f"{self.file} (document {self.doc}): {self.kind or '?'} {self.name or '?'}"
        return f"{head}: " + "; ".join(self.problems)

    @property
    def sort_key(self) -> tuple[str, int]:
        return (self.file, self.doc)


def _files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix in (".yaml", ".yml")
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            yield path


def read_inputs(
    paths: Sequence[Path], display: Any = str
) -> tuple[list[IstioObject], list[Unreadable]]:
    """Every document of every file (folders: their ``*.yaml``/``*.yml``, sorted)."""
    objects: list[IstioObject] = []
    bad: list[Unreadable] = []
    seen: dict[tuple[str, str, str], str] = {}
    for path in _files(paths):
        label = display(path)
        for doc, item in _documents(path, label):
            if isinstance(item, Unreadable):
                bad.append(item)
                continue
            result = _object(label, doc, item)
            if isinstance(result, IstioObject):
                key = (result.kind, result.namespace, result.name)
                if key in seen:
                    bad.append(
                        Unreadable(
                            label,
                            doc,
                            result.kind,
                            f"{result.namespace}/{result.name}",
                            (f"duplicate of {seen[key]}; a cluster holds one object per name",),
                        )
                    )
                    continue
                seen[key] = result.where
                objects.append(result)
            else:
                bad.append(result)
    return objects, bad


def _documents(path: Path, label: str) -> Iterator[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield 1, Unreadable(label, 1, "", "", (f"cannot read: {exc}",))
        return
    doc = 0
    try:
        for data in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            doc += 1
            if data is None:
                doc -= 1  # an empty document (a trailing ---) is not an object
                continue
            yield doc, data
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        yield (
            doc + 1,
            Unreadable(
                label,
                doc + 1,
                "",
                "",
                (f"not valid YAML{line}: {reason}; this and later documents are skipped",),
            ),
        )


def _text(data: dict[str, Any], key: str, default: str = "") -> str:
    value = data.get(key)
    return value if isinstance(value, str) else default


def _object(label: str, doc: int, data: Any) -> IstioObject | Unreadable:
    if not isinstance(data, dict):
        return Unreadable(label, doc, "", "", ("not a Kubernetes object (a mapping)",))
    kind = _text(data, "kind")
    api_version = _text(data, "apiVersion")
    raw_meta = data.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    name = _text(meta, "name")
    namespace = _text(meta, "namespace", "default")
    problems = []
    if not kind or not api_version:
        problems.append("apiVersion and kind are required")
    if not name or not _DNS_NAME.fullmatch(name):
        problems.append(f"metadata.name {name!r} is missing or not a DNS name")
    if not _DNS_NAME.fullmatch(namespace):
        problems.append(f"metadata.namespace {namespace!r} is not a DNS name")
    if problems:
        return Unreadable(label, doc, kind, name, tuple(problems))
    group, _, version = api_version.rpartition("/")
    if kind not in KNOWN_KINDS or group != KNOWN_KINDS[kind]:
        raw_spec = data.get("spec")
        spec = raw_spec if isinstance(raw_spec, dict) else {}
        return IstioObject(label, doc, api_version, kind, namespace, name, spec, known=False)
    versions = _NETWORKING_VERSIONS if group == _NETWORKING else _SECURITY_VERSIONS
    if version not in versions:
        problems.append(
            f"apiVersion {api_version} is not served by Istio; use {group}/{' or '.join(versions)}"
        )
    else:
        problems += istio_errors(kind, data)
    if problems:
        return Unreadable(label, doc, kind, f"{namespace}/{name}", tuple(problems))
    return IstioObject(label, doc, api_version, kind, namespace, name, dict(data.get("spec") or {}))
