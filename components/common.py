"""Pieces every cluster component shares: the config base model, node pools and the taint.

Kept deliberately small: anything that belongs to one cloud lives in that cloud's module.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components.cloud_names import check_labels
from components.contract import CILIUM_AGENT_NOT_READY_TAINT
from components.pack_rules import load_pack_module

__all__ = [
    "CILIUM_AGENT_NOT_READY_TAINT",
    "SUPPORTED_KUBERNETES_VERSIONS",
    "ConfigModel",
    "EndpointAccess",
    "NodePool",
    "check_cidr",
    "check_kubernetes_version",
    "check_unique_names",
    "field_error",
    "resolve_protect",
    "type_token",
]

# Cilium removes this taint from a node once its agent is ready, so no pod is scheduled onto
# a node whose network Cilium does not yet manage (the managed node pool docs of both clouds
# recommend exactly this taint for a self-managed CNI).
# The taint itself is shared with the policy pack: policies/data/contract.json.

# The product pins Kubernetes 1.32; the next minor is accepted so an upgrade is one config
# change, reviewed like any other.
SUPPORTED_KUBERNETES_VERSIONS = ("1.32", "1.33")


def resolve_protect(protect: bool | None, environment: str) -> bool:
    """Pulumi ``protect`` for what a mistaken change must never delete (clusters, node pools
    and groups, KMS keys, the Cilium release): a cluster's ``protect`` key when set, else on in
    prod. A protected resource makes any plan that would delete or replace it fail, so lifting
    it is a reviewed change (``protect: false``, then ``pulumi up``), never a side effect."""
    return protect if protect is not None else environment == "prod"


def type_token(area: str, name: str) -> str:
    """The one type-token scheme of this project: ``meshless:<area>:<Type>``."""
    return f"meshless:{area}:{name}"


class ConfigModel(BaseModel):
    """Base of every config model: camelCase keys as users write them in Pulumi.<stack>.yaml,
    unknown keys rejected, objects immutable once validated."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=True,
    )


def field_error(field: str, message: str) -> PydanticCustomError:
    """An error from a cross-field rule that points at one field (camelCase, as the user wrote
    it), so the message names `...nodePools[0].minSize` rather than the whole node pool."""
    return PydanticCustomError(
        "meshless_field", message.replace("{", "(").replace("}", ")"), {"field": field}
    )


def check_unique_names(items: Sequence[Any], path: str, scope: str) -> None:
    """Raise a field error at ``<path>[i].name`` for the first name used twice."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.name in seen:
            raise field_error(
                f"{path}[{i}].name",
                f"{item.name!r} is already the name of {path}[{seen[item.name]}]; names must be "
                f"unique within {scope}",
            )
        seen[item.name] = i


def check_cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a valid CIDR block ({exc}); write it like 10.0.0.0/16"
        ) from None
    return str(network)


CidrStr = Annotated[str, Field(description="A CIDR block, e.g. 10.0.0.0/16")]


class EndpointAccess(ConfigModel):
    """Who can reach the Kubernetes API server.

    Private access is always on; public access is either off or limited to allow-listed CIDRs.
    An open endpoint (0.0.0.0/0) is refused here, and the policy pack checks it again.
    """

    public: bool = False
    allowed_cidrs: list[CidrStr] = Field(default_factory=list)

    @field_validator("allowed_cidrs")
    @classmethod
    def _valid_cidrs(cls, value: list[str]) -> list[str]:
        checked = [check_cidr(cidr) for cidr in value]
        for cidr in checked:
            if ipaddress.ip_network(cidr).prefixlen == 0:
                raise ValueError(
                    f"{cidr} opens the API server to the whole internet; list your office or "
                    "VPN ranges instead"
                )
        # The pack's own rule (policies/rules/cidrs.py): refused here exactly as it blocks there.
        reason = load_pack_module("cidrs").open_coverage(checked)
        if reason:
            raise ValueError(
                f"{reason}; the API server would be open to the internet in pieces. List only "
                "your office, VPN and CI ranges"
            )
        seen: set[str] = set()
        for cidr in checked:
            if cidr in seen:
                raise ValueError(f"{cidr} is listed twice; list each range once")
            seen.add(cidr)
        return checked

    @model_validator(mode="after")
    def _public_needs_allow_list(self) -> EndpointAccess:
        if self.public and not self.allowed_cidrs:
            raise field_error(
                "allowedCidrs",
                "a public endpoint needs allowedCidrs (the ranges that may reach the API "
                "server); set public: false for a private-only endpoint",
            )
        return self


class NodePool(ConfigModel):
    """A group of identical worker nodes with autoscaling bounds."""

    name: Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")]
    machine_type: str
    min_size: Annotated[int, Field(ge=0, le=1000)]
    max_size: Annotated[int, Field(ge=1, le=1000)]
    desired_size: Annotated[int | None, Field(ge=0, le=1000)] = None
    disk_size_gb: Annotated[int, Field(ge=20, le=2000)] = 100
    spot: bool = False
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, value: dict[str, str]) -> dict[str, str]:
        problem = check_labels(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _bounds(self) -> NodePool:
        if self.min_size > self.max_size:
            raise field_error(
                "minSize",
                f"must be <= maxSize ({self.min_size} > {self.max_size}); raise maxSize or "
                "lower minSize",
            )
        if self.desired_size is not None and not (
            self.min_size <= self.desired_size <= self.max_size
        ):
            raise field_error(
                "desiredSize",
                f"must lie between minSize ({self.min_size}) and maxSize ({self.max_size}), "
                f"got {self.desired_size}",
            )
        return self

    @property
    def initial_size(self) -> int:
        return self.desired_size if self.desired_size is not None else max(self.min_size, 1)


def check_kubernetes_version(value: str) -> str:
    if value not in SUPPORTED_KUBERNETES_VERSIONS:
        raise ValueError(
            f"Kubernetes {value!r} is not supported; use one of "
            f"{', '.join(SUPPORTED_KUBERNETES_VERSIONS)} (the product targets 1.32)"
        )
    return value
