"""EKS nodes ready for Cilium's ENI mode: the launch template every node group uses.

The user data is checked the way the node reads it: EC2 hands it to cloud-init as MIME
multi-part, nodeadm reads the NodeConfig part (validated against its CRD schema, vendored from
awslabs/amazon-eks-ami), and the shell script writes systemd-networkd files (parsed as INI and
held to keys the systemd man pages document; the script itself passes `bash -n`). Nothing here
boots a node: what AWS and systemd do with the files is cited in components/eks/user_data.py.

The user data is read from both stacks' plans; the node groups and templates the component
registers for any config (one per pool, the taint, the autoscaler's desired size, disks, max
pods per instance type) from tests/fixtures/eks-clusters.yaml built under the plan's mocks
(the ``build_eks`` fixture).
"""

from __future__ import annotations

import base64
import configparser
import copy
import email
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.cilium import ENI_PREFIX_DELEGATION
from components.eks.user_data import (
    INSTANCE_INFO_PATH,
    NETWORKD_CONF_PATH,
    NETWORKD_NETWORK_PATH,
    instance_limits,
    max_pods,
    max_pods_expression,
)
from infra import plan as offline
from infra.config import ConfigError, parse_stack_config
from infra.export_format import export_document
from infra.manifests import write_manifests
from tests.cluster_builds import EksBuilt, eks

REPO = Path(__file__).resolve().parents[1]
NODECONFIG_CRD = REPO / "vendor" / "amazon-eks-ami" / "node.eks.aws_nodeconfigs.yaml"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
TAINT = {"key": "node.cilium.io/agent-not-ready", "value": "true", "effect": "NO_EXECUTE"}
HEREDOC = re.compile(r"cat > (\S+) <<'?(\w+)'?\n(.*?)\n\2\n", re.S)

# Keys systemd documents for the sections we write: systemd.network(5) [Match] and [Link],
# networkd.conf(5) [Network]. A typo (e.g. "Unmanged") would be silently ignored by systemd.
DOCUMENTED = {
    "Match": {"MACAddress", "PermanentMACAddress", "Path", "Driver", "Type", "Kind", "Property"},
    "Link": {"MACAddress", "MTUBytes", "ARP", "Multicast", "AllMulticast", "Unmanaged"},
    "Network": {
        "SpeedMeter",
        "SpeedMeterIntervalSec",
        "ManageForeignRoutingPolicyRules",
        "ManageForeignRoutes",
        "ManageForeignNextHops",
        "RouteTable",
        "IPv6PrivacyExtensions",
    },
}


@pytest.fixture(scope="module")
def exports() -> dict[str, list[dict[str, Any]]]:
    """Both stacks recorded under mocks, in resources.json form (no gate: test_plan runs it)."""
    out = {}
    for stack in ("staging", "prod"):
        result = offline.plan_stack(stack)
        out[stack] = export_document(stack, result.resources)["deployment"]["resources"]
    return out


def _of(resources: list[dict[str, Any]], typ: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["type"] == typ]


def _user_data(template: dict[str, Any]) -> email.message.Message:
    return email.message_from_string(base64.b64decode(template["inputs"]["userData"]).decode())


def _parts(message: email.message.Message) -> dict[str, str]:
    return {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if not part.is_multipart()
    }


def _networkd_files(script: str) -> dict[str, configparser.ConfigParser]:
    files = {}
    for path, _marker, body in HEREDOC.findall(script):
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # type: ignore[assignment, method-assign]
        parser.read_string(body)
        files[path] = parser
    return files


