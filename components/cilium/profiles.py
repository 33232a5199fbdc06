"""Cilium performance profiles: what each asks of the datapath, and what it needs first.

A profile (``cilium.profile``) is checked against the cluster's node kernel and cloud before
any resource exists (``check_profile``, called by the cluster config models), and turned into
chart values (``profile_values``). Kernel floors come from the Cilium 1.16 tuning guide.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["Cloud", "Profile", "ProfileError", "check_profile", "profile_values"]

Profile = Literal["default", "throughput", "latency"]
Cloud = Literal["eks", "gke"]


class ProfileError(ValueError):
    """A performance profile whose preconditions the cluster does not meet."""


# Kernel floors from the Cilium 1.16 tuning guide.
_NETKIT_KERNEL = (6, 8)
_BIG_TCP_IPV4_KERNEL = (6, 3)
_BBR_KERNEL = (5, 18)

_PROFILE_NEEDS: dict[str, dict[str, bool]] = {
    "default": {},
    "throughput": {"big_tcp": True, "bbr": True, "netkit": True},
    "latency": {"bbr": True, "netkit": True, "xdp": True},
}


def _kernel(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def check_profile(profile: str, cloud: Cloud, node_kernel: tuple[int, int]) -> list[str]:
    """Every unmet precondition of a profile, each saying what is needed and what to do."""
    needs = _PROFILE_NEEDS[profile]
    problems: list[str] = []
    floors = (
        ("netkit", _NETKIT_KERNEL, "netkit devices"),
        ("big_tcp", _BIG_TCP_IPV4_KERNEL, "IPv4 BIG TCP"),
        ("bbr", _BBR_KERNEL, "BBR in the bandwidth manager"),
    )
    for feature, floor, what in floors:
        if needs.get(feature) and node_kernel < floor:
            problems.append(
                f"profile {profile!r} uses {what}, which needs a node kernel >= "
                f"{_kernel(floor)}; the node image has {_kernel(node_kernel)}. Use a node image "
                f"with a newer kernel (nodeKernel) or profile 'default'"
            )
    if needs.get("xdp") and cloud == "gke":
        problems.append(
            f"profile {profile!r} uses XDP load-balancer acceleration, which GCP's gVNIC/virtio "
            "drivers do not support for Cilium; use profile 'throughput' or 'default' on GKE"
        )
    return problems


def profile_values(profile: str, cloud: Cloud) -> dict[str, Any]:
    needs = _PROFILE_NEEDS[profile]
    values: dict[str, Any] = {
        "bpf": {"masquerade": True, "datapathMode": "netkit" if needs.get("netkit") else "veth"},
        "bandwidthManager": {"enabled": bool(needs.get("bbr")), "bbr": bool(needs.get("bbr"))},
        "enableIPv4BIGTCP": bool(needs.get("big_tcp")),
    }
    if needs.get("xdp") and cloud != "gke":
        # best-effort, not native: native needs XDP on every device the agent uses, and on EKS
        # the ENA driver runs XDP only with MTU <= 3498 (nodes default to 9001) while ENI mode
        # attaches several devices (Cilium docs, kubeproxy-free, "NodePort XDP on AWS").
        # best-effort accelerates where the driver can and leaves the rest to tc BPF.
        values["loadBalancer"] = {"acceleration": "best-effort"}
    return values
