"""Cilium values: valid for the chart, every image pinned to the catalog, kube-proxy replaced.

The chart facts come from vendor/cilium-chart (the published archives and their values schema,
sha256-checked against vendor/PROVENANCE.json); `helm template` is the real Helm 3 binary pinned
in uv.lock (devtools/helm.py). No cluster is contacted: this verifies what the chart would deploy from our values.
"""

from __future__ import annotations

import json
import re
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.catalog import (
    DEFAULT_CHART_VERSION,
    REQUIRED_IMAGES,
    check_version,
    known_versions,
    load_catalog,
    pins_for,
)
from components.cilium import CiliumSettings, ClusterFacts, ProfileError, build_values
from devtools.helm import template
from infra.config import ConfigError, parse_stack_config

REPO = Path(__file__).resolve().parents[1]
CHARTS = REPO / "vendor" / "cilium-chart"
PROFILES = ("default", "throughput", "latency")


def facts(
    cloud: str, kernel: tuple[int, int] = (6, 1), environment: str = "staging"
) -> ClusterFacts:
    if cloud == "eks":
        return ClusterFacts(
            name="eks-one",
            cloud="eks",
            environment=environment,
            api_host="0A1B2C3D4E5F60718293A4B5C6D7E8F9.gr7.us-west-2.eks.amazonaws.com",
            api_port=443,
            node_kernel=kernel,
            operator_role_arn="arn:aws:iam::123456789012:role/eks-one-cilium-operator",
        )
    return ClusterFacts(
        name="gke-one",
        cloud="gke",
        environment=environment,
        api_host="34.118.10.10",
        api_port=443,
        node_kernel=kernel,
        pod_cidr="10.68.0.0/14",
    )


@cache
def schema(version: str) -> dict[str, Any]:
    return json.loads((CHARTS / f"values-{version}.schema.json").read_text())


def schema_errors(values: dict[str, Any], version: str) -> list[str]:
    validator = jsonschema.Draft7Validator(schema(version))
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(values)]


def stack_cases() -> list[Any]:
    """(environment, cluster, profile) for every self-managed Cilium cluster of both stacks and
    every profile its cloud allows (latency's XDP is refused on GKE: see TestProfiles)."""
    cases = []
    for stack in ("staging", "prod"):
        document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
        raw = {k.partition(":")[2]: v for k, v in document["config"].items()}
        config = parse_stack_config(raw)
        for cluster in config.clusters:
            for profile in PROFILES:
                if cluster.cilium_settings is None or (
                    profile == "latency" and cluster.cloud == "gke"
                ):
                    continue
                cases.append(
                    pytest.param(
                        config.environment, cluster, profile, id=f"{stack}/{cluster.name}/{profile}"
                    )
                )
    return cases


class TestValuesSchema:
    """Every cluster's values, in every stack and profile, are valid for the chart."""

    @pytest.mark.parametrize(("environment", "cluster", "profile"), stack_cases())
    def test_stack_values_validate(self, environment: str, cluster: Any, profile: str) -> None:
        settings = cluster.cilium_settings.model_copy(update={"profile": profile})
        # A kernel new enough for every profile: preconditions are tested separately.
        values = build_values(settings, facts(cluster.cloud, (6, 12), environment))
        assert schema_errors(values, settings.version) == []

    @pytest.mark.parametrize("version", ["1.16.5", "1.16.19", "1.17.18"])
    @pytest.mark.parametrize("cloud", ["eks", "gke"])
    def test_every_catalog_version_validates(self, version: str, cloud: str) -> None:
        settings = CiliumSettings(version=version, mutual_auth=True, gateway_api=True)
        assert schema_errors(build_values(settings, facts(cloud)), version) == []

    def test_schema_catches_a_wrong_type(self) -> None:
        """The check above can fail: a value of the wrong type is reported."""
        values = build_values(CiliumSettings(), facts("eks"))
        values["l7Proxy"] = "yes"
        assert schema_errors(values, DEFAULT_CHART_VERSION)


