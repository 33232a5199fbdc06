"""GKE in two honest modes: what the component asks GCP for.

Each test builds a ``GkeCluster`` under the offline plan's own mocks and recording monitor
(infra/mocks.py, through the ``build_gke`` fixture of tests/conftest.py) and asserts on the
inputs each resource was registered with, as the engine would receive them. Both modes come
from tests/fixtures/gke-modes.yaml, a stack file in the shape of Pulumi.<stack>.yaml. What the
config refuses is in tests/test_gke_config.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from components.common import type_token
from components.gke import GKE_MODE_LABEL
from infra.mocks import FAKE_GCP_PROJECT_NUMBER
from tests.cluster_builds import GkeBuilt, gke
from tests.cluster_builds import gke_raw as raw_cluster
from tests.recording import is_secret

CLUSTER = "gcp:container/cluster:Cluster"
K8S_PROVIDER = "pulumi:providers:kubernetes"

Build = Callable[..., GkeBuilt]


@pytest.fixture
def build(build_gke: Build) -> Build:
    return build_gke


# --- component: modes --------------------------------------------------------------------------


class TestDatapathPerMode:
    """Each mode asks GKE for exactly its datapath and states itself for the policy pack."""

    def test_cilium_mode_keeps_gke_standard_datapath(self, build: Build) -> None:
        cluster = build(gke("cilium")).cluster
        assert cluster["datapathProvider"] == "LEGACY_DATAPATH"
        assert cluster["resourceLabels"][GKE_MODE_LABEL] == "cilium"
        assert cluster["enableCiliumClusterwideNetworkPolicy"] is False

    def test_dataplane_v2_is_advanced_datapath(self, build: Build) -> None:
        cluster = build(gke("dataplane-v2")).cluster
        assert cluster["datapathProvider"] == "ADVANCED_DATAPATH"
        assert cluster["resourceLabels"][GKE_MODE_LABEL] == "dataplane-v2"

    def test_dataplane_v2_clusterwide_policy_follows_config(self, build: Build) -> None:
        assert build(gke("dataplane-v2")).cluster["enableCiliumClusterwideNetworkPolicy"] is True
        off = build(gke("dataplane-v2", clusterwideNetworkPolicy=False)).cluster
        assert off["enableCiliumClusterwideNetworkPolicy"] is False

    def test_dataplane_v2_turns_on_googles_hubble(self, build: Build) -> None:
        monitoring = build(gke("dataplane-v2")).cluster["monitoringConfig"]
        assert monitoring["advancedDatapathObservabilityConfig"] == {
            "enableMetrics": True,
            "enableRelay": True,
        }

    def test_cilium_mode_has_no_google_hubble(self, build: Build) -> None:
        """Advanced datapath observability exists only on ADVANCED_DATAPATH; ours is the
        Hubble of our release."""
        monitoring = build(gke("cilium")).cluster["monitoringConfig"]
        assert "advancedDatapathObservabilityConfig" not in monitoring

    def test_no_cilium_release_settings_in_dataplane_v2(self) -> None:
        """The program creates a Cilium release only where cilium_settings is not None."""
        assert gke("dataplane-v2").cilium_settings is None
        assert gke("cilium").cilium_settings is not None


# --- component: control plane ------------------------------------------------------------------


class TestPrivateControlPlane:
    """Nodes have no public address, and the API server answers only listed networks."""

    @pytest.mark.parametrize("mode", ["cilium", "dataplane-v2"])
    def test_private_nodes_with_a_master_28(self, mode: str, build: Build) -> None:
        config = gke(mode)
        private = build(config).cluster["privateClusterConfig"]
        assert private["enablePrivateNodes"] is True
        assert private["masterIpv4CidrBlock"] == config.network.master_cidr

    def test_public_endpoint_limited_to_allowed_cidrs(self, build: Build) -> None:
        cluster = build(gke("cilium")).cluster
        assert cluster["privateClusterConfig"]["enablePrivateEndpoint"] is False
        networks = cluster["masterAuthorizedNetworksConfig"]
        assert [b["cidrBlock"] for b in networks["cidrBlocks"]] == [
            "203.0.113.0/24",
            "198.51.100.7/32",
        ]
        assert networks["gcpPublicCidrsAccessEnabled"] is False

    def test_private_only_endpoint(self, build: Build) -> None:
        cluster = build(gke("dataplane-v2")).cluster
        assert cluster["privateClusterConfig"]["enablePrivateEndpoint"] is True
        blocks = cluster["masterAuthorizedNetworksConfig"]["cidrBlocks"]
        assert [b["cidrBlock"] for b in blocks] == ["10.0.0.0/8"]

    def test_authorized_networks_set_even_when_empty(self, build: Build) -> None:
        """An absent block would let any address reach the endpoint; an empty one admits
        only the VPC."""
        config = gke("dataplane-v2", endpoint={"public": False})
        networks = build(config).cluster["masterAuthorizedNetworksConfig"]
        assert networks.get("cidrBlocks", []) == []
        assert networks["gcpPublicCidrsAccessEnabled"] is False

    @pytest.mark.parametrize("mode", ["cilium", "dataplane-v2"])
    def test_api_server_host_is_the_private_endpoint(self, mode: str, build: Build) -> None:
        """Our Cilium runs on private nodes; it must reach the API on the private endpoint."""
        built = build(gke(mode))
        gke_says = built.one(CLUSTER).outputs
        private = gke_says["privateClusterConfig"]["privateEndpoint"]
        assert built.api_server_host == private != gke_says["endpoint"], built.urn
        assert built.component_outputs["apiServerPort"] == 443

    def test_version_and_release_channel(self, build: Build) -> None:
        cluster = build(gke("dataplane-v2")).cluster
        assert cluster["minMasterVersion"] == "1.32"
        assert cluster["releaseChannel"] == {"channel": "STABLE"}


class TestIdentityAndEncryption:
    """Pods use Workload Identity, nodes are shielded, Secrets are encrypted with our key."""

    @pytest.mark.parametrize("mode", ["cilium", "dataplane-v2"])
    def test_workload_identity_pool(self, mode: str, build: Build) -> None:
        cluster = build(gke(mode)).cluster
        assert cluster["workloadIdentityConfig"] == {"workloadPool": "meshless-modes.svc.id.goog"}
        assert cluster["enableShieldedNodes"] is True

    def test_secrets_encrypted_with_a_regional_kms_key(self, build: Build) -> None:
        built = build(gke("dataplane-v2"))
        key = built.one("gcp:kms/cryptoKey:CryptoKey")
        ring = built.one("gcp:kms/keyRing:KeyRing")
        assert ring.inputs["location"] == "europe-west1"
        assert key.inputs["keyRing"] == ring.id
        assert built.cluster["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": key.id}

    def test_gke_service_agent_may_use_the_key_before_the_cluster_exists(
        self, build: Build
    ) -> None:
        built = build(gke("cilium"))
        grant = built.one("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
        assert grant.inputs["member"] == (
            f"serviceAccount:service-{FAKE_GCP_PROJECT_NUMBER}@container-engine-robot.iam.gserviceaccount.com"
        )
        assert grant.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
        assert grant.urn in built.one(CLUSTER).dependencies

    def test_nodes_run_as_their_own_least_privilege_account(self, build: Build) -> None:
        built = build(gke("cilium"))
        account = built.one("gcp:serviceaccount/account:Account")
        roles = {r.inputs["role"] for r in built.of_type("gcp:projects/iAMMember:IAMMember")}
        assert "roles/container.defaultNodeServiceAccount" in roles
        assert "roles/editor" not in roles
        email = f"{account.inputs['accountId']}@meshless-modes.iam.gserviceaccount.com"
        for pool in built.pools:
            assert pool.inputs["nodeConfig"]["serviceAccount"] == email, pool.urn


class TestDeletionProtection:
    """Prod clusters cannot be deleted by accident; staging ones can unless asked otherwise."""

    def test_on_in_prod(self, build: Build) -> None:
        built = build(gke("cilium"), environment="prod")
        assert built.cluster["deletionProtection"] is True
        assert built.one("gcp:kms/cryptoKey:CryptoKey").protect is True

    def test_off_by_default_in_staging(self, build: Build) -> None:
        built = build(gke("cilium"), environment="staging")
        assert built.cluster["deletionProtection"] is False
        assert built.one("gcp:kms/cryptoKey:CryptoKey").protect is False

    def test_explicit_setting_wins(self, build: Build) -> None:
        built = build(gke("cilium", deletionProtection=True), environment="staging")
        assert built.cluster["deletionProtection"] is True


class TestLoggingAndMonitoring:
    """Control-plane activity is auditable and metrics go to Managed Prometheus."""

    @pytest.mark.parametrize("mode", ["cilium", "dataplane-v2"])
    def test_components(self, mode: str, build: Build) -> None:
        cluster = build(gke(mode)).cluster
        logs = cluster["loggingConfig"]["enableComponents"]
        assert {"SYSTEM_COMPONENTS", "APISERVER", "WORKLOADS"} <= set(logs)
        assert cluster["monitoringConfig"]["managedPrometheus"]["enabled"] is True
        assert "SYSTEM_COMPONENTS" in cluster["monitoringConfig"]["enableComponents"]


# --- component: nodes --------------------------------------------------------------------------


class TestNodePools:
    """Nodes live only in our pools: default pool gone, bounds and machines from config."""

    @pytest.mark.parametrize("mode", ["cilium", "dataplane-v2"])
    def test_default_pool_removed(self, mode: str, build: Build) -> None:
        cluster = build(gke(mode)).cluster
        assert cluster["removeDefaultNodePool"] is True
        assert cluster["initialNodeCount"] == 1
        assert "nodePools" not in cluster and "nodeConfig" not in cluster

    def test_one_pool_per_configured_pool(self, build: Build) -> None:
        config = gke("cilium")
        built = build(config)
        assert sorted(p.inputs["name"] for p in built.pools) == sorted(
            p.name for p in config.node_pools
        )
        for want in config.node_pools:
            pool = built.pool(want.name)
            node = pool.inputs["nodeConfig"]
            assert node["machineType"] == want.machine_type, pool.urn
            assert node["imageType"] == "COS_CONTAINERD", pool.urn
            assert node.get("spot", False) is want.spot, pool.urn
            assert pool.inputs["autoscaling"]["totalMinNodeCount"] == want.min_size, pool.urn
            assert pool.inputs["autoscaling"]["totalMaxNodeCount"] == want.max_size, pool.urn
            assert pool.inputs["cluster"] == "modes-cilium"
            assert pool.inputs["location"] == "us-central1"

    def test_initial_count_is_per_zone(self, build: Build) -> None:
        """GKE counts initial nodes per zone: 4 nodes over the default 3 zones is 2 each
        (rounded up), 3 nodes over the 2 configured zones is 2 each."""
        assert build(gke("cilium")).pool("general").inputs["initialNodeCount"] == 2
        dpv2 = build(gke("dataplane-v2"))
        assert dpv2.pool("general").inputs["initialNodeCount"] == 2
        assert dpv2.cluster["nodeLocations"] == ["europe-west1-b", "europe-west1-c"]

    def test_prod_seed_pool_starts_at_its_desired_size(self, build: Build) -> None:
        pools = [
            {
                "name": "general",
                "machineType": "n2-standard-8",
                "minSize": 100,
                "maxSize": 180,
                "desiredSize": 120,
            }
        ]
        built = build(gke("cilium", nodePools=pools), environment="prod")
        assert built.pool("general").inputs["initialNodeCount"] == 40  # x 3 zones = 120

    @pytest.mark.parametrize("mode", ["cilium", "dataplane-v2"])
    def test_hardened_nodes(self, mode: str, build: Build) -> None:
        for pool in build(gke(mode)).pools:
            node = pool.inputs["nodeConfig"]
            assert node["shieldedInstanceConfig"] == {
                "enableSecureBoot": True,
                "enableIntegrityMonitoring": True,
            }, pool.urn
            assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}, pool.urn
            assert pool.inputs["management"] == {"autoRepair": True, "autoUpgrade": True}

    def test_autoscaler_owns_the_node_count(self, build: Build) -> None:
        built = build(gke("cilium"))
        for pool in built.pools:
            assert {"initialNodeCount", "nodeCount"} <= set(built.ignore_changes(pool)), pool.urn

    def test_cilium_mode_pools_are_tainted_until_cilium_runs(self, build: Build) -> None:
        for pool in build(gke("cilium")).pools:
            assert pool.inputs["nodeConfig"]["taints"] == [
                {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"}
            ], pool.urn

    def test_dataplane_v2_pools_are_not_tainted(self, build: Build) -> None:
        """Nothing of ours would remove the taint: Google's Cilium does not know it."""
        for pool in build(gke("dataplane-v2")).pools:
            assert not pool.inputs["nodeConfig"].get("taints"), pool.urn

    def test_node_image_from_config(self, build: Build) -> None:
        for pool in build(gke("dataplane-v2")).pools:
            assert pool.inputs["nodeConfig"]["imageType"] == "UBUNTU_CONTAINERD"


