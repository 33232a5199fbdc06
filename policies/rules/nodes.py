"""EKS nodes ready for Cilium's ENI mode: a launch template whose user data keeps the OS off
Cilium's ENIs and sizes max pods for its IPAM, with IMDSv2 required.

In ENI mode the Cilium operator attaches secondary ENIs at run time. Cilium's ENI docs ("Node
Configuration", cilium/cilium #16186) require that no OS service manages them; on Amazon Linux
2023 systemd-networkd does unless a .network file marks them unmanaged (kubernetes/kops #17867,
#18642; awslabs/amazon-eks-ami #1678; aws/amazon-vpc-cni-k8s #3524) and networkd.conf tells it
to leave foreign routes and routing-policy rules alone. The program writes exactly that
(components/eks/user_data.py); this policy reads it back from the launch template the node group
uses, so a node group created another way, or a template with other user data, is caught in a
real preview too.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import email
import re
from collections.abc import Mapping
from typing import Any

import yaml
from pulumi_policy import EnforcementLevel

from ._policy import Resource, StackReport, of_types, stack_policy
from ._values import MISSING, describe, is_unknown, lookup
from .kinds import EKS_CLUSTER, EKS_NODE_GROUP, HELM_RELEASE, LAUNCH_TEMPLATE
from .topology import Cluster, Topology

__all__ = ["EKS_NODE_LAUNCH_TEMPLATE", "launch_template_problems"]

_FIX = (
    "Create the node group through EksCluster (components/eks/), whose launch template "
    "carries this user data, or give yours the same configuration"
)
# `cat > PATH <<EOF ... EOF` blocks of the user data's shell script: the files it writes.
_HEREDOC = re.compile(r"cat > (\S+) <<'?(\w+)'?\n(.*?)\n\2\n", re.S)


def _eni_mode(cluster: Cluster) -> bool:
    """Whether the cluster runs our Cilium in ENI mode; unknown values count as ENI mode (the
    program's only EKS mode), so an unreadable release does not waive the check."""
    if cluster.cloud != "eks":
        return False
    for release in cluster.releases:
        values = release.props.get("values", MISSING)
        if is_unknown(values) or values is MISSING:
            return True
        if lookup(values, "eni.enabled") is True or lookup(values, "ipam.mode") == "eni":
            return True
    return not cluster.releases


def _networkd_files(script: str) -> dict[str, configparser.ConfigParser]:
    files = {}
    for path, _marker, body in _HEREDOC.findall(script):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment, method-assign]  # systemd keys are case-sensitive
        try:
            parser.read_string(body)
        except configparser.Error:
            continue
        files[path] = parser
    return files


def _script_problems(script: str) -> list[str]:
    files = _networkd_files(script)
    problems = []
    unmanaged = [
        p
        for path, p in files.items()
        if path.startswith("/etc/systemd/network/")
        and path.endswith(".network")
        and p.get("Match", "Driver", fallback="") == "ena"
        and p.get("Match", "Property", fallback="").startswith("!INTERFACE=")
        and p.get("Link", "Unmanaged", fallback="") == "yes"
    ]
    if not unmanaged:
        problems.append(
            "no systemd-networkd .network file marks the ENA interfaces other than the primary "
            "one Unmanaged=yes ([Match] Driver=ena, Property=!INTERFACE=<primary>)"
        )
    foreign = [
        p
        for path, p in files.items()
        if path.startswith("/etc/systemd/networkd.conf.d/")
        and p.get("Network", "ManageForeignRoutes", fallback="") == "no"
        and p.get("Network", "ManageForeignRoutingPolicyRules", fallback="") == "no"
    ]
    if not foreign:
        problems.append(
            "no networkd.conf.d drop-in sets ManageForeignRoutes=no and "
            "ManageForeignRoutingPolicyRules=no"
        )
    return problems