@cache
def chart_keys(version: str) -> frozenset[str]:
    """Every values path the chart knows: values.yaml's keys, the ones it documents as
    comments (`#kubeProxyReplacement:`), and every `.Values.x.y` its templates read."""
    keys: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                keys.add(f"{prefix}{key}")
                walk(value, f"{prefix}{key}.")

    walk(yaml.safe_load((CHARTS / f"values-{version}.yaml").read_text()), "")
    keys.update(
        re.findall(
            r"^#\s?([A-Za-z][A-Za-z0-9]*):", (CHARTS / f"values-{version}.yaml").read_text(), re.M
        )
    )
    with tarfile.open(CHARTS / f"cilium-{version}.tgz") as archive:
        for member in archive.getmembers():
            if member.isfile() and ("/templates/" in member.name or "/files/" in member.name):
                text = archive.extractfile(member).read().decode("utf-8", "replace")  # type: ignore[union-attr]
                for ref in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text):
                    parts = ref.strip(".").split(".")
                    keys.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return frozenset(keys)


def unknown_keys(ours: Any, known: frozenset[str], path: str = "") -> list[str]:
    """Paths we set that the chart never reads (a typo Helm would silently ignore)."""
    missing = []
    for key, value in ours.items():
        where = f"{path}.{key}" if path else key
        if where not in known:
            missing.append(where)
        elif isinstance(value, dict) and any(k.startswith(f"{where}.") for k in known):
            missing += unknown_keys(value, known, where)
    return missing


class TestValuesKeys:
    """The schema leaves most keys open, so a misspelt key would be silently ignored by Helm."""

    @pytest.mark.parametrize("version", ["1.16.5", "1.16.19", "1.17.18"])
    @pytest.mark.parametrize("cloud", ["eks", "gke"])
    def test_every_key_is_read_by_the_chart(self, version: str, cloud: str) -> None:
        settings = CiliumSettings(version=version, mutual_auth=True, profile="throughput")
        values = build_values(settings, facts(cloud, (6, 12)))
        assert unknown_keys(values, chart_keys(version)) == []

    def test_a_typo_is_caught(self) -> None:
        values = {"hubble": {"relay": {"enabeld": True}}, "kubeProxyReplacment": True}
        assert unknown_keys(values, chart_keys("1.16.19")) == [
            "hubble.relay.enabeld",
            "kubeProxyReplacment",
        ]


class TestCloudValues:
    """Each cloud gets the datapath its platform needs."""

    def test_eks_eni_mode(self) -> None:
        values = build_values(CiliumSettings(), facts("eks"))
        assert values["eni"]["enabled"] is True
        assert values["ipam"] == {"mode": "eni"}
        assert values["routingMode"] == "native"
        assert "egressMasqueradeInterfaces" not in values
        assert values["bpf"]["masquerade"] is True
        assert values["serviceAccounts"]["operator"]["annotations"] == {
            "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/eks-one-cilium-operator"
        }
        assert "awsDigest" in values["operator"]["image"]
        assert "gke" not in values and "nodeinit" not in values

    def test_gke_self_managed(self) -> None:
        values = build_values(CiliumSettings(), facts("gke"))
        assert values["gke"] == {"enabled": True}
        assert values["ipam"] == {"mode": "kubernetes"}
        assert values["ipv4NativeRoutingCIDR"] == "10.68.0.0/14"
        assert values["cni"]["binPath"] == "/home/kubernetes/bin"
        assert values["nodeinit"]["enabled"] is True
        assert values["nodeinit"]["reconfigureKubelet"] is True
        assert values["nodeinit"]["removeCbrBridge"] is True
        assert "genericDigest" in values["operator"]["image"]
        assert "eni" not in values

    @pytest.mark.parametrize("cloud", ["eks", "gke"])
    def test_kube_proxy_replacement_explicit(self, cloud: str) -> None:
        values = build_values(CiliumSettings(), facts(cloud))
        assert values["kubeProxyReplacement"] is True
        assert values["k8sServiceHost"] not in ("", "auto")
        assert values["k8sServicePort"] == 443

    def test_hubble_tls_is_stable_and_metrics_per_environment(self) -> None:
        staging = build_values(CiliumSettings(), facts("eks", environment="staging"))
        prod = build_values(CiliumSettings(), facts("eks", environment="prod"))
        # The program's own certificates (components/hubble_tls.py), no certgen hook Job.
        assert staging["hubble"]["tls"]["auto"] == {"enabled": False}
        assert staging["hubble"]["tls"]["server"]["existingSecret"] == "hubble-server-certs"
        assert staging["hubble"]["relay"]["tls"]["client"]["existingSecret"] == (
            "hubble-relay-client-certs"
        )
        assert staging["hubble"]["relay"]["enabled"] and staging["hubble"]["ui"]["enabled"]
        assert len(prod["hubble"]["metrics"]["enabled"]) < len(
            staging["hubble"]["metrics"]["enabled"]
        )

    def test_envoy_daemonset_and_l7_proxy(self) -> None:
        values = build_values(CiliumSettings(), facts("gke"))
        assert values["envoy"]["enabled"] is True and values["l7Proxy"] is True
        assert values["ingressController"]["enabled"] and values["ingressController"]["default"]


