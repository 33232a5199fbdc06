"""The stack-export format, in one place: wire constants, the writer, the reader and an index.

The offline plan writes `out/<stack>/resources.json` in the shape of `pulumi stack export`
(deployment version 3), so the gate, the diff, the call graph and the summary read a plan and
a real stack's export alike. This module is the only one that knows that shape:

- the wire constants (literal values, not imports from pulumi.runtime.rpc where they are
  private, so readers stay pure functions over data; tests/test_plan.py holds them equal to
  the SDK's);
- the writer: recorded resources -> export document in deployment order
  (`export_document`), and the document -> bytes (`write_export`);
- the reader: a file -> a checked `StackExport` (`read_export`), each problem named with the
  file and the JSON path;
- `StackExport`, the indexed view every consumer uses: by URN, children, the cluster that owns
  a resource (the one answer to that question on the program's side), Helm releases per cluster.
"""

from __future__ import annotations

import graphlib
import heapq
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import orjson

if TYPE_CHECKING:  # the mocks import this module; only their type is needed here
    from infra.mocks import RecordedResource

__all__ = [
    "CLUSTER_TYPES",
    "ENCRYPTED_SENTINEL",
    "HELM_RELEASE",
    "REDACTED",
    "RESOURCE_REF_SIG",
    "SECRET_SIG",
    "SIG_KEY",
    "UNKNOWN_SENTINEL",
    "ExportEntry",
    "ExportError",
    "StackExport",
    "cluster_named",
    "document_of",
    "dump_json",
    "entry_of",
    "export_document",
    "is_secret_envelope",
    "parse_export",
    "read_export",
    "write_export",
]

# -- wire constants ---------------------------------------------------------------------------

#: The key that marks a special value (secret, resource reference) in a serialized property.
SIG_KEY = "4dabf18193072939515e22adb298388d"
#: SIG_KEY's value for a secret: `{SIG_KEY: SECRET_SIG, "ciphertext" | "plaintext" | "value": ...}`.
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
#: SIG_KEY's value for a resource reference.
RESOURCE_REF_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
#: A value not known until the resource exists (preview).
UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
#: What the gate hands the pack for a secret whose export holds only ciphertext (the pack's
#: rules/_values.py ENCRYPTED; tests hold the two equal).
ENCRYPTED_SENTINEL = "meshless:encrypted-secret-not-readable"
#: How a secret's plaintext appears in our plan output, and how the diff shows any secret.
REDACTED = "[secret]"

#: The cluster components; every resource of a cluster has one of them as an ancestor.
CLUSTER_TYPES = ("meshless:aws:EksCluster", "meshless:gcp:GkeCluster")
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
CNP_TYPE = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"

#: The version of the deployment format (apitype.DeploymentV3) written and read.
DEPLOYMENT_VERSION = 3