def _node_config_problems(body: str) -> list[str]:
    try:
        documents = [d for d in yaml.safe_load_all(body) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        return [f"the NodeConfig part is not YAML ({exc.__class__.__name__})"]
    pods = [lookup(d, "spec.kubelet.config.maxPods") for d in documents]
    if not any(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in pods):
        return ["the NodeConfig part sets no kubelet.config.maxPods for Cilium's IPAM"]
    return []


def _user_data_problems(user_data: Any) -> list[str]:
    try:
        text = base64.b64decode(str(user_data), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ["userData is not base64-encoded UTF-8 text"]
    message = email.message_from_string(text)
    if not message.is_multipart():
        return ["userData is not MIME multi-part, the form EKS merges for AL2023 nodes"]
    scripts, configs = [], []
    for part in message.walk():
        payload = part.get_payload(decode=True)
        body = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        if part.get_content_type() == "text/x-shellscript":
            scripts.append(body)
        elif part.get_content_type() == "application/node.eks.aws":
            configs.append(body)
    problems = _script_problems("\n".join(scripts))
    if not configs:
        problems.append("userData has no application/node.eks.aws NodeConfig part")
    else:
        problems += _node_config_problems("\n".join(configs))
    return problems


def launch_template_problems(template: Resource) -> list[str]:
    """What a node launch template lacks for Cilium's ENI mode (empty: nothing)."""
    props = template.props
    problems = []
    tokens = lookup(props, "metadataOptions.httpTokens")
    if tokens != "required" and not is_unknown(tokens):
        problems.append(
            f"metadataOptions.httpTokens is {describe(tokens)}: set it to 'required' (IMDSv2)"
        )
    user_data = props.get("userData", MISSING)
    if is_unknown(user_data):
        problems.append("userData is unknown during preview; it must be a literal")
    elif user_data is MISSING:
        problems.append("it has no userData")
    else:
        problems += _user_data_problems(user_data)
    return problems


def _template_of(group: Resource, templates: dict[str, Resource]) -> Resource | None:
    """The stack's launch template the node group uses: by name, else by dependency (its id is
    an output of the template, so the group depends on it)."""
    reference = group.props.get("launchTemplate", MISSING)
    name = lookup(reference, "name") if isinstance(reference, dict) else MISSING
    for template in templates.values():
        if isinstance(name, str) and template.props.get("name") == name:
            return template
    for urn in group.dependencies:
        if urn in templates:
            return templates[urn]
    return None


def _validate(resources: list[Resource], report: StackReport, _config: Mapping[str, Any]) -> None:
    topology = Topology(resources)
    templates = {r.urn: r for r in resources if r.type == LAUNCH_TEMPLATE}
    for group in (r for r in resources if r.type == EKS_NODE_GROUP):
        cluster = topology.owner(group)
        if cluster is not None and not _eni_mode(cluster):
            continue
        reference = group.props.get("launchTemplate", MISSING)
        if reference in (MISSING, None, {}):
            report(
                f"node group '{group.name}' uses EKS's default launch template: its nodes' "
                "systemd-networkd manages the ENIs Cilium attaches (lost routes, competing "
                f"default routes) and max pods ignores prefix delegation. {_FIX}",
                group.urn,
            )
            continue
        template = _template_of(group, templates)
        if template is None:
            report(
                f"node group '{group.name}' uses launch template {describe(reference)}, which "
                "is not in this stack, so its user data cannot be checked. Manage the launch "
                f"template in the program. {_FIX}",
                group.urn,
            )
            continue
        if not topology.waits_for(group, template):
            # Found by name only: nothing orders the two, and EKS refuses a node group whose
            # launch template does not exist yet (CreateNodegroup, InvalidParameterException).
            report(
                f"node group '{group.name}' does not wait for its launch template "
                f"'{template.name}': the engine may create the group first, which EKS refuses. "
                "Reference the template's id output (or add dependsOn)",
                group.urn,
            )
            continue
        problems = launch_template_problems(template)
        if problems:
            report(
                f"node group '{group.name}' launch template '{template.name}': "
                + "; ".join(problems)
                + f". {_FIX}",
                group.urn,
            )


EKS_NODE_LAUNCH_TEMPLATE = stack_policy(
    name="eks-node-launch-template",
    description=(
        "EKS node groups of clusters running Cilium in ENI mode use a launch template whose "
        "user data leaves every non-primary ENA interface unmanaged by systemd-networkd, keeps "
        "networkd off foreign routes and rules, sets the kubelet's max pods for Cilium's IPAM, "
        "and requires IMDSv2."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate,
    needs_props=of_types(EKS_CLUSTER, HELM_RELEASE, EKS_NODE_GROUP, LAUNCH_TEMPLATE),
)
