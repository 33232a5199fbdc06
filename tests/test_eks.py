"""EKS without kube-proxy and without the VPC CNI: what the component asks AWS for, and in
which order.

Each test builds an ``EksCluster`` the way infra/program.py does (constructor, a Cilium release
on its provider, ``add_node_groups``, ``add_addons``) under the offline plan's own mocks and
recording monitor (infra/mocks.py, through the ``build_eks`` fixture of tests/conftest.py), and
asserts on the inputs and options each resource was registered with, as the engine would
receive them. The clusters come from tests/fixtures/eks-clusters.yaml, a stack file in the
shape of Pulumi.<stack>.yaml.

Elsewhere: node groups, launch templates and user data in tests/test_eks_nodes.py, the config
the component refuses in tests/test_eks_config.py, the whole program on the real stacks in
tests/test_plan.py.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable

import pytest

from components.common import type_token
from components.eks import CILIUM_OPERATOR_ENI_ACTIONS
from tests.cluster_builds import EksBuilt, eks
from tests.cluster_builds import eks_raw as raw_cluster
from tests.recording import is_secret

COMPONENT = type_token("aws", "EksCluster")
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ADDON = "aws:eks/addon:Addon"
SUBNET = "aws:ec2/subnet:Subnet"
K8S_PROVIDER = "pulumi:providers:kubernetes"
RELEASE = "kubernetes:helm.sh/v3:Release"

Build = Callable[..., EksBuilt]


@pytest.fixture
def build(build_eks: Build) -> Build:
    return build_eks


# --- component: no kube-proxy, no VPC CNI ------------------------------------------------------


class TestNoKubeProxyNoVpcCni:
    """EKS installs none of its bootstrap add-ons: Cilium replaces vpc-cni and kube-proxy."""

    @pytest.mark.parametrize("name", ["eks-vpc", "eks-subnets"])
    def test_control_plane_without_bootstrap_addons(self, name: str, build: Build) -> None:
        cluster = build(eks(name)).cluster
        assert cluster.inputs["bootstrapSelfManagedAddons"] is False, cluster.urn
        assert cluster.inputs["version"] == "1.32", cluster.urn
        assert cluster.inputs["accessConfig"] == {
            "authenticationMode": "API",
            "bootstrapClusterCreatorAdminPermissions": True,
        }

    def test_only_coredns_and_the_configured_addons(self, build: Build) -> None:
        built = build(eks())
        names = sorted(a.inputs["addonName"] for a in built.addons)
        assert names == ["aws-ebs-csi-driver", "coredns", "eks-pod-identity-agent"]
        ebs = built.named(ADDON, "eks-vpc-aws-ebs-csi-driver")
        assert ebs.inputs["addonVersion"] == "v1.37.0-eksbuild.1"
        coredns = built.named(ADDON, "eks-vpc-coredns")
        assert "addonVersion" not in coredns.inputs  # EKS picks the default for the version
        for addon in built.addons:
            assert addon.inputs["clusterName"] == "eks-vpc", addon.urn
            assert addon.inputs["resolveConflictsOnCreate"] == "OVERWRITE", addon.urn

    def test_default_cluster_gets_coredns_alone(self, build: Build) -> None:
        assert [a.inputs["addonName"] for a in build(eks("eks-subnets")).addons] == ["coredns"]

    def test_nodes_get_no_cni_policy(self, build: Build) -> None:
        """Without the VPC CNI the nodes need no AmazonEKS_CNI_Policy; Cilium's operator holds
        the ENI permissions instead."""
        built = build(eks())
        policies = {
            a.inputs["policyArn"].rsplit("/", 1)[-1]
            for a in built.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if a.inputs["role"] == built.role("node-role").outputs["name"]
        }
        assert policies == {
            "AmazonEKSWorkerNodePolicy",
            "AmazonEC2ContainerRegistryReadOnly",
            "AmazonSSMManagedInstanceCore",
        }


# --- component: bootstrap order ----------------------------------------------------------------


class TestBootstrapOrder:
    """Control plane -> Cilium (no wait) -> node groups -> add-ons: a managed node group only
    turns ACTIVE once a CNI runs on its nodes (terraform-aws-eks #3106, #3139, #1972)."""

    def test_constructor_creates_no_nodes_and_no_addons(self, build: Build) -> None:
        """Nothing that needs a node exists until the program adds it after the CNI."""
        built = build(eks(), stage="cluster")
        assert built.cluster and built.one(K8S_PROVIDER)
        assert not built.groups and not built.addons
        assert not built.of_type(LAUNCH_TEMPLATE)

    def test_node_groups_wait_for_the_cni(self, build: Build) -> None:
        built = build(eks())
        release = built.one(RELEASE)
        assert built.groups
        for group in built.groups:
            assert release.urn in group.dependencies, group.urn

    def test_node_groups_wait_for_their_role_policies(self, build: Build) -> None:
        built = build(eks())
        attachments = {
            a.urn
            for a in built.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if a.name.startswith("eks-vpc-node-")
        }
        assert len(attachments) == 3
        for group in built.groups:
            assert attachments <= set(group.dependencies), group.urn

    def test_addons_wait_for_every_node_group(self, build: Build) -> None:
        built = build(eks())
        groups = {g.urn for g in built.groups}
        for addon in built.addons:
            assert groups <= set(addon.dependencies), addon.urn

    def test_provider_and_release_need_no_node(self, build: Build) -> None:
        """The CNI goes through the provider before any node exists: a provider that waited
        for the node groups would deadlock the bootstrap."""
        built = build(eks())
        groups = {g.urn for g in built.groups}
        provider = built.one(K8S_PROVIDER)
        assert not groups & set(provider.dependencies)
        assert not groups & set(built.one(RELEASE).dependencies)


# --- component: control plane ------------------------------------------------------------------


class TestControlPlane:
    """Private API access always, public only for listed ranges, encrypted Secrets, all logs."""

    def test_public_endpoint_limited_to_allowed_cidrs(self, build: Build) -> None:
        vpc = build(eks()).cluster.inputs["vpcConfig"]
        assert vpc["endpointPrivateAccess"] is True
        assert vpc["endpointPublicAccess"] is True
        assert vpc["publicAccessCidrs"] == ["203.0.113.0/24", "198.51.100.7/32"]

    def test_private_only_endpoint(self, build: Build) -> None:
        vpc = build(eks("eks-subnets")).cluster.inputs["vpcConfig"]
        assert vpc["endpointPrivateAccess"] is True
        assert vpc["endpointPublicAccess"] is False
        assert "publicAccessCidrs" not in vpc

    def test_secrets_encrypted_with_a_rotating_key(self, build: Build) -> None:
        built = build(eks())
        key = built.one("aws:kms/key:Key")
        assert key.inputs["enableKeyRotation"] is True
        assert key.inputs["region"] == "eu-west-1"
        assert built.cluster.inputs["encryptionConfig"] == {
            "provider": {"keyArn": key.outputs["arn"]},
            "resources": ["secrets"],
        }

    def test_every_control_plane_log(self, build: Build) -> None:
        logs = build(eks()).cluster.inputs["enabledClusterLogTypes"]
        assert set(logs) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}

    def test_service_range_and_region(self, build: Build) -> None:
        cluster = build(eks()).cluster.inputs
        assert cluster["kubernetesNetworkConfig"] == {"serviceIpv4Cidr": "172.20.0.0/16"}
        assert cluster["region"] == "eu-west-1" and cluster["name"] == "eks-vpc"

    def test_cluster_role_is_attached_before_the_cluster(self, build: Build) -> None:
        built = build(eks())
        role = built.role("cluster-role")
        assume = json.loads(role.inputs["assumeRolePolicy"])
        assert assume["Statement"][0]["Principal"] == {"Service": "eks.amazonaws.com"}
        assert built.cluster.inputs["roleArn"] == role.outputs["arn"]
        policy = built.named(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "eks-vpc-cluster-policy"
        )
        assert policy.inputs["policyArn"].endswith("/AmazonEKSClusterPolicy")
        assert policy.urn in built.cluster.dependencies


