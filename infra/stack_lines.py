"""Where in a stack file a policy finding comes from: file and line of the config key.

A finding names a resource (its URN); the resource belongs to a cluster; the policy is about
one of that cluster's config keys (``cilium.kubeProxyReplacement``, ``addons``). The line is
read from the YAML node of that key in ``Pulumi.<stack>.yaml``; when the key is not written
there (a default was used) the nearest written ancestor is named, at worst the cluster's own
entry. A finding whose resource belongs to no cluster has no location.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["POLICY_KEYS", "Location", "StackFileIndex"]

#: policy → config keys of a cluster entry it is about, most specific first.
POLICY_KEYS: dict[str, tuple[str, ...]] = {
    "cilium-images-digest-pinned": ("cilium.imageOverrides", "cilium.version"),
    "cilium-digests-match-catalog": ("cilium.imageOverrides", "cilium.version"),
    "cilium-chart-version-exact": ("cilium.version",),
    "kube-proxy-replacement-strict": ("cilium.kubeProxyReplacement",),
    "hubble-relay-enabled": ("cilium.hubble.relay", "cilium.hubble"),
    "l7-proxy-ready": ("cilium.envoy", "trafficPolicies"),
    "helm-release-fails-safely": ("cilium",),
    "eks-no-conflicting-addons": ("addons",),
    "eks-no-bootstrap-addons": ("addons",),
    "cluster-api-endpoint-restricted": ("endpoint.allowedCidrs", "endpoint.public", "endpoint"),
    "gke-private-nodes": ("endpoint",),
    "gke-mode-stated": ("mode",),
    "network-policies-after-cilium": ("trafficPolicies",),
    "cluster-deletion-protection": ("deletionProtection",),
    "cilium-node-taint": ("nodePools",),
    "eks-node-launch-template": ("nodeImage", "nodePools"),
}
_CLUSTERS_KEYS = ("meshless:clusters", "clusters")


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    key: str  # the config key as a user writes it: meshless:clusters[0].cilium.version


def _get(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


class StackFileIndex:
    """The YAML nodes of a stack file's cluster entries, by cluster name."""

    def __init__(self, path: Path, display: str | None = None) -> None:
        self.display = display or str(path)
        self.clusters: dict[str, tuple[int, yaml.Node]] = {}
        self._clusters_key = "meshless:clusters"
        try:
            root = yaml.compose(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return  # the plan already refused a broken file; no locations then
        config = _get(root, "config") if root is not None else None
        for key in _CLUSTERS_KEYS:
            found = _get(config[1], key) if config else None
            if found and isinstance(found[1], yaml.SequenceNode):
                self._clusters_key = f"meshless:{key.removeprefix('meshless:')}"
                for index, item in enumerate(found[1].value):
                    name = _get(item, "name")
                    if name and isinstance(name[1], yaml.ScalarNode):
                        self.clusters[name[1].value] = (index, item)
                break

    def locate(self, cluster: str | None, policy: str) -> Location | None:
        """The first of the policy's keys written in the cluster's entry; else the deepest
        written part of one; else the cluster entry itself."""
        if cluster is None or cluster not in self.clusters:
            return None
        index, item = self.clusters[cluster]
        base = f"{self._clusters_key}[{index}]"
        best: tuple[int, list[str]] | None = None
        for path in POLICY_KEYS.get(policy, ()):
            line, written = _walk(item, path.split("."))
            if line is not None and (best is None or len(written) > len(best[1])):
                best = (line, written)
            if written == path.split("."):
                break
        if best is None:
            name = _get(item, "name")
            return Location(self.display, (name[0] if name else item).start_mark.line + 1, base)
        return Location(self.display, best[0], ".".join([base, *best[1]]))


def _walk(node: yaml.Node, parts: list[str]) -> tuple[int | None, list[str]]:
    """(line of the deepest written key, the parts written) along ``parts``."""
    line, written = None, []
    for part in parts:
        found = _get(node, part)
        if found is None:
            break
        written.append(part)
        line = found[0].start_mark.line + 1
        node = found[1]
    return line, written