class TestProfiles:
    """A profile whose preconditions fail is a config error naming precondition and cluster."""

    def test_netkit_on_61_kernel(self) -> None:
        with pytest.raises(ProfileError, match=r"eks-one.*netkit.*6\.8.*has 6\.1"):
            build_values(CiliumSettings(profile="throughput"), facts("eks", (6, 1)))

    def test_xdp_on_gke(self) -> None:
        with pytest.raises(ProfileError, match="XDP"):
            build_values(CiliumSettings(profile="latency"), facts("gke", (6, 12)))

    def test_latency_on_eks_new_kernel(self) -> None:
        values = build_values(CiliumSettings(profile="latency"), facts("eks", (6, 12)))
        # native would need XDP on every ENI with MTU <= 3498; best-effort skips the others.
        assert values["loadBalancer"] == {"acceleration": "best-effort"}
        assert values["bpf"]["datapathMode"] == "netkit"

    def test_gke_workload_identity_uses_legacy_host_routing(self) -> None:
        gke = facts("gke")
        with_wi = ClusterFacts(**{**gke.__dict__, "workload_identity": True})
        assert build_values(CiliumSettings(), with_wi)["bpf"]["hostLegacyRouting"] is True
        assert "hostLegacyRouting" not in build_values(CiliumSettings(), gke)["bpf"]

    def test_throughput_features(self) -> None:
        values = build_values(CiliumSettings(profile="throughput"), facts("gke", (6, 12)))
        assert values["enableIPv4BIGTCP"] is True
        assert values["bandwidthManager"] == {"enabled": True, "bbr": True}
        assert "loadBalancer" not in values

    def _stack(self, cluster: dict[str, Any]) -> dict[str, Any]:
        return {"environment": "staging", "clusters": [cluster]}

    def test_config_error_for_profile(self) -> None:
        cluster = {
            "cloud": "eks",
            "name": "eks-one",
            "region": "us-west-2",
            "network": {"availabilityZones": ["us-west-2a", "us-west-2b"]},
            "nodePools": [{"name": "a", "machineType": "m6i.large", "minSize": 1, "maxSize": 2}],
            "cilium": {"profile": "throughput"},
        }
        with pytest.raises(ConfigError) as caught:
            parse_stack_config(self._stack(cluster))
        (problem,) = caught.value.problems
        assert problem.startswith("meshless:clusters[0].cilium.profile: cluster eks-one")
        cluster["nodeKernel"] = "6.12"
        assert parse_stack_config(self._stack(cluster)).clusters[0].kernel == (6, 12)


class TestSettings:
    def test_unknown_version_lists_known(self) -> None:
        with pytest.raises(ValueError, match=r"known versions: 1\.16\.5, 1\.16\.19, 1\.17\.18"):
            CiliumSettings(version="1.16.99")

    def test_mutual_auth_refused_with_clustermesh(self) -> None:
        with pytest.raises(ValueError, match="cannot be combined with ClusterMesh"):
            CiliumSettings(mutual_auth=True, cluster_mesh=True, cluster_id=3)

    def test_default_is_last_116_patch(self) -> None:
        assert CiliumSettings().version == "1.16.19"