class TestProtection:
    """What a mistaken change must not delete is protected in prod; staging can opt in."""

    def test_prod_protects_cluster_key_and_node_groups(self, build: Build) -> None:
        built = build(eks(), environment="prod")
        assert built.cluster.inputs["deletionProtection"] is True
        for res in [built.cluster, built.one("aws:kms/key:Key"), *built.groups]:
            assert res.protect is True, res.urn

    def test_staging_protects_nothing_by_default(self, build: Build) -> None:
        built = build(eks())
        assert built.cluster.inputs["deletionProtection"] is False
        assert not [r.urn for r in built.recording.resources if r.protect]

    def test_explicit_settings_win(self, build: Build) -> None:
        built = build(eks(deletionProtection=True, protect=True))
        assert built.cluster.inputs["deletionProtection"] is True
        assert built.cluster.protect is True
        unprotected = build(eks(protect=False), environment="prod")
        assert not [r.urn for r in unprotected.recording.resources if r.protect]


# --- component: network ------------------------------------------------------------------------


class TestNetwork:
    """A VPC with a public and a private subnet per zone, NAT per zone, or the given subnets."""

    def test_subnets_per_zone_inside_the_vpc(self, build: Build) -> None:
        config = eks()
        built = build(config)
        vpc = ipaddress.ip_network(config.network.vpc_cidr)
        subnets = built.of_type(SUBNET)
        zones = config.network.availability_zones
        assert sorted(s.name for s in subnets) == sorted(
            f"eks-vpc-{kind}-{zone}" for kind in ("public", "private") for zone in zones
        )
        ranges = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in subnets]
        for net in ranges:
            assert net.subnet_of(vpc), net  # type: ignore[arg-type]
        for i, a in enumerate(ranges):
            for b in ranges[i + 1 :]:
                assert not a.overlaps(b), (a, b)

    def test_pods_get_the_big_private_subnets(self, build: Build) -> None:
        """In ENI mode every pod takes a private-subnet address: those get /19s of a /16."""
        built = build(eks())
        for subnet in built.of_type(SUBNET):
            prefix = ipaddress.ip_network(subnet.inputs["cidrBlock"]).prefixlen
            if "-private-" in subnet.name:
                assert prefix == 19, subnet.urn
                assert subnet.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1"
            else:
                assert prefix == 22, subnet.urn
                assert subnet.inputs["tags"]["kubernetes.io/role/elb"] == "1"
                assert subnet.inputs["mapPublicIpOnLaunch"] is False, subnet.urn

    def test_cluster_and_nodes_use_the_private_subnets(self, build: Build) -> None:
        built = build(eks())
        private = sorted(s.id for s in built.of_type(SUBNET) if "-private-" in s.name)
        assert sorted(built.cluster.inputs["vpcConfig"]["subnetIds"]) == private
        for group in built.groups:
            assert sorted(group.inputs["subnetIds"]) == private, group.urn

    def test_private_subnets_reach_out_through_their_zones_nat(self, build: Build) -> None:
        built = build(eks())
        nats = {n.name: n for n in built.of_type("aws:ec2/natGateway:NatGateway")}
        assert len(nats) == 3
        for zone in ("eu-west-1a", "eu-west-1b", "eu-west-1c"):
            table = built.named("aws:ec2/routeTable:RouteTable", f"eks-vpc-private-rt-{zone}")
            assert table.inputs["routes"] == [
                {"cidrBlock": "0.0.0.0/0", "natGatewayId": nats[f"eks-vpc-nat-{zone}"].id}
            ]
            public = built.named(SUBNET, f"eks-vpc-public-{zone}")
            assert nats[f"eks-vpc-nat-{zone}"].inputs["subnetId"] == public.id

    def test_given_subnets_are_used_not_created(self, build: Build) -> None:
        built = build(eks("eks-subnets"))
        for typ in ("vpc:Vpc", "subnet:Subnet", "natGateway:NatGateway", "eip:Eip"):
            assert not built.of_type(f"aws:ec2/{typ}"), typ
        given = ["subnet-0aaa1111bbbb2222c", "subnet-0ddd3333eeee4444f"]
        assert built.cluster.inputs["vpcConfig"]["subnetIds"] == given
        assert built.group("general").inputs["subnetIds"] == given


