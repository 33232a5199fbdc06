"""Names the pack shares with the program, read from ``<pack dir>/data/contract.json``.

The program reads the same file (components/contract.py), so an image slot, an operator digest
key, the GKE mode label and datapaths, or Cilium's taint cannot drift between what the program
builds and what the pack checks. The file ships inside the pack (``pulumi policy publish``
uploads only this folder); a pack without it cannot know what to check, so it fails to start
with the path in the error rather than guessing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

__all__ = [
    "AGENT_NOT_READY_TAINT",
    "CONTRACT_PATH",
    "GKE_DATAPATHS",
    "GKE_MODE_LABEL",
    "IMAGE_SLOT_NAMES",
    "OPERATOR_DEFAULT_DIGEST",
    "OPERATOR_DIGEST_BY_IPAM_FLAG",
]

CONTRACT_PATH: Final = Path(__file__).resolve().parents[1] / "data" / "contract.json"

_CONTRACT: dict[str, Any] = json.loads(CONTRACT_PATH.read_text(encoding="utf-8"))

# Values path -> the component a reviewer knows it as, in the chart's order.
IMAGE_SLOT_NAMES: Final[dict[str, str]] = {
    s["path"]: s["component"] for s in _CONTRACT["imageSlots"]
}
# The operator digest the chart picks follows the IPAM cloud flag (cilium-operator
# _helpers.tpl); first set flag wins, else the generic digest.
OPERATOR_DIGEST_BY_IPAM_FLAG: Final[tuple[tuple[str, str], ...]] = tuple(
    (flag, key) for flag, key in _CONTRACT["operator"]["digestByIpamFlag"]
)
OPERATOR_DEFAULT_DIGEST: Final[str] = _CONTRACT["operator"]["defaultDigest"]
GKE_MODE_LABEL: Final[str] = _CONTRACT["gke"]["modeLabel"]
GKE_DATAPATHS: Final[dict[str, str]] = dict(_CONTRACT["gke"]["datapaths"])
AGENT_NOT_READY_TAINT: Final[dict[str, str]] = dict(_CONTRACT["agentNotReadyTaint"])
