"""The whole stack config as one typed model, validated before the first resource exists.

Each cluster's model lives next to its component (components/eks.py, components/gke.py); this
module assembles them, adds the rules that span clusters, and turns pydantic's errors into one
line per problem that names the key as the user wrote it in Pulumi.<stack>.yaml.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from components.common import ConfigModel, check_unique_names, field_error
from components.deployer import DeployerConfig, SelfHostedDeployer
from components.eks import EksClusterConfig
from components.gke import GkeClusterConfig
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


class ConfigError(Exception):
    """Invalid stack config: one message per problem, each naming its config path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _known_keys(model: type[BaseModel], into: set[str]) -> set[str]:
    for name, field in model.model_fields.items():
        into.add(field.alias or name)
        for arg in _model_args(field.annotation):
            if arg not in (model,) and issubclass(arg, BaseModel):
                _known_keys(arg, into)
    return into


def _model_args(annotation: Any) -> Iterable[type]:
    """Model classes inside an annotation such as ``list[NodePool] | None``."""
    if isinstance(annotation, type):
        yield annotation
        return
    for arg in getattr(annotation, "__args__", ()):
        yield from _model_args(arg)


_KNOWN_KEYS = _known_keys(StackConfig, set())


def _path(loc: tuple[Any, ...], extra: str | None) -> str:
    out = NAMESPACE
    parts = list(loc)
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
            out += (":" if i == 0 else ".") + str(part)
    if extra:
        separator = ":" if not parts else "."
        out += ("" if extra.startswith("[") else separator) + extra
    return out


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        close = difflib.get_close_matches(key, sorted(_KNOWN_KEYS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "remove it"
        return f"unknown key; {hint} (keys are camelCase, see Pulumi.yaml)"
    if kind == "too_short":
        return "must not be empty; add at least one entry"
    if kind == "missing":
        return "required but missing; add it"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = error.get("ctx") or {}
        tag = str(ctx.get("discriminator", "")).strip("'")
        expected = str(ctx.get("expected_tags", "")).replace("', '", "' or '")
        if kind == "union_tag_not_found":
            return f"needs `{tag}`: {expected}"
        return f"{tag} must be {expected}, got {ctx.get('tag')!r}"
    if kind in ("value_error", "assertion_error"):
        return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "meshless_field":
        return str(error["msg"])
    value = error.get("input")
    shown = (
        json.dumps(value) if isinstance(value, (str, int, float, bool)) else type(value).__name__
    )
    return f"{error['msg']} (got {shown})"


def format_errors(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        extra = (error.get("ctx") or {}).get("field") if error["type"] == "meshless_field" else None
        problems.append(f"{_path(error['loc'], extra)}: {_message(error)}")
    return problems


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the ``meshless:`` namespace (keys without the prefix, values decoded).

    Raises ConfigError listing every problem; nothing is half-accepted.
    """
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None
