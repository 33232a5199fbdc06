"""What an EKS node needs before Cilium's ENI mode can run on it: the launch template's user data.

In ENI mode the Cilium operator attaches secondary ENIs to nodes at run time and the agent
programs their addresses, routes and routing rules itself. Cilium's ENI docs ("Node
Configuration", cilium/cilium #16186) require that no OS service manages those interfaces. On
Amazon Linux 2023 systemd-networkd does unless told otherwise: it DHCPs a new ENI and installs a
competing default route (awslabs/amazon-eks-ami #1678), races the CNI on secondary ENIs
(aws/amazon-vpc-cni-k8s #3524) and deletes routes and rules it did not create. kops solved the
same problem for AL2023 (kubernetes/kops #17867, #18642): every ENA interface except the
primary is ``Unmanaged=yes``, and the primary is found by its MAC from instance metadata, since
interface names differ by instance family (ens5, ens34, enp39s0...).

Separately, the kubelet's max pods. nodeadm derives it from the instance type as if every
secondary IP were one pod (``ENIs * (IPs per ENI - 1) + 2``, amazon-eks-ami
nodeadm/internal/kubelet/eni_max_pods.go), which is right for the VPC CNI without prefix
delegation and far too low for Cilium with ``eni.awsEnablePrefixDelegation``: each secondary
slot then holds a /28 prefix of 16 addresses. We compute it from the same instance data
(vendored: vendor/amazon-eks-ami/instance-info.jsonl) and the stack's IPAM settings:

    pod IPs  = ENIs * (IPv4 addresses per ENI - 1) * (16 if prefix delegation else 1)
    max pods = min(pod IPs + 2, 110)

- ``- 1``: an ENI's primary address is not handed to pods (Cilium ``use-primary-address`` is off
  by default) while ``first-interface-index`` defaults to 0, so eth0's secondary slots count
  (Cilium docs, "AWS ENI", ENI allocation parameters).
- ``+ 2``: host-network pods take no ENI address; Cilium's agent and Envoy DaemonSets are two
  (the AWS formula counts aws-node and kube-proxy the same way).
- ``110``: the kubelet default and the EKS recommendation for instances under 30 vCPUs
  (amazon-eks-ami max-pods-calculator.sh); more pods per node than that is a decision about
  kube-reserved memory and the API server's load that this program does not take for you.

The NodeConfig sets both ``kubelet.config.maxPods`` (EKS's own NodeConfig for a managed node
group also sets it, and nodeadm merges documents in order with later values winning,
nodeadm/internal/api/merge.go; EKS puts its part first, amazon-eks-ami #1988) and the equivalent
``maxPodsExpression``, from which nodeadm computes kube-reserved memory
(nodeadm/internal/kubelet/config.go).

Not managed here: the AMI (EKS picks the AL2023 release for the cluster version; a custom AMI
would stop EKS from merging its join configuration into this user data, per the EKS launch
template docs), and Bottlerocket, whose settings API has no way to leave ENIs unmanaged: it is
refused in ENI mode by the config model.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from functools import cache
from pathlib import Path

import yaml

__all__ = [
    "INSTANCE_INFO_PATH",
    "KUBELET_MAX_PODS_CAP",
    "NETWORKD_CONF_PATH",
    "NETWORKD_NETWORK_PATH",
    "InstanceLimits",
    "instance_limits",
    "max_pods",
    "max_pods_expression",
    "node_user_data",
]

INSTANCE_INFO_PATH = (
    Path(__file__).resolve().parents[2] / "vendor" / "amazon-eks-ami" / "instance-info.jsonl"
)
KUBELET_MAX_PODS_CAP = 110
# Host-network pods per node that take no ENI address: cilium-agent and cilium-envoy.
_HOST_NETWORK_PODS = 2
_PREFIX_ADDRESSES = 16  # an IPv4 prefix delegated to an ENI slot is a /28

# Files the user data writes on the node. 10- sorts before the AMI's own 70-/80- .network files,
# and systemd-networkd applies the first .network file that matches an interface.
NETWORKD_NETWORK_PATH = "/etc/systemd/network/10-meshless-cilium-enis.network"
NETWORKD_CONF_PATH = "/etc/systemd/networkd.conf.d/80-meshless-cilium.conf"
_BOUNDARY = "MESHLESS-NODE-BOUNDARY"


@dataclass(frozen=True)
class InstanceLimits:
    instance_type: str
    enis: int
    ipv4_per_eni: int


@cache
def _instance_table() -> dict[str, InstanceLimits]:
    table = {}
    for line in INSTANCE_INFO_PATH.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        table[row["instanceType"]] = InstanceLimits(
            row["instanceType"], int(row["defaultMaxENIs"]), int(row["ipv4AddressesPerInterface"])
        )
    return table


def instance_limits(instance_type: str) -> InstanceLimits | None:
    """ENI limits of an EC2 instance type, or None when EKS's table does not list it."""
    return _instance_table().get(instance_type)


