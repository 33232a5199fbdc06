"""Where `pulumi up` runs, as typed config: the Kubernetes provider calls each cluster's API
from there, so the deploy rehearsal (policies/rules/rehearsal.py, rule
kubernetes-call-needs-route) checks that the deployer can reach every endpoint, and the deploy
workflow's ``runs-on`` names the same runner (tests/test_workflows.py holds them equal).

Two kinds:
- ``github-hosted``: a GitHub-hosted runner whose egress addresses are fixed (larger runners
  with static IP ranges); every endpoint must be public and allow-list ``egressCidrs``.
- ``self-hosted``: a runner in (or routed to) the clusters' networks, picked by its label;
  ``reaches`` lists the clusters whose private endpoints its network routes to
  (docs/ci.md: prod runner set-up).

The ``Deployer`` component registers nothing in the cloud: it carries the facts into the
resource graph so the policy pack sees them in a real preview as well as offline.
"""

from __future__ import annotations

from typing import Annotated, Literal

import pulumi
from pydantic import Field, field_validator

from components.common import CidrStr, ConfigModel, check_cidr, type_token

__all__ = ["Deployer", "DeployerConfig", "GithubHostedDeployer", "SelfHostedDeployer"]

_LABEL = r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,63}$"


class _Egress(ConfigModel):
    egress_cidrs: list[CidrStr] = Field(default_factory=list)

    @field_validator("egress_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        return [check_cidr(cidr) for cidr in value]


class GithubHostedDeployer(_Egress):
    kind: Literal["github-hosted"]
    runner_label: Annotated[str, Field(pattern=_LABEL)]
    egress_cidrs: Annotated[list[CidrStr], Field(min_length=1)]


class SelfHostedDeployer(_Egress):
    kind: Literal["self-hosted"]
    runner_label: Annotated[str, Field(pattern=_LABEL)]
    reaches: list[str] = Field(default_factory=list)


DeployerConfig = Annotated[GithubHostedDeployer | SelfHostedDeployer, Field(discriminator="kind")]


class Deployer(pulumi.ComponentResource):
    """The deploy runner's facts in the resource graph (no cloud resource)."""

    def __init__(
        self,
        name: str,
        config: GithubHostedDeployer | SelfHostedDeployer,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = config.model_dump(by_alias=True)
        super().__init__(type_token("deploy", "Deployer"), name, props, opts)
        self.register_outputs(props)
