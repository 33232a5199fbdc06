"""Names a cloud or Kubernetes would refuse, refused before any resource exists.

The offline plan cannot ask AWS or Google, so the shapes they document are checked here:
- EC2 instance types are ``<family>.<size>``: a family with a generation digit (``m6i``,
  ``c7gn``, ``u-6tb1``) and a size (``large``, ``2xlarge``, ``metal``, ``metal-24xl``)
  (https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html). Graviton
  families carry a ``g`` after the generation (``m7g``, ``c6gn``, ``t4g``) and need an ARM_64
  node image; every other family an x86_64 one (EKS refuses a node group whose AMI type does
  not match the instance architecture).
- Compute Engine machine types are dash-separated, with no dot (``e2-standard-4``,
  ``n2-custom-4-16384``, ``c3-standard-4-lssd``)
  (https://cloud.google.com/compute/docs/machine-resource).
- Kubernetes label keys are an optional DNS-subdomain prefix (<= 253) and a name (<= 63,
  alphanumeric at both ends, ``-_.`` inside); values are empty or a name-shaped string
  (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["check_ec2_instance_type", "check_gce_machine_type", "check_labels"]

_EC2: Final = re.compile(
    r"^(?P<family>[a-z][a-z0-9-]*?\d[a-z0-9-]*)\."
    r"(nano|micro|small|medium|large|xlarge|[1-9]\d*xlarge|metal(-[1-9]\d*xl)?)$"
)
_GRAVITON: Final = re.compile(r"^[a-z]+\d+g")
_GCE: Final = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")
_LABEL_NAME: Final = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


def check_ec2_instance_type(value: str, node_image: str) -> str | None:
    """Why EKS would refuse this instance type for this node image, or None."""
    match = _EC2.match(value)
    if match is None:
        hint = (
            " (that is a Compute Engine machine type)"
            if _GCE.match(value) and "." not in value
            else ""
        )
        return (
            f"{value!r} is not an EC2 instance type{hint}; EKS node groups take types like "
            "m6i.large or m7g.xlarge"
        )
    arm = bool(_GRAVITON.match(match.group("family")))
    image_arm = "ARM_64" in node_image
    if arm != image_arm:
        return (
            f"{value!r} is an {'ARM (Graviton)' if arm else 'x86_64'} instance type but "
            f"nodeImage is {node_image}; pick a matching "
            f"{'ARM_64' if arm else 'x86_64'} nodeImage or another instance type"
        )
    return None


def check_gce_machine_type(value: str) -> str | None:
    if _GCE.match(value):
        return None
    hint = " (that is an EC2 instance type)" if _EC2.match(value) else ""
    return (
        f"{value!r} is not a Compute Engine machine type{hint}; GKE node pools take types like "
        "e2-standard-4 or n2-highmem-8"
    )


def _label_key_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "its prefix must be a DNS subdomain such as example.com"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return "its name must be 1-63 characters, letters and digits at both ends, - _ . inside"
    return None


def check_labels(labels: dict[str, str]) -> str | None:
    """The first label Kubernetes would refuse, with why; None when all are valid."""
    for key, value in labels.items():
        problem = _label_key_problem(key)
        if problem:
            return f"label key {_short(key)} is not a valid Kubernetes label key: {problem}"
        if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
            return (
                f"label {_short(key)} has value {_short(value)}, which Kubernetes refuses: "
                "values are empty or 1-63 characters, letters and digits at both ends, - _ . "
                "inside"
            )
    return None


def _short(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:45] + "...") + f" ({len(text)} chars)"
