"""GKE config: what a user may not ask of each mode, and ranges that cannot work.

Plain pydantic validation through the stack parser, no Pulumi runtime; each refusal names the
config key as the user wrote it. The clusters come from tests/fixtures/gke-modes.yaml.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from infra.config import parse_stack_config
from tests.cluster_builds import GKE_FIXTURE, fixture_stack, gke, stack_error
from tests.cluster_builds import gke_raw as raw_cluster

# --- config ------------------------------------------------------------------------------------


class TestFixtureStack:
    """The test stack file is a valid stack with one cluster per mode."""

    def test_parses_as_a_stack(self) -> None:
        config = parse_stack_config(fixture_stack(GKE_FIXTURE))
        assert sorted(c.mode for c in config.clusters) == ["cilium", "dataplane-v2"]


class TestDataplaneV2Refusals:
    """Asking Google's managed Cilium for what only our Cilium has is a config error that
    names the cluster and the mode to use instead."""

    @pytest.mark.parametrize(
        "cilium",
        [{"version": "1.16.19"}, {"envoy": True}, {"mutualAuth": True}],
        ids=["version", "envoy", "mutual-auth"],
    )
    def test_cilium_block(self, cilium: dict[str, Any]) -> None:
        cluster = {**raw_cluster("dataplane-v2"), "cilium": cilium}
        message = stack_error(cluster)
        assert "meshless:clusters[0].cilium:" in message
        assert "modes-dpv2" in message and "mode: cilium" in message
        assert next(iter(cilium)) in message  # says what the block asked for

    def test_traffic_policies(self) -> None:
        message = stack_error({**raw_cluster("dataplane-v2"), "trafficPolicies": "traffic/shop"})
        assert "meshless:clusters[0].trafficPolicies:" in message
        assert "modes-dpv2" in message and "mode: cilium" in message

    def test_clusterwide_policy_is_dataplane_v2_only(self) -> None:
        message = stack_error({**raw_cluster("cilium"), "clusterwideNetworkPolicy": True})
        assert "clusterwideNetworkPolicy" in message and "dataplane-v2" in message


class TestProfilesOnGke:
    """Cilium performance profiles are checked against GKE's node kernels and NICs."""

    def test_xdp_latency_profile_refused(self) -> None:
        with pytest.raises(ValidationError, match="XDP"):
            gke("cilium", cilium={"profile": "latency"})

    def test_throughput_needs_a_68_kernel(self) -> None:
        with pytest.raises(ValidationError, match=r"6\.8"):
            gke("cilium", cilium={"profile": "throughput"})  # COS 117: 6.6
        assert gke("cilium", cilium={"profile": "throughput"}, nodeImage="UBUNTU_CONTAINERD")

    def test_node_image_kernels_for_132(self) -> None:
        assert gke("cilium").kernel == (6, 6)
        assert gke("cilium", nodeImage="UBUNTU_CONTAINERD").kernel == (6, 8)
        assert gke("cilium", nodeKernel="6.12").kernel == (6, 12)


class TestNetworkConfig:
    """Overlapping or malformed ranges are refused before anything is created."""

    @pytest.mark.parametrize(
        ("changes", "where"),
        [
            ({"podCidr": "10.28.0.0/14"}, "podCidr"),
            ({"serviceCidr": "10.33.0.0/20"}, "serviceCidr"),
            ({"masterCidr": "10.30.0.16/28"}, "masterCidr"),
        ],
        ids=["pods-over-nodes", "services-over-pods", "master-over-nodes"],
    )
    def test_overlapping_ranges(self, changes: dict[str, str], where: str) -> None:
        cluster = raw_cluster("cilium")
        cluster["network"].update(changes)
        message = stack_error(cluster)
        assert f"meshless:clusters[0].network.{where}:" in message
        assert "overlaps" in message

    def test_master_range_must_be_28(self) -> None:
        cluster = raw_cluster("cilium")
        cluster["network"]["masterCidr"] = "172.16.0.0/24"
        assert "/28" in stack_error(cluster)

    def test_given_network_needs_both_parts(self) -> None:
        cluster = raw_cluster("cilium")
        cluster["network"]["network"] = "corp"
        assert "network.subnetwork" in stack_error(cluster)

    def test_zones_in_region(self) -> None:
        message = stack_error({**raw_cluster("dataplane-v2"), "zones": ["us-east1-b"]})
        assert "meshless:clusters[0].zones[0]:" in message and "europe-west1" in message

    def test_unique_pool_names(self) -> None:
        cluster = raw_cluster("cilium")
        cluster["nodePools"][1]["name"] = "general"
        assert "meshless:clusters[0].nodePools[1].name:" in stack_error(cluster)
