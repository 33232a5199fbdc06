"""One Cilium per cluster, installed only our way; only providers the pack can judge; and no
verdict of "clean" on values the gate could not read.

Our way is one ``kubernetes:helm.sh/v3:Release`` of chart ``cilium`` from
https://helm.cilium.io (components/cilium/release.py). Everything else that installs Cilium escapes
part of the pack: a ``helm.sh/v4:Chart`` or v3 ``Chart`` renders its objects client-side (the
digest and kube-proxy policies were written for the Release's values), a chart given as a local
folder or archive is whatever is on the deployer's disk, and a rendered child declared on its
own (a ``cilium-config`` ConfigMap with another kube-proxy-replacement mode, a second agent
DaemonSet) changes the running Cilium behind the release's back. They are recognised by what
they are (chart, config map name, Cilium images and binaries), not by resource names.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from pulumi_policy import EnforcementLevel

from ._policy import Report, Resource, StackReport, of_types, resource_policy, stack_policy
from ._values import MISSING, describe, is_encrypted, lookup, resource_label
from .cilium import is_cilium_release
from .kinds import (
    EKS_ADDON,
    EKS_CLUSTER,
    EKS_NODE_GROUP,
    GKE_CLUSTER,
    GKE_NODE_POOL,
    HELM_INSTALLS,
    HELM_RELEASE,
)
from .pods import Container, command_words, containers, kind_of, objects_in

__all__ = ["CILIUM_INSTALLED_OUR_WAY", "SECRET_VALUES_READABLE", "SUPPORTED_PROVIDERS"]

# The scheme is cilium-chart-version-exact's business (https only); this is about the source.
_PACK_DIR: Final = Path(__file__).resolve().parent.parent
_OUR_REPO: Final = re.compile(r"^https?://helm\.cilium\.io/?$")
# The publisher's OCI copy of the same chart (https://docs.cilium.io: "helm install cilium
# oci://quay.io/cilium/charts/cilium").
_OUR_OCI: Final = "oci://quay.io/cilium/charts/cilium"
# Cilium's own component images: a repository named cilium* (cilium, cilium-envoy, a mirror's
# cilium-agent), or one of the component names the chart uses under a "cilium" organisation
# (quay.io/cilium/operator-aws, .../cilium/hubble-relay). Cilium's demo apps (cilium/starwars,
# cilium/json-mock) are not components and pass.
_CILIUM_NAME: Final = re.compile(r"^cilium([-_.][\w.-]+)?$", re.I)
_CILIUM_COMPONENTS: Final = frozenset(
    {
        "operator",
        "operator-generic",
        "operator-aws",
        "operator-azure",
        "operator-alibabacloud",
        "hubble-relay",
        "hubble-ui",
        "hubble-ui-backend",
        "clustermesh-apiserver",
        "kvstoremesh",
        "certgen",
        "startup-script",
    }
)


def _is_cilium_image(repository: str) -> bool:
    parts = repository.lower().split("/")
    name, org = parts[-1], parts[-2] if len(parts) > 1 else ""
    return bool(_CILIUM_NAME.match(name)) or (org == "cilium" and name in _CILIUM_COMPONENTS)


_CILIUM_BINARY: Final = re.compile(r"(^|/)(cilium-agent|cilium-operator[\w-]*)(\s|$)")
_CILIUM_CONFIG_MAPS: Final = {"cilium-config"}


def _repository(image: str) -> str:
    """``quay.io/cilium/cilium:v1.16@sha256:..`` -> ``quay.io/cilium/cilium``."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rindex(":")]
    return name.strip()


def _cilium_container(container: Container) -> str | None:
    if isinstance(container.image, str) and _is_cilium_image(_repository(container.image)):
        return f"runs the Cilium image {describe(container.image)}"
    for _key, word in command_words(container):
        if _CILIUM_BINARY.search(word):
            return f"runs {describe(word)}"
    return None


