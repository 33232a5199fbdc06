"""The whole stack config as one typed model, validated before the first resource exists.

Each cluster's model lives next to its component (components/eks/config.py,
components/gke/config.py); this module assembles them, adds the rules that span clusters, and
turns pydantic's errors into one line per problem that names the key as the user wrote it in
Pulumi.<stack>.yaml.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from components.common import ConfigModel, check_unique_names, field_error
from components.deployer import DeployerConfig, SelfHostedDeployer
from components.eks import EksClusterConfig
from components.gke import GkeClusterConfig
from components.pydantic_errors import describe_error, shorten
from components.registry import RegistryMirror

__all__ = [
    "NAMESPACE",
    "ClusterConfig",
    "ConfigError",
    "StackConfig",
    "parse_stack_config",
]

NAMESPACE = "meshless"

ClusterConfig = Annotated[EksClusterConfig | GkeClusterConfig, Field(discriminator="cloud")]


class StackConfig(ConfigModel):
    """Everything under the ``meshless:`` namespace of one stack."""

    environment: Literal["staging", "prod"]
    clusters: Annotated[list[ClusterConfig], Field(min_length=1)]
    # Where `pulumi up` runs (components/deployer.py); unset: the rehearsal cannot judge routes.
    deployer: DeployerConfig | None = None
    # Registry mirror for every cluster's Cilium images (a cluster's cilium.imageMirror wins).
    image_mirror: RegistryMirror | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> StackConfig:
        check_unique_names(self.clusters, "clusters", "a stack")
        names = {c.name for c in self.clusters}
        if isinstance(self.deployer, SelfHostedDeployer):
            for i, name in enumerate(self.deployer.reaches):
                if name not in names:
                    raise field_error(
                        f"deployer.reaches[{i}]",
                        f"{name!r} is not a cluster of this stack; use one of {sorted(names)}",
                    )
        return self

    @model_validator(mode="after")
    def _cilium_cluster_identity(self) -> StackConfig:
        """What the chart's templates/validate.yaml refuses (checked in the 1.16.19 and
        1.17.18 archives): a cluster.name over 32 characters, and in ENI mode a cluster.id of
        128-255 (cilium/cilium#21330). ClusterMesh tells members apart by cluster.id and
        cluster.name, so two members with one id would share identities
        (https://docs.cilium.io/en/v1.16/network/clustermesh/clustermesh/#prerequisites)."""
        seen: dict[int, int] = {}
        for i, cluster in enumerate(self.clusters):
            settings = cluster.cilium_settings
            if settings is None:
                continue
            if len(cluster.name) > 32:
                raise field_error(
                    f"clusters[{i}].name",
                    f"{cluster.name!r} is {len(cluster.name)} characters; the Cilium chart "
                    "refuses cluster names over 32. Shorten it",
                )
            if cluster.cloud == "eks" and 128 <= settings.cluster_id <= 255:
                raise field_error(
                    f"clusters[{i}].cilium.clusterId",
                    f"{settings.cluster_id} is refused by the Cilium chart in ENI mode (policy "
                    "drops with ids 128-255, cilium/cilium#21330); pick an id from 1 to 127",
                )
            if not settings.cluster_mesh:
                continue
            if settings.cluster_id in seen:
                raise field_error(
                    f"clusters[{i}].cilium.clusterId",
                    f"{settings.cluster_id} is already the clusterId of clusters[{seen[settings.cluster_id]}]; "
                    "every ClusterMesh member needs its own id (1-255)",
                )
            seen[settings.cluster_id] = i
        return self


class ConfigError(Exception):
    """Invalid stack config: one message per problem, each naming its config path."""

    def __init__(self, problems: list[str]) -> None:
        # Whatever a rule quotes from the input, a message stays readable: long runs (a
        # 5000-character zone name, a pasted blob) are cut, with their length.
        problems = [_LONG_RUN.sub(lambda m: shorten(m.group(0)), p) for p in problems]
        super().__init__("\n".join(problems))
        self.problems = problems


def _known_keys(model: type[BaseModel], into: set[str], models: set[str]) -> set[str]:
    models.add(model.__name__)
    for name, field in model.model_fields.items():
        into.add(field.alias or name)
        for arg in _model_args(field.annotation):
            if arg not in (model,) and issubclass(arg, BaseModel):
                _known_keys(arg, into, models)
    return into


def _model_args(annotation: Any) -> Iterable[type]:
    """Model classes inside an annotation such as ``list[NodePool] | None``."""
    if isinstance(annotation, type):
        yield annotation
        return
    for arg in getattr(annotation, "__args__", ()):
        yield from _model_args(arg)


_MODEL_NAMES: set[str] = set()
_KNOWN_KEYS = _known_keys(StackConfig, set(), _MODEL_NAMES)
# Steps pydantic adds to an error's location for union members and validators
# ("literal['a','b']", "function-after[...]", "bool", "EksClusterConfig"): users never wrote them.
_INTERNAL_STEP = re.compile(
    r"^(function-\w+|literal|list|dict|set|tuple|json-or-python|tagged-union|union|"
    r"lax-or-strict|nullable|default|chain|is-instance|constrained-\w+|model-\w+)\["
)
_TYPE_STEPS = frozenset({"bool", "int", "str", "float", "none", "bytes", "list", "dict"})
# A quoted value without spaces (a pasted blob, a repeated version); prose between two
# apostrophes ("Cilium's ... Bottlerocket's") has spaces and is left alone.
_LONG_QUOTED = re.compile(r"'([^'\s]{70,})'|\"([^\"\s]{70,})\"")
_LONG_RUN = re.compile(r"[^\s'\"]{120,}")


def _is_internal_step(part: str) -> bool:
    return bool(_INTERNAL_STEP.match(part)) or part in _TYPE_STEPS or part in _MODEL_NAMES


def _shorten_quoted(message: str) -> str:
    """Values quoted inside a message, cut to a readable length."""
    return _LONG_QUOTED.sub(lambda m: repr(shorten(m.group(1) or m.group(2) or "")), message)


def _path(loc: tuple[Any, ...], extra: str | None) -> str:
    out = NAMESPACE
    parts = [p for p in loc if not (isinstance(p, str) and _is_internal_step(p))]
    # A discriminated union puts the tag ("eks"/"gke", the deployer's kind) into the location;
    # users never wrote it.
    if len(parts) > 2 and parts[0] == "clusters" and parts[2] in ("eks", "gke"):
        del parts[2]
    if len(parts) > 1 and parts[0] == "deployer" and parts[1] in ("github-hosted", "self-hosted"):
        del parts[1]
    for i, part in enumerate(parts):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += (":" if i == 0 else ".") + shorten(str(part))
    if extra:
        separator = ":" if not parts else "."
        out += ("" if extra.startswith("[") else separator) + extra
    return out


def _unknown_key(error: Mapping[str, Any]) -> str:
    key = str(error["loc"][-1])
    camel = to_camel(key)
    close = [camel] if camel in _KNOWN_KEYS and camel != key else []
    close = close or difflib.get_close_matches(key, sorted(_KNOWN_KEYS), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "remove it"
    return f"unknown key; {hint} (keys are camelCase, see Pulumi.yaml)"


def _message(error: Mapping[str, Any]) -> str:
    return describe_error(error, _unknown_key)


def format_errors(exc: ValidationError) -> list[str]:
    """One line per config path; a union's alternatives are joined into one line."""
    by_path: dict[str, list[str]] = {}
    for error in exc.errors():
        extra = (error.get("ctx") or {}).get("field") if error["type"] == "meshless_field" else None
        loc = tuple(error["loc"])
        message = _message(error)
        if loc and loc[-1] == "[key]":
            loc, message = loc[:-1], f"this key is not allowed: {message}"
        path = _path(loc, extra)
        messages = by_path.setdefault(path, [])
        message = _shorten_quoted(message)
        if message not in messages:
            messages.append(message)
    return [f"{path}: {'; or '.join(messages)}" for path, messages in by_path.items()]


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the ``meshless:`` namespace (keys without the prefix, values decoded).

    Raises ConfigError listing every problem; nothing is half-accepted.
    """
    try:
        # Keys only as documented (camelCase aliases): `node_pools` is an unknown key, not a
        # second spelling of `nodePools`.
        return StackConfig.model_validate(dict(raw), by_alias=True, by_name=False)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None