class TestCatalog:
    """The catalog is the chart's own facts, complete for every version we support."""

    @pytest.mark.parametrize("version", known_versions())
    def test_complete_and_well_formed(self, version: str) -> None:
        assert check_version(version) == []
        assert set(REQUIRED_IMAGES) <= set(load_catalog()[version])

    @pytest.mark.parametrize("version", known_versions())
    def test_matches_upstream(self, version: str) -> None:
        upstream = json.loads((CHARTS / f"images-{version}.json").read_text())
        assert load_catalog()[version] == upstream

    def test_check_catches_a_bad_digest_and_a_missing_image(self) -> None:
        data = json.loads((REPO / "policies" / "data" / "cilium-images.json").read_text())
        data["versions"]["1.16.19"]["envoy.image"]["digest"] = "sha256:abc"
        del data["versions"]["1.16.19"]["certgen.image"]
        problems = {
            (p.path, p.problem.split()[0]) for p in check_version("1.16.19", data["versions"])
        }
        assert problems == {("envoy.image", "digest"), ("certgen.image", "missing")}


def render(values: dict[str, Any], version: str, tmp_path: Path) -> list[dict[str, Any]]:
    return template(CHARTS / f"cilium-{version}.tgz", values, tmp_path)


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        template = spec.get("template", {}).get("spec")
        if template:
            specs.append((f"{obj['kind']}/{obj['metadata']['name']}", template))
    return specs


RENDER_CASES = {
    "eks-default": ("eks", CiliumSettings()),
    "gke-default": ("gke", CiliumSettings()),
    "eks-mutual-auth": ("eks", CiliumSettings(mutual_auth=True)),
    "gke-clustermesh": ("gke", CiliumSettings(cluster_mesh=True, cluster_id=7)),
    "eks-1.16.5": ("eks", CiliumSettings(version="1.16.5")),
}


class TestRenderedChart:
    """What the real chart renders from our values: pinned, kube-proxy-free, Hubble and Envoy."""

    @pytest.mark.parametrize("case", list(RENDER_CASES))
    def test_every_image_pinned_to_catalog(self, case: str, tmp_path: Path) -> None:
        cloud, settings = RENDER_CASES[case]
        objects = render(build_values(settings, facts(cloud)), settings.version, tmp_path)
        allowed = {pin.reference for pin in pins_for(settings.version, cloud).values()}
        seen = set()
        for where, spec in pod_specs(objects):
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                image = container["image"]
                assert "@sha256:" in image, f"{where}/{container['name']} is not pinned: {image}"
                assert image in allowed, (
                    f"{where}/{container['name']}: {image} is not the catalog's"
                )
                seen.add(image)
        assert len(seen) >= 6

    @pytest.mark.parametrize("cloud", ["eks", "gke"])
    def test_kube_proxy_replacement_and_components(self, cloud: str, tmp_path: Path) -> None:
        values = build_values(CiliumSettings(), facts(cloud))
        objects = render(values, DEFAULT_CHART_VERSION, tmp_path)
        by_kind = {(o["kind"], o["metadata"]["name"]): o for o in objects}
        config = by_kind[("ConfigMap", "cilium-config")]["data"]
        assert config["kube-proxy-replacement"] == "true"
        # 1.16 passes the API server to the agent as env, not through cilium-config.
        agent = by_kind[("DaemonSet", "cilium")]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in agent["env"]}
        assert env["KUBERNETES_SERVICE_HOST"] == values["k8sServiceHost"]
        assert env["KUBERNETES_SERVICE_PORT"] == "443"
        assert ("DaemonSet", "cilium-envoy") in by_kind
        assert ("Deployment", "hubble-relay") in by_kind
        assert ("Deployment", "hubble-ui") in by_kind
        assert ("IngressClass", "cilium") in by_kind
        if cloud == "gke":
            node_init = by_kind[("DaemonSet", "cilium-node-init")]["spec"]["template"]["spec"]
            script = json.dumps(node_init)
            # What the old reconfigureKubelet/removeCbrBridge switches did is now built in.
            assert "the-kubelet" in script and "ip link del cbr0" in script

    def test_rendering_twice_is_identical(self, tmp_path: Path) -> None:
        values = build_values(CiliumSettings(), facts("eks"))
        first = render(values, DEFAULT_CHART_VERSION, tmp_path)
        second = render(values, DEFAULT_CHART_VERSION, tmp_path)
        assert first == second
        assert not any(
            o["kind"] == "Secret" and "tls.key" in (o.get("data") or {}) for o in first
        ), "certificates in the render would change on every preview"