def max_pods(limits: InstanceLimits, prefix_delegation: bool) -> int:
    """The kubelet's max pods for Cilium ENI IPAM on this instance type (formula above)."""
    per_slot = _PREFIX_ADDRESSES if prefix_delegation else 1
    pod_ips = limits.enis * (limits.ipv4_per_eni - 1) * per_slot
    return min(pod_ips + _HOST_NETWORK_PODS, KUBELET_MAX_PODS_CAP)


def max_pods_expression(prefix_delegation: bool) -> str:
    """The same formula as a nodeadm CEL expression (variables default_enis, ips_per_eni)."""
    per_slot = _PREFIX_ADDRESSES if prefix_delegation else 1
    pods = f"default_enis * (ips_per_eni - 1) * {per_slot} + {_HOST_NETWORK_PODS}"
    return f"{pods} > {KUBELET_MAX_PODS_CAP} ? {KUBELET_MAX_PODS_CAP} : {pods}"


def _node_config(pods: int, prefix_delegation: bool) -> str:
    document = {
        "apiVersion": "node.eks.aws/v1alpha1",
        "kind": "NodeConfig",
        "spec": {
            "kubelet": {
                "config": {"maxPods": pods},
                "maxPodsExpression": max_pods_expression(prefix_delegation),
            }
        },
    }
    return "---\n" + yaml.safe_dump(document, sort_keys=False, width=1000)


# Runs once at first boot (cloud-init's scripts-user), before Cilium can attach any secondary
# ENI: the agent only starts once the kubelet has joined. IMDSv2 (a session token) because the
# launch template requires it.
_SCRIPT = textwrap.dedent(
    f"""\
    #!/usr/bin/env bash
    # meshless: keep systemd-networkd off the ENIs Cilium attaches (ENI IPAM mode).
    set -euo pipefail
    imds=http://169.254.169.254/latest
    token=$(curl -sSf -X PUT "$imds/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
    mac=$(curl -sSf -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/mac")
    primary=""
    for dev in /sys/class/net/*; do
      if [ "$(cat "$dev/address")" = "$mac" ]; then primary=$(basename "$dev"); fi
    done
    if [ -z "$primary" ]; then
      # Never write a match that could include the primary interface: the node would lose
      # its own address, DNS and the kubelet's path to the API server.
      echo "meshless: no interface has the primary ENI's MAC $mac" >&2
      exit 1
    fi
    mkdir -p "$(dirname {NETWORKD_NETWORK_PATH})" "$(dirname {NETWORKD_CONF_PATH})"
    cat > {NETWORKD_NETWORK_PATH} <<EOF
    # Every ENA interface but the primary one belongs to Cilium's ENI IPAM.
    [Match]
    Driver=ena
    Property=!INTERFACE=$primary

    [Link]
    Unmanaged=yes
    EOF
    cat > {NETWORKD_CONF_PATH} <<'EOF'
    # Leave routes and routing-policy rules that networkd did not create (Cilium's) alone.
    [Network]
    ManageForeignRoutes=no
    ManageForeignRoutingPolicyRules=no
    EOF
    networkctl reload
    """
)


def node_user_data(pods: int, prefix_delegation: bool) -> str:
    """User data in the MIME multi-part form EKS merges for AL2023 managed node groups: a
    NodeConfig part for nodeadm and a shell-script part for cloud-init."""
    message = MIMEMultipart("mixed", boundary=_BOUNDARY)
    message.attach(_part(_node_config(pods, prefix_delegation), "node.eks.aws", "application"))
    message.attach(_part(_SCRIPT, "x-shellscript", "text"))
    return message.as_string()


def _part(body: str, subtype: str, maintype: str) -> MIMEText:
    part = MIMEText(body, subtype, "us-ascii")
    if maintype != "text":
        part.replace_header("Content-Type", f'{maintype}/{subtype}; charset="us-ascii"')
    return part