# --- component: network ------------------------------------------------------------------------


class TestNetwork:
    """VPC-native: pods and Services come from named secondary ranges of the node subnetwork."""

    def test_subnetwork_ranges_and_ip_allocation(self, build: Build) -> None:
        config = gke("cilium")
        built = build(config)
        subnet = built.one("gcp:compute/subnetwork:Subnetwork")
        assert subnet.inputs["ipCidrRange"] == config.network.node_cidr
        assert subnet.inputs["secondaryIpRanges"] == [
            {"rangeName": "pods", "ipCidrRange": config.network.pod_cidr},
            {"rangeName": "services", "ipCidrRange": config.network.service_cidr},
        ]
        assert subnet.inputs["privateIpGoogleAccess"] is True
        cluster = built.cluster
        assert cluster["networkingMode"] == "VPC_NATIVE"
        assert cluster["ipAllocationPolicy"] == {
            "clusterSecondaryRangeName": "pods",
            "servicesSecondaryRangeName": "services",
        }
        assert cluster["subnetwork"] == subnet.id

    def test_private_nodes_get_egress_through_cloud_nat(self, build: Build) -> None:
        built = build(gke("cilium"))
        network = built.one("gcp:compute/network:Network")
        assert network.inputs["autoCreateSubnetworks"] is False
        router = built.one("gcp:compute/router:Router")
        nat = built.one("gcp:compute/routerNat:RouterNat")
        assert router.inputs["network"] == network.id
        assert nat.inputs["router"] == router.inputs["name"]
        assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"

    def test_given_network_is_used_not_created(self, build: Build) -> None:
        network = {
            **raw_cluster("cilium")["network"],
            "network": "projects/shared-vpc/global/networks/corp",
            "subnetwork": "projects/shared-vpc/regions/us-central1/subnetworks/gke-a",
            "podsRangeName": "gke-a-pods",
            "servicesRangeName": "gke-a-svc",
        }
        built = build(gke("cilium", network=network))
        for typ in ("Network", "Subnetwork", "Router", "RouterNat"):
            kind = typ[0].lower() + typ[1:]
            assert not built.of_type(f"gcp:compute/{kind}:{typ}"), typ
        cluster = built.cluster
        assert cluster["network"] == network["network"]
        assert cluster["subnetwork"] == network["subnetwork"]
        assert cluster["ipAllocationPolicy"]["clusterSecondaryRangeName"] == "gke-a-pods"