# --- component: IAM ----------------------------------------------------------------------------


class TestCiliumOperatorRole:
    """The Cilium operator manages ENIs through IRSA; only its service account may assume it."""

    def test_trust_is_the_operator_service_account_only(self, build: Build) -> None:
        built = build(eks())
        oidc = built.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
        issuer = built.cluster.outputs["identities"][0]["oidcs"][0]["issuer"]
        assert oidc.inputs["url"] == issuer
        assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
        (statement,) = json.loads(built.role("cilium-operator").inputs["assumeRolePolicy"])[
            "Statement"
        ]
        host = issuer.removeprefix("https://")
        assert statement["Principal"] == {"Federated": oidc.outputs["arn"]}
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"] == {
            "StringEquals": {
                f"{host}:sub": "system:serviceaccount:kube-system:cilium-operator",
                f"{host}:aud": "sts.amazonaws.com",
            }
        }

    def test_eni_permissions(self, build: Build) -> None:
        built = build(eks())
        policy = built.one("aws:iam/rolePolicy:RolePolicy")
        assert policy.inputs["role"] == built.role("cilium-operator").id
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]
        assert set(statement["Action"]) == set(CILIUM_OPERATOR_ENI_ACTIONS)
        assert {"ec2:CreateNetworkInterface", "ec2:AssignPrivateIpAddresses"} <= set(
            statement["Action"]
        )
        assert statement["Effect"] == "Allow" and statement["Resource"] == "*"

    def test_role_arn_is_an_output_for_the_release(self, build: Build) -> None:
        built = build(eks())
        outputs = built.component.outputs
        assert outputs["ciliumOperatorRoleArn"] == built.role("cilium-operator").outputs["arn"]