def _relaxed(schema: Any) -> Any:
    """The CRD's OpenAPI schema as JSON Schema the way nodeadm decodes it: a field marked
    x-kubernetes-preserve-unknown-fields is a Go runtime.RawExtension, any JSON value."""
    if isinstance(schema, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return {}
        return {k: _relaxed(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_relaxed(v) for v in schema]
    return schema


def _nodeconfig_schema() -> dict[str, Any]:
    crd = yaml.safe_load(NODECONFIG_CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return _relaxed(version["schema"]["openAPIV3Schema"])


class TestMaxPods:
    """Max pods follows Cilium's ENI IPAM, not the VPC CNI's one-address-per-pod formula."""

    def test_without_prefix_delegation_it_is_the_aws_formula(self) -> None:
        # amazon-eks-ami's eni-max-pods.txt lists m6i.large at 29 and t3.micro at 4.
        assert max_pods(instance_limits("m6i.large"), prefix_delegation=False) == 29
        assert max_pods(instance_limits("t3.micro"), prefix_delegation=False) == 4

    def test_prefix_delegation_multiplies_by_16_up_to_110(self) -> None:
        assert max_pods(instance_limits("t3.micro"), prefix_delegation=True) == 2 * 1 * 16 + 2
        assert max_pods(instance_limits("c6g.medium"), prefix_delegation=True) == 2 * 3 * 16 + 2
        assert max_pods(instance_limits("m6i.large"), prefix_delegation=True) == 110
        assert max_pods(instance_limits("m6i.2xlarge"), prefix_delegation=True) == 110

    @pytest.mark.parametrize("prefix_delegation", [True, False])
    def test_nodeadm_expression_agrees_for_every_instance_type(
        self, prefix_delegation: bool
    ) -> None:
        """The CEL expression nodeadm evaluates gives the value the program computed."""
        cond, cap, value, _ = re.fullmatch(
            r"(.*) > (\d+) \? (\d+) : (.*)", max_pods_expression(prefix_delegation)
        ).groups()
        assert cap == value
        for line in INSTANCE_INFO_PATH.read_text().splitlines():
            row = json.loads(line)
            env = {
                "default_enis": row["defaultMaxENIs"],
                "ips_per_eni": row["ipv4AddressesPerInterface"],
            }
            pods = eval(cond, {}, env)  # arithmetic only: + - * and parentheses
            expected = max_pods(instance_limits(row["instanceType"]), prefix_delegation)
            assert min(pods, int(cap)) == expected, row


class TestLaunchTemplates:
    """Every EKS node group boots from our launch template, and its user data does its job."""

    @pytest.mark.parametrize("stack", ["staging", "prod"])
    def test_every_node_group_uses_its_template(self, exports, stack: str) -> None:
        resources = exports[stack]
        templates = {r["urn"]: r for r in _of(resources, LAUNCH_TEMPLATE)}
        groups = _of(resources, NODE_GROUP)
        assert groups
        for group in groups:
            (template_urn,) = [d for d in group["dependencies"] if d in templates]
            template = templates[template_urn]
            assert set(group["inputs"]["launchTemplate"]) == {"id", "version"}
            # EKS refuses a disk size in both places: it lives in the template.
            assert "diskSize" not in group["inputs"]
            (disk,) = template["inputs"]["blockDeviceMappings"]
            assert disk["ebs"]["volumeSize"] == 100 and disk["ebs"]["encrypted"] == "true"
            assert template["inputs"]["metadataOptions"] == {
                "httpEndpoint": "enabled",
                "httpTokens": "required",
                "httpPutResponseHopLimit": 1,
            }

    @pytest.mark.parametrize("stack", ["staging", "prod"])
    def test_user_data_is_what_nodeadm_and_cloud_init_read(self, exports, stack: str) -> None:
        resources = exports[stack]
        schema = _nodeconfig_schema()
        by_urn = {r["urn"]: r for r in resources}
        for group in _of(resources, NODE_GROUP):
            (template,) = [
                by_urn[d] for d in group["dependencies"] if by_urn[d]["type"] == LAUNCH_TEMPLATE
            ]
            message = _user_data(template)
            assert message.is_multipart() and message.get_content_type() == "multipart/mixed"
            parts = _parts(message)
            assert set(parts) == {"application/node.eks.aws", "text/x-shellscript"}
            (node_config,) = list(yaml.safe_load_all(parts["application/node.eks.aws"]))
            jsonschema.validate(node_config, schema)
            assert node_config["kind"] == "NodeConfig"
            (instance_type,) = group["inputs"]["instanceTypes"]
            expected = max_pods(instance_limits(instance_type), prefix_delegation=True)
            assert node_config["spec"]["kubelet"]["config"]["maxPods"] == expected

    def test_a_wrong_nodeconfig_fails_the_schema(self) -> None:
        """The schema check can fail: a misspelt field is refused, as nodeadm refuses it."""
        bad = {"apiVersion": "node.eks.aws/v1alpha1", "kind": "NodeConfig", "spec": {"kublet": {}}}
        schema = _nodeconfig_schema()
        schema["properties"]["spec"]["additionalProperties"] = False
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)

    def test_networkd_files(self, exports) -> None:
        (template, *_) = _of(exports["prod"], LAUNCH_TEMPLATE)
        script = _parts(_user_data(template))["text/x-shellscript"]
        files = _networkd_files(script)
        assert set(files) == {NETWORKD_NETWORK_PATH, NETWORKD_CONF_PATH}
        for parser in files.values():
            for section in parser.sections():
                assert set(parser[section]) <= DOCUMENTED[section], (section, dict(parser[section]))
        network = files[NETWORKD_NETWORK_PATH]
        assert network["Match"]["Driver"] == "ena"
        # The primary ENI is excluded by the name found from its MAC at boot.
        assert network["Match"]["Property"] == "!INTERFACE=$primary"
        assert network["Link"]["Unmanaged"] == "yes"
        conf = files[NETWORKD_CONF_PATH]["Network"]
        assert conf["ManageForeignRoutes"] == "no"
        assert conf["ManageForeignRoutingPolicyRules"] == "no"
        assert 'meta-data/mac"' in script and "X-aws-ec2-metadata-token" in script

    @pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
    def test_script_is_valid_bash(self, exports, tmp_path: Path) -> None:
        (template, *_) = _of(exports["staging"], LAUNCH_TEMPLATE)
        script = tmp_path / "user-data.sh"
        script.write_text(_parts(_user_data(template))["text/x-shellscript"])
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

    def test_plan_writes_the_user_data_per_node_group(self, exports, tmp_path: Path) -> None:
        write_manifests(exports["prod"], tmp_path)
        written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mime"))
        assert written == [
            "prod-eks-use1/launch-template-prod-eks-use1-general-user-data.mime",
            "prod-eks-use1/launch-template-prod-eks-use1-system-user-data.mime",
        ]
        text = (tmp_path / written[0]).read_text()
        assert "Content-Type: application/node.eks.aws" in text and "Unmanaged=yes" in text


def _staging() -> dict[str, Any]:
    document = yaml.safe_load((REPO / "Pulumi.staging.yaml").read_text())
    return {k.partition(":")[2]: v for k, v in copy.deepcopy(document)["config"].items()}


class TestNodeConfigRefusals:
    """What the nodes could not do in ENI mode is a config error naming the key."""

    def _eks(self, raw: dict[str, Any]) -> dict[str, Any]:
        return next(c for c in raw["clusters"] if c["cloud"] == "eks")

    def test_bottlerocket_is_refused(self) -> None:
        raw = _staging()
        self._eks(raw)["nodeImage"] = "BOTTLEROCKET_x86_64"
        with pytest.raises(ConfigError) as caught:
            parse_stack_config(raw)
        (problem,) = caught.value.problems
        assert problem.startswith("meshless:clusters[0].nodeImage:")
        assert "unmanaged" in problem and "AL2023_x86_64_STANDARD" in problem

    @pytest.mark.parametrize("machine_type", ["m6i.huge", "e2-standard-4"])
    def test_unknown_instance_type_is_refused(self, machine_type: str) -> None:
        raw = _staging()
        self._eks(raw)["nodePools"][0]["machineType"] = machine_type
        with pytest.raises(ConfigError) as caught:
            parse_stack_config(raw)
        (problem,) = caught.value.problems
        assert problem.startswith("meshless:clusters[0].nodePools[0].machineType:")
        assert machine_type in problem


Build = Callable[..., EksBuilt]


@pytest.fixture
def build(build_eks: Build) -> Build:
    return build_eks


# --- the component's node groups and templates, for any config (tests/cluster_builds.py) ---------


class TestNodeGroups:
    """One managed node group per pool, tainted until Cilium runs, sized by the autoscaler."""

    def test_one_group_per_pool(self, build: Build) -> None:
        config = eks()
        built = build(config)
        assert sorted(g.inputs["nodeGroupName"] for g in built.groups) == ["batch", "general"]
        for pool in config.node_pools:
            group = built.group(pool.name).inputs
            assert group["instanceTypes"] == [pool.machine_type]
            assert group["amiType"] == "AL2023_x86_64_STANDARD"
            assert group["capacityType"] == ("SPOT" if pool.spot else "ON_DEMAND")
            assert group["scalingConfig"] == {
                "minSize": pool.min_size,
                "maxSize": pool.max_size,
                "desiredSize": pool.initial_size,
            }
            assert group["updateConfig"] == {"maxUnavailablePercentage": 25}
            assert group["clusterName"] == "eks-vpc"

    def test_desired_size_defaults_to_at_least_one(self, build: Build) -> None:
        """Unset desiredSize starts a pool at its minSize, and at one node when that is zero
        (NodePool.initial_size)."""
        built = build(eks())
        assert built.group("batch").inputs["scalingConfig"]["desiredSize"] == 1
        assert built.group("general").inputs["scalingConfig"]["desiredSize"] == 3

    def test_tainted_until_cilium_runs(self, build: Build) -> None:
        for group in build(eks()).groups:
            assert group.inputs["taints"] == [TAINT], group.urn

    def test_labels_from_config(self, build: Build) -> None:
        built = build(eks())
        assert built.group("general").inputs["labels"] == {"tier": "general"}

    def test_autoscaler_owns_desired_size(self, build: Build) -> None:
        built = build(eks())
        for group in built.groups:
            assert built.ignore_changes(group) == ["scalingConfig.desiredSize"], group.urn

    def test_node_role_is_for_ec2(self, build: Build) -> None:
        built = build(eks())
        role = built.role("node-role")
        assume = json.loads(role.inputs["assumeRolePolicy"])
        assert assume["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
        for group in built.groups:
            assert group.inputs["nodeRoleArn"] == role.outputs["arn"], group.urn


class TestLaunchTemplatePerPool:
    """Each group boots from its own template: IMDSv2 only, encrypted disk, ENI-mode user data."""

    def test_group_uses_its_template(self, build: Build) -> None:
        built = build(eks())
        for pool in ("general", "batch"):
            template, group = built.template(pool), built.group(pool)
            assert group.inputs["launchTemplate"] == {"id": template.id, "version": "1"}
            # EKS refuses a disk size in both the group and its template.
            assert "diskSize" not in group.inputs

    def test_disk_from_config_encrypted(self, build: Build) -> None:
        built = build(eks())
        sizes = {}
        for pool in ("general", "batch"):
            (disk,) = built.template(pool).inputs["blockDeviceMappings"]
            assert disk["deviceName"] == "/dev/xvda"
            assert disk["ebs"]["volumeType"] == "gp3" and disk["ebs"]["encrypted"] == "true"
            sizes[pool] = disk["ebs"]["volumeSize"]
        assert sizes == {"general": 80, "batch": 100}

    @pytest.mark.parametrize(("name", "pool"), [("eks-vpc", "general"), ("eks-subnets", "general")])
    def test_max_pods_follow_the_instance_type(self, name: str, pool: str, build: Build) -> None:
        """Max pods come from the pool's instance type and Cilium's prefix delegation (a
        t3.micro holds 34 pods, an m6i.large hits the 110 cap), not from nodeadm's VPC-CNI
        formula."""
        built = build(eks(name))
        machine = built.group(pool).inputs["instanceTypes"][0]
        parts = _parts(_user_data({"inputs": built.template(pool).inputs}))
        node_config = yaml.safe_load(parts["application/node.eks.aws"])
        expected = max_pods(instance_limits(machine), ENI_PREFIX_DELEGATION)  # type: ignore[arg-type]
        assert node_config["spec"]["kubelet"]["config"]["maxPods"] == expected
        assert expected == {"m6i.large": 110, "t3.micro": 34}[machine]