def _config_map_problem(res: Resource) -> str | None:
    kind, _ = kind_of(res.type)
    for obj in objects_in(res.props):
        obj_kind = kind if obj is res.props else (obj.get("kind") or kind)
        name = lookup(obj, "metadata.name")
        if obj_kind in ("ConfigMap", "ConfigMapPatch") and name in _CILIUM_CONFIG_MAPS:
            mode = lookup(obj, "data.kube-proxy-replacement")
            return (
                f"declares Cilium's own config map {describe(name)} (kube-proxy-replacement "
                f"{describe(mode)}), which the Cilium release renders and owns"
            )
    return None


_CILIUM_POLICY_KINDS: Final = ("kubernetes:cilium.io/",)
CHARTS_ENV: Final = "MESHLESS_CHART_DIGESTS"


def _published_digests() -> dict[str, str]:
    """Chart version -> sha256 of the published archive: the program's own record
    (``<pack dir>/data/cilium-charts.json``, shipped with the pack, or the file in
    MESHLESS_CHART_DIGESTS)."""
    override = os.environ.get(CHARTS_ENV)
    path = Path(override) if override else _PACK_DIR / "data" / "cilium-charts.json"
    try:
        charts = json.loads(path.read_text(encoding="utf-8"))["charts"]
        return {str(v): str(entry["digest"]) for v, entry in charts.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _archive_problem(chart: str, version: Any) -> str | None:
    """A local chart archive is our way only when its bytes are the published chart's (the
    program checks that before installing it: components/chart_archive.py); the pack checks
    again, so a swapped file or an archive of another chart is refused."""
    expected = _published_digests().get(str(version))
    if expected is None:
        return (
            f"installs Cilium from the archive {describe(chart)}, and no published sha256 is "
            f"recorded for chart version {describe(version)} to check it against"
        )
    try:
        digest = "sha256:" + hashlib.sha256(Path(chart).read_bytes()).hexdigest()
    except (OSError, ValueError):
        return (
            f"installs Cilium from the archive {describe(chart)}, which cannot be read here, "
            "so it cannot be shown to be the published chart; gate where the archive is"
        )
    if digest != expected:
        return (
            f"installs Cilium from the archive {describe(chart)} whose sha256 is {digest}, not "
            f"the published chart {version}'s {expected}: a local folder, archive or other "
            "source is whatever happens to be on the deployer's disk"
        )
    return None


def _install_problem(res: Resource) -> str | None:
    """Why this resource installs or changes Cilium other than through our release."""
    if res.type in HELM_INSTALLS:
        if not is_cilium_release(res.props):
            return None
        if res.type != HELM_RELEASE:
            return (
                f"installs Cilium as a {res.type.rsplit(':', 2)[-2]} {res.type.rsplit(':', 1)[-1]}"
            )
        chart, repo = res.props.get("chart"), lookup(res.props, "repositoryOpts.repo")
        published = chart == "cilium" and isinstance(repo, str) and bool(_OUR_REPO.match(repo))
        if isinstance(chart, str) and chart.endswith(".tgz") and not published:
            problem = _archive_problem(chart, res.props.get("version"))
            if problem:
                return problem
        elif not published and chart != _OUR_OCI:
            return (
                f"installs Cilium from chart {describe(chart)} (repository {describe(repo)}), "
                "not the published chart: a local folder, archive or other source is "
                "whatever happens to be on the deployer's disk"
            )
        postrender = res.props.get("postrender")
        if postrender not in (None, "", MISSING):
            # A post-renderer rewrites the rendered manifests after every check here.
            return f"passes the rendered chart through the post-renderer {describe(postrender)}"
        return None
    if not res.type.startswith("kubernetes:") or res.type.startswith(_CILIUM_POLICY_KINDS):
        return None
    problem = _config_map_problem(res)
    if problem:
        return problem
    for container in containers(res.props):
        sign = _cilium_container(container)
        if sign:
            return f"container '{container.name}' ({container.path}) {sign}: a second Cilium"
    return None


def _validate_installed(
    resources: list[Resource], report: StackReport, _config: Mapping[str, Any]
) -> None:
    for res in resources:
        problem = _install_problem(res)
        if problem:
            report(
                f"{resource_label(res.type, res.name)} {problem}. Each cluster runs one Cilium, "
                "installed only by its CiliumRelease (kubernetes:helm.sh/v3:Release of chart "
                '"cilium" from https://helm.cilium.io); change the release\'s values instead '
                "and remove this resource",
                res.urn,
            )


CILIUM_INSTALLED_OUR_WAY = stack_policy(
    name="cilium-installed-our-way",
    description=(
        "Cilium reaches a cluster only through its CiliumRelease: no helm.sh/v4 or v3 Chart "
        "of Cilium, no Cilium chart from a local folder or archive, and no Cilium piece "
        "declared on its own (cilium-config, a Cilium agent/operator/Envoy container in any "
        "kind, patch or list)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_installed,
    # Cilium's own policy kinds carry no pods; skipping them keeps AnalyzeStack cheap with
    # thousands of CiliumNetworkPolicies.
    needs_props=lambda t: t.startswith("kubernetes:") and not t.startswith(_CILIUM_POLICY_KINDS),
)

# Modules that create EKS or GKE resources, in any provider package.
_CLUSTER_MODULES: Final = re.compile(r"^(eks|container|gke)(/|$)", re.I)
_JUDGED_PACKAGES: Final = {"aws", "gcp"}


def _unsupported(resource_type: str) -> str | None:
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] in ("pulumi", "kubernetes", "meshless"):
        return None
    package, module = parts[0], parts[1]
    if package in _JUDGED_PACKAGES:
        return None
    if package == "eks" or _CLUSTER_MODULES.match(module):
        return package
    return None


def _validate_providers(
    resources: list[Resource], report: StackReport, _config: Mapping[str, Any]
) -> None:
    for res in resources:
        package = _unsupported(res.type)
        if package:
            report(
                f"{resource_label(res.type, res.name)} is an EKS/GKE resource of the "
                f"'{package}' provider, which meshless does not support: the pack judges EKS "
                "and GKE (add-ons, bootstrap add-ons, endpoint, encryption) only as the aws and "
                "gcp providers declare them, so this one would pass unchecked. Declare it with "
                "the aws (aws:eks/...) or gcp (gcp:container/...) provider",
                res.urn,
            )


SUPPORTED_PROVIDERS = stack_policy(
    name="supported-cluster-providers",
    description=(
        "EKS and GKE resources come from the aws and gcp providers only; any other provider "
        "that can create them (aws-native, google-native, pulumi-eks, ...) is refused, "
        "because the pack's cluster policies would not see it."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_providers,
    needs_props=lambda _t: False,
)

_SECRET_JUDGED: Final = (
    EKS_CLUSTER,
    GKE_CLUSTER,
    EKS_ADDON,
    EKS_NODE_GROUP,
    GKE_NODE_POOL,
    *HELM_INSTALLS,
)


def _encrypted_paths(value: Any, here: str) -> Iterator[str]:
    if is_encrypted(value):
        yield here or "(the whole resource)"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _encrypted_paths(item, f"{here}.{key}" if here else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _encrypted_paths(item, f"{here}[{index}]")


def _validate_secrets(res: Resource, report: Report, _config: Mapping[str, Any]) -> None:
    paths = list(_encrypted_paths(res.props, ""))
    if not paths:
        return
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    report(
        f"{resource_label(res.type, res.name)}: {shown} is an encrypted secret in this stack "
        "export, so the policies that judge it (endpoint allow-list, KMS key, chart values...) "
        "could not look. Export with `pulumi stack export --show-secrets` (it needs the "
        "stack's secrets provider, e.g. PULUMI_CONFIG_PASSPHRASE) and gate that file, or run "
        "`pulumi preview --policy-pack policies`, where the engine decrypts before the pack runs"
    )


SECRET_VALUES_READABLE = resource_policy(
    name="secret-values-readable",
    description=(
        "A value the cluster, add-on, node-pool and Helm policies judge must be readable: an "
        "encrypted secret in a stack export (exported without --show-secrets) is a violation, "
        "never a silent pass. Mandatory in prod, advisory in staging."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_secrets,
    applies_to=of_types(*_SECRET_JUDGED),
)
