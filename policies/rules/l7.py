"""L7 readiness: an L7 rule only works where the proxy that enforces it runs.

HTTP and Kafka rules are enforced by Envoy (our values run it as its own DaemonSet,
``envoy.enabled``); DNS rules by the agent's DNS proxy. Both need the agent's ``l7Proxy``. An
L7 rule on a cluster without them is silently not enforced: traffic is dropped or, worse,
allowed without the L7 check. Hubble relay is how operators see those verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel

from ._policy import Report, Resource, StackReport, of_types, resource_policy, stack_policy
from ._values import describe, is_true, lookup, resource_label
from .cilium import is_cilium_release, is_preflight_only
from .helm_values import effective_values
from .kinds import CCNP, CNP, GKE_CLUSTER, HELM_RELEASE
from .topology import Cluster, Topology, l7_rule_kinds

__all__ = ["HUBBLE_RELAY_ENABLED", "L7_PROXY_READY"]


def _validate_hubble(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    if not is_cilium_release(res.props) or is_preflight_only(res.props):
        return
    values = effective_values(res.props)
    for path in ("hubble.enabled", "hubble.relay.enabled"):
        value = lookup(values, path)
        if not is_true(value):
            report(
                f"{resource_label(res.type, res.name)}: {path} is {describe(value)}; without "
                "Hubble relay nobody can see which flows the L7 policies allow or drop "
                f"(the chart's default for relay is off). Set {path}: true"
            )


HUBBLE_RELAY_ENABLED = resource_policy(
    name="hubble-relay-enabled",
    description=(
        "The Cilium release turns on Hubble and Hubble relay explicitly, so policy verdicts "
        "are observable cluster-wide (what Kiali was for Istio users)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_hubble,
    applies_to=of_types(HELM_RELEASE),
)


def _needed_flags(kinds: set[str]) -> list[str]:
    needed = ["l7Proxy"]
    if kinds - {"dns"}:  # http, kafka, l7proto, or a spec unknown during preview
        needed.append("envoy.enabled")
    return needed


def _check_cluster(cluster: Cluster, kinds: set[str], first: Resource, report: StackReport) -> None:
    where = f"{cluster.label} has L7 rules ({', '.join(sorted(kinds))}, e.g. in '{first.name}')"
    if cluster.mode == "dataplane-v2":
        report(
            f"{where}, but GKE Dataplane V2 has no Envoy of ours and does not enforce L7 "
            "CiliumNetworkPolicy rules. Move L7 rules to a cluster in mode 'cilium'",
            first.urn,
        )
        return
    if not cluster.releases:
        report(
            f"{where}, but no Cilium release runs on it. Add the cluster's Cilium release",
            first.urn,
        )
        return
    for release in cluster.releases:
        values = effective_values(release.props)
        for flag in _needed_flags(kinds):
            value = lookup(values, flag)
            if not is_true(value):
                report(
                    f"{where}, but its Cilium release '{release.name}' has {flag} "
                    f"{describe(value)}, so those rules would not be enforced. Set {flag}: true",
                    release.urn,
                )


def _validate_l7(
    resources: list[Resource], report: StackReport, _config: Mapping[str, Any]
) -> None:
    topology = Topology(resources)
    by_cluster: dict[str, tuple[Cluster, set[str], Resource]] = {}
    for policy in topology.network_policies():
        kinds = l7_rule_kinds(policy.props)
        if not kinds:
            continue
        cluster = topology.owner(policy)
        if cluster is None:
            continue  # network-policies-after-cilium reports policies with no cluster
        _, seen, first = by_cluster.get(cluster.resource.urn, (cluster, set(), policy))
        by_cluster[cluster.resource.urn] = (cluster, seen | kinds, first)
    for cluster, kinds, first in by_cluster.values():
        _check_cluster(cluster, kinds, first, report)


L7_PROXY_READY = stack_policy(
    name="l7-proxy-ready",
    description=(
        "Wherever a CiliumNetworkPolicy has L7 rules (HTTP, Kafka, DNS), that cluster's Cilium "
        "release runs the L7 proxy: l7Proxy true, and Envoy (envoy.enabled) for HTTP/Kafka."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_l7,
    needs_props=of_types(HELM_RELEASE, CNP, CCNP, GKE_CLUSTER),
)
