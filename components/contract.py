"""Names the program and the policy pack must agree on, read from the pack's own data file.

``policies/data/contract.json`` holds the image slots (values paths of the catalog's images and
their ``imageOverrides`` names), the operator's digest key per cloud, the GKE mode label and
datapaths, and Cilium's agent-not-ready taint. The pack is published alone (``pulumi policy
publish`` uploads only ``policies/``), so the file lives there and the program reads it from
the checkout; policies/rules/contract.py reads the same file. Nothing here is copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

__all__ = [
    "CILIUM_AGENT_NOT_READY_TAINT",
    "CONTRACT_PATH",
    "GKE_DATAPATH",
    "GKE_MODE_LABEL",
    "IMAGE_OVERRIDE_PATHS",
    "IMAGE_SLOT_PATHS",
    "OPERATOR_DIGEST_KEYS",
    "OPERATOR_IMAGE",
    "PACK_DATA_DIR",
]

# The data the pack ships with it: the digest catalog, the chart archive digests, this contract.
PACK_DATA_DIR: Final = Path(__file__).resolve().parents[1] / "policies" / "data"
CONTRACT_PATH: Final = PACK_DATA_DIR / "contract.json"

_CONTRACT: dict[str, Any] = json.loads(CONTRACT_PATH.read_text(encoding="utf-8"))

# Every values path whose image a Cilium release of ours may deploy, in the chart's order.
IMAGE_SLOT_PATHS: Final[tuple[str, ...]] = tuple(s["path"] for s in _CONTRACT["imageSlots"])
# imageOverrides' friendly names -> the chart's values path of that image.
IMAGE_OVERRIDE_PATHS: Final[dict[str, str]] = {
    s["override"]: s["path"] for s in _CONTRACT["imageSlots"] if s["override"]
}
OPERATOR_IMAGE: Final[str] = _CONTRACT["operator"]["path"]
# The chart appends a cloud suffix to the operator repository and takes the matching digest.
OPERATOR_DIGEST_KEYS: Final[dict[str, str]] = dict(_CONTRACT["operator"]["digestByCloud"])
# The GKE component labels each cluster with its mode; each mode has one GKE datapath.
GKE_MODE_LABEL: Final[str] = _CONTRACT["gke"]["modeLabel"]
GKE_DATAPATH: Final[dict[str, str]] = dict(_CONTRACT["gke"]["datapaths"])
# Kubernetes' spelling (effect NoExecute); each cloud's API spells the effect its own way.
CILIUM_AGENT_NOT_READY_TAINT: Final[dict[str, str]] = dict(_CONTRACT["agentNotReadyTaint"])