# --- component: access and shape --------------------------------------------------------------


class TestKubeconfig:
    """The provider authenticates through gke-gcloud-auth-plugin and its kubeconfig is secret."""

    def test_kubeconfig_is_secret_everywhere(self, build: Build) -> None:
        built = build(gke("cilium"))
        provider = built.one(K8S_PROVIDER)
        assert is_secret(provider.inputs["kubeconfig"]), provider.urn
        assert is_secret(built.component_outputs["kubeconfig"]), built.urn

    def test_exec_auth_and_ca(self, build: Build) -> None:
        built = build(gke("cilium"))
        kubeconfig = json.loads(built.kubeconfig)
        (user,) = kubeconfig["users"]
        assert user["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
        assert "token" not in user["user"] and "client-key-data" not in user["user"]
        (cluster,) = kubeconfig["clusters"]
        ca = base64.b64decode(cluster["cluster"]["certificate-authority-data"]).decode()
        assert ca.startswith("-----BEGIN CERTIFICATE-----")
        assert kubeconfig["current-context"] == "gke_meshless-modes_us-central1_modes-cilium"

    def test_public_cluster_is_reached_on_its_public_endpoint(self, build: Build) -> None:
        kubeconfig = json.loads(build(gke("cilium")).kubeconfig)
        server = kubeconfig["clusters"][0]["cluster"]["server"]
        assert server.startswith("https://34."), server

    def test_private_cluster_is_reached_on_its_private_endpoint(self, build: Build) -> None:
        built = build(gke("dataplane-v2"))
        server = json.loads(built.kubeconfig)["clusters"][0]["cluster"]["server"]
        assert server == f"https://{built.api_server_host}"

    def test_provider_does_not_wait_for_node_pools(self, build: Build) -> None:
        """The Cilium release waits for the pools (tests/test_plan.py), not the provider."""
        built = build(gke("cilium"))
        provider = built.one(K8S_PROVIDER)
        assert not {p.urn for p in built.pools} & set(provider.dependencies)


class TestComponentShape:
    """One type-token scheme, every resource parented to the component, real outputs."""

    def test_type_token_and_parenting(self, build: Build) -> None:
        built = build(gke("cilium"))
        qualified_type, name = built.urn.split("::")[2:4]
        assert qualified_type.split("$")[-1] == type_token("gcp", "GkeCluster")
        assert name == "modes-cilium"
        children = [
            r for r in built.resources if r.urn != built.urn and r.type != "pulumi:pulumi:Stack"
        ]
        assert children
        for res in children:
            assert res.parent == built.urn, res.urn

    def test_registered_outputs(self, build: Build) -> None:
        outputs = build(gke("dataplane-v2")).component_outputs
        assert outputs["clusterName"] == "modes-dpv2"
        assert outputs["mode"] == "dataplane-v2"
        assert outputs["datapathProvider"] == "ADVANCED_DATAPATH"
