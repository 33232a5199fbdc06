"""EKS config: ranges, zones, add-ons and cluster keys that could not work are refused
before anything is created, each naming the config key as the user wrote it and the fix.

Plain pydantic validation through the stack parser, no Pulumi runtime. The clusters come from
tests/fixtures/eks-clusters.yaml; refusals about the nodes (Bottlerocket, unknown instance
types) are in tests/test_eks_nodes.py.
"""

from __future__ import annotations

from infra.config import parse_stack_config
from tests.cluster_builds import EKS_FIXTURE, eks, fixture_stack
from tests.cluster_builds import eks_raw as raw_cluster
from tests.cluster_builds import stack_problem as stack_error

# --- config ------------------------------------------------------------------------------------


class TestFixtureStack:
    """The test stack file is a valid stack of two EKS clusters."""

    def test_parses_as_a_stack(self) -> None:
        config = parse_stack_config(fixture_stack(EKS_FIXTURE))
        assert [c.name for c in config.clusters] == ["eks-vpc", "eks-subnets"]


class TestNetworkConfig:
    """Ranges and zones that could not work are refused before anything is created."""

    def test_zone_outside_the_region(self) -> None:
        cluster = raw_cluster()
        cluster["network"]["availabilityZones"][2] = "us-east-1c"
        problem = stack_error(cluster)
        assert problem.startswith("meshless:clusters[0].network.availabilityZones[2]:")
        assert "eu-west-1" in problem and "eu-west-1a" in problem

    def test_zone_listed_twice(self) -> None:
        cluster = raw_cluster()
        cluster["network"]["availabilityZones"][1] = "eu-west-1a"
        problem = stack_error(cluster)
        assert problem.startswith("meshless:clusters[0].network.availabilityZones[1]:")
        assert "twice" in problem

    def test_one_zone_is_not_enough(self) -> None:
        """EKS needs subnets in at least two zones for the control plane."""
        cluster = raw_cluster()
        cluster["network"]["availabilityZones"] = ["eu-west-1a"]
        assert stack_error(cluster).startswith("meshless:clusters[0].network.availabilityZones:")

    def test_service_range_inside_the_vpc(self) -> None:
        cluster = raw_cluster()
        cluster["network"]["serviceCidr"] = "10.60.128.0/20"
        problem = stack_error(cluster)
        assert problem.startswith("meshless:clusters[0].network.serviceCidr:")
        assert "overlaps vpcCidr" in problem and "172.20.0.0/16" in problem

    def test_vpc_too_small_for_eni_mode(self) -> None:
        cluster = raw_cluster()
        cluster["network"]["vpcCidr"] = "10.60.0.0/24"
        problem = stack_error(cluster)
        assert problem.startswith("meshless:clusters[0].network.vpcCidr:")
        assert "/20" in problem


class TestAddonConfig:
    """Add-ons are named once; CoreDNS is the program's, not the user's."""

    def test_coredns_is_not_configurable(self) -> None:
        cluster = raw_cluster()
        cluster["addons"].append({"name": "coredns"})
        problem = stack_error(cluster)
        assert problem.startswith("meshless:clusters[0].addons[2].name:")
        assert "always installed" in problem and "remove it" in problem

    def test_addon_listed_twice(self) -> None:
        cluster = raw_cluster()
        cluster["addons"].append({"name": "aws-ebs-csi-driver"})
        assert stack_error(cluster).startswith("meshless:clusters[0].addons[2].name:")

    def test_addon_name_shape(self) -> None:
        cluster = raw_cluster()
        cluster["addons"][0]["name"] = "EBS CSI"
        assert stack_error(cluster).startswith("meshless:clusters[0].addons[0].name:")


class TestClusterConfig:
    """Cluster-level keys a user gets wrong, each refused with the key and the fix."""

    def test_admin_role_must_be_a_role_arn(self) -> None:
        cluster = raw_cluster()
        cluster["adminRoleArns"] = ["arn:aws:iam::111122223333:user/alice"]
        assert stack_error(cluster).startswith("meshless:clusters[0].adminRoleArns[0]:")

    def test_unsupported_kubernetes_version(self) -> None:
        problem = stack_error({**raw_cluster(), "kubernetesVersion": "1.30"})
        assert problem.startswith("meshless:clusters[0].kubernetesVersion:")
        assert "1.32" in problem

    def test_default_version_is_132(self) -> None:
        assert eks("eks-subnets").kubernetes_version == "1.32"

    def test_gce_machine_type_on_eks(self) -> None:
        cluster = raw_cluster()
        cluster["nodePools"][1]["machineType"] = "n2-standard-8"
        problem = stack_error(cluster)
        assert problem.startswith("meshless:clusters[0].nodePools[1].machineType:")

    def test_pool_names_unique(self) -> None:
        cluster = raw_cluster()
        cluster["nodePools"][1]["name"] = "general"
        assert stack_error(cluster).startswith("meshless:clusters[0].nodePools[1].name:")


class TestProfilesOnEks:
    """Cilium profiles are checked against the node image's kernel (AL2023 on 1.32: 6.1)."""

    def test_throughput_needs_a_newer_kernel(self) -> None:
        problem = stack_error({**raw_cluster(), "cilium": {"profile": "throughput"}})
        assert problem.startswith("meshless:clusters[0].cilium.profile: cluster eks-vpc")
        assert "6.1" in problem and "nodeKernel" in problem

    def test_node_kernel_override_allows_it(self) -> None:
        config = eks(cilium={"profile": "throughput"}, nodeKernel="6.12")
        assert config.kernel == (6, 12)

    def test_node_image_kernels(self) -> None:
        assert eks().kernel == (6, 1)
        assert eks(
            nodeImage="AL2023_ARM_64_STANDARD",
            nodePools=[{"name": "arm", "machineType": "m7g.large", "minSize": 1, "maxSize": 2}],
        ).kernel == (6, 1)