class TestAdminAccess:
    """adminRoleArns become EKS access entries with the cluster-admin policy (no aws-auth)."""

    def test_one_entry_and_association_per_role(self, build: Build) -> None:
        built = build(eks())
        entries = built.of_type("aws:eks/accessEntry:AccessEntry")
        assert sorted(e.inputs["principalArn"] for e in entries) == sorted(
            raw_cluster()["adminRoleArns"]
        )
        for entry in entries:
            (association,) = [
                a
                for a in built.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
                if a.inputs["principalArn"] == entry.inputs["principalArn"]
            ]
            assert association.inputs["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
            assert association.inputs["accessScope"] == {"type": "cluster"}
            assert entry.urn in association.dependencies

    def test_no_roles_no_entries(self, build: Build) -> None:
        assert not build(eks("eks-subnets")).of_type("aws:eks/accessEntry:AccessEntry")


# --- component: access and shape --------------------------------------------------------------


class TestKubeconfig:
    """The provider authenticates with `aws eks get-token` and its kubeconfig is secret."""

    def test_kubeconfig_is_secret_everywhere(self, build: Build) -> None:
        built = build(eks())
        provider = built.one(K8S_PROVIDER)
        assert is_secret(provider.inputs["kubeconfig"]), provider.urn
        assert is_secret(built.component.outputs["kubeconfig"]), built.component.urn

    def test_exec_auth_against_the_cluster(self, build: Build) -> None:
        built = build(eks())
        kubeconfig = built.kubeconfig
        (user,) = kubeconfig["users"]
        assert user["user"]["exec"]["command"] == "aws"
        assert user["user"]["exec"]["args"] == [
            "eks",
            "get-token",
            "--cluster-name",
            "eks-vpc",
            "--region",
            "eu-west-1",
        ]
        assert "token" not in user["user"] and "client-key-data" not in user["user"]
        (cluster,) = kubeconfig["clusters"]
        outputs = built.cluster.outputs
        assert cluster["cluster"]["server"] == outputs["endpoint"]
        assert (
            cluster["cluster"]["certificate-authority-data"]
            == (outputs["certificateAuthority"]["data"])
        )

    def test_api_server_host_has_no_scheme(self, build: Build) -> None:
        """Cilium's k8sServiceHost takes a host, not a URL; the port is 443."""
        built = build(eks())
        outputs = built.component.outputs
        endpoint = built.cluster.outputs["endpoint"]
        assert outputs["apiServerHost"] == endpoint.removeprefix("https://")
        assert "://" not in outputs["apiServerHost"]
        assert outputs["apiServerPort"] == 443


class TestComponentShape:
    """One type-token scheme, every resource parented to the component, real outputs."""

    def test_type_token_and_parenting(self, build: Build) -> None:
        built = build(eks())
        component = built.component
        assert component.urn.endswith(f"::{COMPONENT}::eks-vpc")
        children = [r for r in built.recording.resources if r.custom and r.type != RELEASE]
        assert len(children) > 30
        for res in children:
            assert res.parent == component.urn, res.urn

    def test_registered_outputs(self, build: Build) -> None:
        outputs = build(eks()).component.outputs
        assert set(outputs) == {
            "clusterName",
            "endpoint",
            "apiServerHost",
            "apiServerPort",
            "kubeconfig",
            "ciliumOperatorRoleArn",
        }
        assert outputs["clusterName"] == "eks-vpc"