def is_secret_envelope(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


class ExportEntry(TypedDict):
    """One resource of `deployment.resources` (apitype.ResourceV3, the fields we use)."""

    urn: str
    type: str
    custom: NotRequired[bool]
    id: NotRequired[str]
    inputs: NotRequired[dict[str, Any]]
    outputs: NotRequired[dict[str, Any]]
    parent: NotRequired[str]
    provider: NotRequired[str]
    protect: NotRequired[bool]
    retainOnDelete: NotRequired[bool]
    dependencies: NotRequired[list[str]]
    propertyDependencies: NotRequired[dict[str, list[str]]]


class ExportError(ValueError):
    """A stack export that cannot be written or read; the message names the file and the fix."""


# -- the writer -------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    """Mock-monitor values in `pulumi stack export` form (secrets redacted, unknowns marked)."""
    if isinstance(value, str) or value is None or value is True or value is False:
        return value  # the common leaves first: most of a plan is strings
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return {SIG_KEY: SECRET_SIG, "ciphertext": REDACTED}
        if sig == RESOURCE_REF_SIG:
            return value.get("urn", "")
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        # The engine's wire format (protobuf Struct) has only doubles; exports show integers.
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if type(value).__name__ == "Unknown":
        return UNKNOWN_SENTINEL
    return str(value)


def _ordered(resources: Sequence[RecordedResource]) -> list[RecordedResource]:
    """Resources in a stable order that, like a real export, lists every resource after its
    parent, provider and dependencies (registration order under mocks varies run to run):
    among those ready, the smallest URN first. A cycle raises graphlib.CycleError rather than
    silently dropping the resources on it."""
    by_urn = {res.urn: res for res in resources}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for res in resources:
        needs = {res.parent, res.provider.rsplit("::", 1)[0], *res.dependencies}
        sorter.add(res.urn, *(urn for urn in needs if urn in by_urn and urn != res.urn))
    sorter.prepare()
    ready = list(sorter.get_ready())
    heapq.heapify(ready)
    ordered: list[RecordedResource] = []
    while ready:
        urn = heapq.heappop(ready)
        ordered.append(by_urn[urn])
        sorter.done(urn)
        for now_ready in sorter.get_ready():
            heapq.heappush(ready, now_ready)
    return ordered


def cluster_named(res: Mapping[str, Any]) -> str | None:
    """The cluster's name if ``res`` is a cluster component (the last part of its URN), else
    None: where ownership starts (StackExport.cluster_of, the manifest writer)."""
    return res["urn"].rsplit("::", 1)[-1] if res["type"] in CLUSTER_TYPES else None


def entry_of(res: RecordedResource) -> dict[str, Any]:
    """A recorded resource's export entry, made once: the manifest writer takes it while the
    program records and the export reuses it (the monitor forgets it when outputs change)."""
    if res.entry is None:
        res.entry = _entry(res)
    return res.entry


def _entry(res: RecordedResource) -> dict[str, Any]:
    entry: dict[str, Any] = {"urn": res.urn, "custom": res.custom, "type": res.type}
    if res.id:
        entry["id"] = res.id
    entry["inputs"] = _json_value(res.inputs)
    entry["outputs"] = _json_value(res.outputs)
    if res.parent:
        entry["parent"] = res.parent
    if res.provider:
        entry["provider"] = res.provider
    # As `pulumi stack export` writes them (apitype.ResourceV3): present only when true.
    if res.protect:
        entry["protect"] = True
    if res.retain_on_delete:
        entry["retainOnDelete"] = True
    entry["dependencies"] = sorted(set(res.dependencies))
    if res.property_dependencies:
        entry["propertyDependencies"] = {
            k: sorted(set(v)) for k, v in sorted(res.property_dependencies.items())
        }
    return entry


def export_document(stack: str, resources: Sequence[RecordedResource]) -> dict[str, Any]:
    """The plan in the shape of `pulumi stack export` (deployment version 3); ExportError if
    the resources depend on each other in a cycle (no deployment order exists)."""
    try:
        ordered = _ordered(resources)
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1]) if len(exc.args) > 1 else str(exc)
        raise ExportError(
            f"{stack}: resources depend on each other in a cycle, so no deployment order "
            f"exists: {cycle}"
        ) from None
    return document_of([entry_of(res) for res in ordered])


def document_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Export entries wrapped as a `pulumi stack export` document (also what tests build)."""
    return {
        "version": DEPLOYMENT_VERSION,
        "deployment": {
            "manifest": {"time": "offline-plan", "magic": "", "version": "meshless-offline-plan"},
            "resources": resources,
        },
    }


def dump_json(data: Any) -> bytes:
    """JSON with two-space indents and a final newline, as `json.dumps(data, indent=2)` writes
    it for printable ASCII text. orjson, because at 1270 services the standard library's
    indenting encoder (pure Python; its C encoder cannot indent) took 2 s of a plan for 27 MB;
    orjson writes DEL and non-ASCII characters as they are instead of \\u escapes (the same
    JSON)."""
    try:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # orjson.JSONEncodeError: e.g. an integer beyond 64 bits (a 1e300 value)
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def write_export(path: Path, document: Mapping[str, Any]) -> None:
    path.write_bytes(dump_json(document))


# -- the reader -------------------------------------------------------------------------------


def _entry_problem(index: int, res: Any) -> str | None:
    where = f"deployment.resources[{index}]"
    if not isinstance(res, dict):
        return f"{where} is not an object"
    for key in ("urn", "type"):
        if not isinstance(res.get(key), str) or not res[key]:
            return f"{where} has no {key!r} string"
    for key in ("inputs", "outputs"):
        if key in res and res[key] is not None and not isinstance(res[key], dict):
            return f"{where}.{key} is not an object"
    for key in ("parent", "provider"):
        if res.get(key) is not None and not isinstance(res[key], str):
            return f"{where}.{key} is not a string"
    if not isinstance(res.get("dependencies", []) or [], list):
        return f"{where}.dependencies is not a list"
    return None


def parse_export(data: Any, source: str) -> StackExport:
    """A loaded `pulumi stack export` document, shape-checked; ExportError names ``source``."""
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("deployment"), dict)
        or "version" not in data
    ):
        raise ExportError(
            f'{source}: not a stack export: expected {{"version": 3, "deployment": '
            '{"resources": [...]}} (the output of `pulumi stack export`)'
        )
    if data.get("version") != DEPLOYMENT_VERSION:
        raise ExportError(
            f"{source}: stack export version is {data.get('version')!r}; only version "
            f"{DEPLOYMENT_VERSION} is read (export it with a current Pulumi CLI)"
        )
    resources = data["deployment"].get("resources")
    if resources is None:
        resources = []
    if not isinstance(resources, list):
        raise ExportError(f"{source}: deployment.resources is not a list")
    live: dict[str, int] = {}
    for index, res in enumerate(resources):
        problem = _entry_problem(index, res)
        if problem:
            raise ExportError(f"{source}: {problem}")
        # The engine keeps one live resource per URN; a second entry of that URN is only ever
        # the old one of a replacement, marked `"delete": true` ("Delete is true when the
        # resource should be deleted during the next update", pulumi/pulumi
        # sdk/go/common/apitype/core.go, ResourceV3).
        if res.get("delete") is True:
            continue
        if res["urn"] in live:
            raise ExportError(
                f"{source}: deployment.resources[{index}] repeats the URN of "
                f"deployment.resources[{live[res['urn']]}] ({res['urn']}); a stack holds one "
                "resource per URN, so this is not a `pulumi stack export` as the engine writes it"
            )
        live[res["urn"]] = index
    return StackExport(resources)


def read_export(path: Path, what: str = "stack export") -> StackExport:
    """The one reader of a `pulumi stack export` file or a plan's resources.json."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ExportError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ExportError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ExportError(f"{path}: {what} is not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ExportError(
            f"{path}: {what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise ExportError(
            f"{path}: {what} nests arrays or objects deeper than the JSON reader follows; a "
            "`pulumi stack export` never does, so export the stack again"
        ) from None
    return parse_export(document, str(path))


