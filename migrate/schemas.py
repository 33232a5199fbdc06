"""The vendored CRD schemas the migration validates its input and output against.

``vendor/crd-schemas/`` holds copies of datreeio/CRDs-catalog's OpenAPI schemas (the same
files and layout as the repository's vendor folder; see its provenance file). Each file's
sha256 is checked before use, so a changed copy fails loudly instead of validating against
something else. Istio publishes no vendored schema for RequestAuthentication and Sidecar
here; those kinds are reported as not migrated and only their shape is checked.
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
    "SCHEMA_FILES",
    "VENDOR",
    "cnp_errors",
    "gateway_api_errors",
    "istio_errors",
    "istio_schema_for",
    "schema_errors",
]

VENDOR = Path(__file__).resolve().parents[1] / "vendor" / "crd-schemas"

# file -> (source, sha256 of the vendored bytes)
_ISTIO = "datreeio/CRDs-catalog e21ff00 (Istio v1 CRDs, 2025-05-09)"
_GATEWAY = "datreeio/CRDs-catalog 71d3f04 (Gateway API v1.1.0 standard channel)"
SCHEMA_FILES: dict[str, tuple[str, str]] = {
    "istio-virtualservice_v1.json": (
        _ISTIO,
        "ea15f5cb9aecbddaf722a05b0c2897381e8fd1d376fcaa0d4439d2de1f1c9264",
    ),
    "istio-destinationrule_v1.json": (
        _ISTIO,
        "332a84cc29b45551d9aa6d4282c108c4d99ff6d4fa62848ad74221226737b691",
    ),
    "istio-gateway_v1.json": (
        _ISTIO,
        "1982366d33fe713f3f822ac01e141404a0a8f0635defddf4c78e272e9ece055b",
    ),
    "istio-serviceentry_v1.json": (
        _ISTIO,
        "8e46710fa0aa3976bd0b2259b1144ebc59ac7339efac57bfb94c7347b833155b",
    ),
    "istio-authorizationpolicy_v1.json": (
        _ISTIO,
        "fbcb75e9ef6cd0f8ca184c16dea7a29f540cb8b883012770b25e79f1357967b0",
    ),
    "istio-peerauthentication_v1.json": (
        _ISTIO,
        "709036474de0fb0a939163bb1eaf014e3f83f65b9971cd505e08b7104aacbace",
    ),
    "gatewayapi-gateway_v1.json": (
        _GATEWAY,
        "d6b2694c00ac5ad8277b89a116d92a2fe5c8dc6393801f0c86ba40e0d3bbabc6",
    ),
    "gatewayapi-httproute_v1.json": (
        _GATEWAY,
        "eb8b4d56dfc220f4f6d84b272b5bc4b9fa45210d3b02489e5cc3f9354b28e939",
    ),
    "gatewayapi-grpcroute_v1.json": (
        _GATEWAY,
        "f72404c19cd8e58ec38248d8845e19e03a9f6b2405f4ddc293f824693df52a1c",
    ),
    "gatewayapi-referencegrant_v1beta1.json": (
        _GATEWAY,
        "7c00ac619a3b12292b4589f12ab8580fc0201bab5fd0611a07c8ba633a507fc7",
    ),
    "ciliumnetworkpolicy_v2.json": (
        "datreeio/CRDs-catalog d3f84be (Cilium 1.16.0 CRDs)",
        "1786504eaa6ba10260cbee88bdd64735b24814cbbfd6fc3d91728f6305a15448",
    ),
}

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
def _validator(name: str) -> jsonschema.Draft7Validator:
    path = VENDOR / name
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SCHEMA_FILES[name][1]:
        raise VendoredSchemaError(
            f"{path}: sha256 {digest} differs from the recorded {SCHEMA_FILES[name][1]}"
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
