"""The vendored CRD schemas the migration validates its input and output against.

``vendor/crd-schemas/`` holds copies of datreeio/CRDs-catalog's OpenAPI schemas; their source,
version and sha256 are in ``vendor/PROVENANCE.json``. Each file's sha256 is checked against that
record before use, so a changed copy fails loudly instead of validating against something else.
No schema is vendored for RequestAuthentication and Sidecar; those kinds are reported as not
migrated and only their shape is checked.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

__all__ = [
    "VENDOR",
    "VendoredSchemaError",
    "cnp_errors",
    "gateway_api_errors",
    "istio_errors",
    "istio_schema_for",
    "schema_errors",
]

VENDOR = Path(__file__).resolve().parents[1] / "vendor"

# Istio serves the same schema for every version of a kind (v1 is v1beta1 is v1alpha3 in the
# CRD's `versions` list), so the v1 schema checks all three.
_ISTIO_KIND_FILES = {
    "VirtualService": "istio-virtualservice_v1.json",
    "DestinationRule": "istio-destinationrule_v1.json",
    "Gateway": "istio-gateway_v1.json",
    "ServiceEntry": "istio-serviceentry_v1.json",
    "AuthorizationPolicy": "istio-authorizationpolicy_v1.json",
    "PeerAuthentication": "istio-peerauthentication_v1.json",
}
_GATEWAY_KIND_FILES = {
    "Gateway": "gatewayapi-gateway_v1.json",
    "HTTPRoute": "gatewayapi-httproute_v1.json",
    "GRPCRoute": "gatewayapi-grpcroute_v1.json",
    "ReferenceGrant": "gatewayapi-referencegrant_v1beta1.json",
}
_HOST = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class VendoredSchemaError(RuntimeError):
    """A vendored schema is missing or its bytes differ from the recorded sha256."""


@cache
def _recorded(name: str) -> str:
    files = json.loads((VENDOR / "PROVENANCE.json").read_text(encoding="utf-8"))["files"]
    return str(files[f"crd-schemas/{name}"]["sha256"])


@cache
def _validator(name: str) -> jsonschema.Draft7Validator:
    path = VENDOR / "crd-schemas" / name
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != _recorded(name):
        raise VendoredSchemaError(
            f"{path}: sha256 {digest} differs from vendor/PROVENANCE.json's {_recorded(name)}"
        )
    formats = jsonschema.FormatChecker()
    formats.checks("cidr", raises=ValueError)(lambda value: bool(ipaddress.ip_network(value)))
    formats.checks("idn-hostname")(lambda value: bool(_HOST.fullmatch(value)))
    return jsonschema.Draft7Validator(json.loads(data), format_checker=formats)


def schema_errors(name: str, obj: Any) -> list[str]:
    """Every error of ``obj`` against the vendored schema ``name``, as ``path: message``."""
    errors = sorted(_validator(name).iter_errors(obj), key=lambda e: list(map(str, e.path)))
    out = []
    for error in errors:
        where = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in error.path)
        out.append(f"{where.replace('.[', '[') or '(top)'}: {_short(error.message)}")
    return out


def _short(message: str) -> str:
    return message if len(message) < 200 else message[:197] + "..."


def istio_schema_for(kind: str) -> str | None:
    return _ISTIO_KIND_FILES.get(kind)


def istio_errors(kind: str, obj: dict[str, Any]) -> list[str]:
    """Schema errors of an Istio object (its ``spec``; the schemas describe spec and status)."""
    name = _ISTIO_KIND_FILES.get(kind)
    if name is None:
        spec = obj.get("spec", {})
        return [] if isinstance(spec, dict) else ["spec: must be a mapping"]
    return schema_errors(name, {"spec": obj.get("spec", {})})


def gateway_api_errors(obj: dict[str, Any]) -> list[str]:
    """Schema errors of an emitted Gateway API object against the v1.1 standard schemas."""
    return schema_errors(_GATEWAY_KIND_FILES[obj["kind"]], obj)


def cnp_errors(obj: dict[str, Any]) -> list[str]:
    """Schema errors of a CiliumNetworkPolicy against the Cilium 1.16 CRD schema."""
    return schema_errors("ciliumnetworkpolicy_v2.json", obj)