# -- the indexed view -------------------------------------------------------------------------


class StackExport:
    """The resources of one export, indexed: ``export.by_urn[urn]``, ``export.children(urn)``,
    ``export.cluster_of(res)``, ``export.owners`` (URN -> cluster), ``export.releases()``.

    Built once per plan and handed to every consumer, so "which cluster owns this resource"
    has one answer computed once (each ancestor chain is walked at most once)."""

    def __init__(self, resources: Iterable[Mapping[str, Any]]) -> None:
        self.resources: list[dict[str, Any]] = [
            r if isinstance(r, dict) else dict(r) for r in resources
        ]
        # A resource being replaced may also appear as its old self, marked for deletion: the
        # live entry is the one a URN names.
        self.by_urn: dict[str, dict[str, Any]] = {
            r["urn"]: r for r in self.resources if r.get("delete") is not True
        }
        # Computed up front (one walk per ancestor chain): the plan's threads share the index.
        self.owners: dict[str, str | None] = self._owners()

    @cached_property
    def live(self) -> list[dict[str, Any]]:
        """The resources the stack holds after its next update: not the old half of a
        replacement that is marked for deletion."""
        return [r for r in self.resources if r.get("delete") is not True]

    @classmethod
    def of(cls, resources: StackExport | Iterable[Mapping[str, Any]]) -> StackExport:
        """``resources`` as an index (itself when it already is one)."""
        return resources if isinstance(resources, StackExport) else cls(resources)

    def __len__(self) -> int:
        return len(self.resources)

    def __iter__(self) -> Any:
        return iter(self.resources)

    @cached_property
    def _children(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for res in self.resources:
            if res.get("parent"):
                out[res["parent"]].append(res)
        return out

    def children(self, urn: str) -> list[dict[str, Any]]:
        """The resources whose parent is ``urn``, in export order."""
        return list(self._children.get(urn, ()))

    def _owners(self) -> dict[str, str | None]:
        """URN -> the name of its nearest cluster component ancestor (None: outside clusters)."""
        owners: dict[str, str | None] = {}
        for res in self.resources:
            chain: list[str] = []
            current: dict[str, Any] | None = res
            owner: str | None = None
            while current is not None:
                urn = current["urn"]
                if urn in owners:
                    owner = owners[urn]
                    break
                chain.append(urn)
                owner = cluster_named(current)
                if owner is not None:
                    break
                parent = current.get("parent")
                current = self.by_urn.get(parent) if parent else None
                if current is not None and current["urn"] in chain:
                    break  # a parent cycle (a hand-made export): no cluster, no endless walk
            for urn in chain:
                owners[urn] = owner
        return owners

    def cluster_of(self, resource: Mapping[str, Any] | str) -> str | None:
        """The cluster that owns a resource (or URN): its nearest cluster component ancestor."""
        urn = resource if isinstance(resource, str) else resource["urn"]
        return self.owners.get(urn)

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] in types]

    def releases(self) -> dict[str, list[dict[str, Any]]]:
        """Helm releases per owning cluster ("_stack" for one outside every cluster)."""
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for res in self.of_type(HELM_RELEASE):
            out[self.cluster_of(res) or "_stack"].append(res)
        return dict(out)

    def by_cluster(self, type_: str, outside: str = "_stack") -> dict[str, list[dict[str, Any]]]:
        """The inputs of every resource of ``type_``, per owning cluster."""
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for res in self.of_type(type_):
            out[self.cluster_of(res) or outside].append(res.get("inputs") or {})
        return dict(out)
