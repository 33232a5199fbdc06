"""Containers inside any Kubernetes object, whatever its shape.

A container can reach a cluster through many kinds (Pod, PodTemplate, Deployment, DaemonSet,
StatefulSet, ReplicaSet, ReplicationController, Job, CronJob, a custom resource that embeds a
pod template), through their ``...Patch`` twins (server-side apply patches of an existing
object), through ``...List`` resources and ``v1/List`` objects that wrap several of them, and
through ``yaml/v2`` ConfigGroups given inline objects or YAML text. So containers are found by
shape, not by kind: every ``containers`` / ``initContainers`` / ``ephemeralContainers`` list at
any depth. Kinds known to carry a pod spec are also checked for a spec hidden behind an
unknown value (a pod spec that cannot be read cannot be shown to be pinned).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from ._values import MISSING, is_unknown, lookup

__all__ = [
    "Container",
    "command_words",
    "containers",
    "hidden_pod_specs",
    "kind_of",
    "objects_in",
]

CONTAINER_LISTS: Final = ("initContainers", "containers", "ephemeralContainers")

# Where each pod-bearing kind keeps its pod spec.
POD_SPEC_PATHS: Final = {
    "Pod": "spec",
    "PodTemplate": "template.spec",
    "Deployment": "spec.template.spec",
    "DaemonSet": "spec.template.spec",
    "StatefulSet": "spec.template.spec",
    "ReplicaSet": "spec.template.spec",
    "ReplicationController": "spec.template.spec",
    "Job": "spec.template.spec",
    "CronJob": "spec.jobTemplate.spec.template.spec",
}
_MAX_DEPTH: Final = 40


@dataclass(frozen=True)
class Container:
    """One container found in an object: where, its list, and its fields."""

    path: str
    list_name: str
    name: Any
    image: Any
    data: Any


def command_words(container: Container) -> Iterator[tuple[str, str]]:
    """("command" | "args", word) for each string the container runs; a lone string counts
    as one word (what a binary looks like is judged by the caller)."""
    data = container.data if isinstance(container.data, dict) else {}
    for key in ("command", "args"):
        words = data.get(key)
        for word in words if isinstance(words, list) else [words]:
            if isinstance(word, str):
                yield key, word


def kind_of(resource_type: str) -> tuple[str, str]:
    """(base kind, shape) of a type token: ``kubernetes:apps/v1:DeploymentPatch`` ->
    ("Deployment", "patch"); ``...:PodList`` -> ("Pod", "list"); else (kind, "object")."""
    kind = resource_type.rsplit(":", 1)[-1]
    if kind.endswith("Patch") and kind != "Patch":
        return kind.removesuffix("Patch"), "patch"
    if kind.endswith("List") and kind != "List":
        return kind.removesuffix("List"), "list"
    return kind, "object"


def _yaml_documents(text: str) -> list[Any]:
    import yaml

    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError:
        return []


def containers(props: Any) -> Iterator[Container]:
    """Every container in an object's properties, found by shape (depth first, in key order)."""
    found: list[Container] = []
    _collect(props, "", 0, found)
    return iter(found)


def _collect(props: Any, here: str, depth: int, found: list[Container]) -> None:
    # A plain recursion into a list rather than nested generators: this walks every property
    # of every Kubernetes object for three policies, and most objects hold no container.
    if depth > _MAX_DEPTH:
        return
    if isinstance(props, list):
        for index, item in enumerate(props):
            if isinstance(item, dict | list):
                _collect(item, f"{here}[{index}]", depth + 1, found)
        return
    if not isinstance(props, dict):
        return
    for key, value in props.items():
        if key in CONTAINER_LISTS and isinstance(value, list | str):
            found.extend(_listed(value, f"{here}.{key}" if here else str(key), str(key)))
        elif key == "yaml" and isinstance(value, str):  # yaml/v2 ConfigGroup text
            path = f"{here}.{key}" if here else str(key)
            _collect(_yaml_documents(value), path, depth + 1, found)
        elif isinstance(value, dict | list):
            _collect(value, f"{here}.{key}" if here else str(key), depth + 1, found)


def _listed(value: Any, path: str, list_name: str) -> Iterator[Container]:
    if is_unknown(value):
        yield Container(path, list_name, "(all)", value, value)
        return
    for index, item in enumerate(value if isinstance(value, list) else []):
        if isinstance(item, dict):
            name = item.get("name", index)
            yield Container(f"{path}[{index}]", list_name, name, item.get("image", MISSING), item)
        else:
            yield Container(f"{path}[{index}]", list_name, index, MISSING, item)


def hidden_pod_specs(resource_type: str, props: dict[str, Any]) -> list[tuple[str, Any]]:
    """(path, value) of the pod specs of a pod-bearing kind that cannot be read: unknown, or
    missing from a whole object (a patch may leave the spec out)."""
    kind, shape = kind_of(resource_type)
    spec_path = POD_SPEC_PATHS.get(kind)
    if spec_path is None:
        return []
    if shape == "list":
        items = props.get("items", MISSING)
        if is_unknown(items):
            return [("items", items)]
        found = []
        for index, item in enumerate(items if isinstance(items, list) else []):
            value = lookup(item, spec_path)
            if is_unknown(value) or not isinstance(value, dict):
                found.append((f"items[{index}].{spec_path}", value))
        return found
    value = lookup(props, spec_path)
    if is_unknown(value) or (shape == "object" and not isinstance(value, dict)):
        return [(spec_path, value)]
    if shape == "patch" and value is not MISSING and not isinstance(value, dict):
        return [(spec_path, value)]
    return []


def objects_in(props: Any) -> Iterator[dict[str, Any]]:
    """The object itself and every object it wraps: ``items`` of a List, ``objs`` and YAML
    text of a yaml/v2 ConfigGroup."""
    if not isinstance(props, dict):
        return
    yield props
    for key in ("items", "objs"):
        wrapped = props.get(key)
        for item in wrapped if isinstance(wrapped, list) else []:
            yield from objects_in(item)
    text = props.get("yaml")
    if isinstance(text, str):
        for document in _yaml_documents(text):
            yield from objects_in(document)
