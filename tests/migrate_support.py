"""What the `meshless migrate istio` tests share: running a migration on inline YAML and
reading its outputs, report entries and gaps, and the Istio objects they start from."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import yaml

from migrate.run import Migration, migrate

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "istio"


def run(tmp_path: Path, text: str, **kwargs: Any) -> Migration:
    path = tmp_path / "in.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return migrate([path], **kwargs)


def objects(result: Migration, prefix: str) -> dict[str, Any]:
    return {
        name: yaml.safe_load(text) for name, text in result.files.items() if name.startswith(prefix)
    }


def entry(result: Migration, kind: str, name: str) -> dict[str, Any]:
    found = [
        o
        for o in json.loads(result.files["report.json"])["objects"]
        if o["kind"] == kind and o["name"] == name
    ]
    assert len(found) == 1, found
    return found[0]


def gaps(result: Migration, kind: str, name: str) -> dict[str, str]:
    return {g["field"]: g["reason"] for g in entry(result, kind, name)["notCarriedOver"]}


GATEWAY = """
apiVersion: networking.istio.io/{version}
kind: Gateway
metadata: {{name: public, namespace: edge}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
    - port: {{number: 80, name: http, protocol: HTTP}}
      hosts: [shop.example.com]
"""


def vs(http: str, version: str = "v1", gateways: str = "[edge/public]") -> str:
    head = f"""
    apiVersion: networking.istio.io/{version}
    kind: VirtualService
    metadata: {{name: web, namespace: shop}}
    spec:
      hosts: [shop.example.com]
      gateways: {gateways}
      http:
    """
    return textwrap.dedent(head) + textwrap.indent(textwrap.dedent(http), "    ")


def route_rules(result: Migration, kind: str = "httproute") -> list[dict[str, Any]]:
    return objects(result, f"gateway-api/shop/{kind}-web.yaml")[
        f"gateway-api/shop/{kind}-web.yaml"
    ]["spec"]["rules"]


AP = """
apiVersion: security.istio.io/{version}
kind: AuthorizationPolicy
metadata: {{name: {name}, namespace: shop}}
spec:
{body}
"""
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  selector: {app: orders}
  ports: [{port: 80, targetPort: 8080}]
"""


def ap(body: str, name: str = "orders", version: str = "v1") -> str:
    return AP.format(version=version, name=name, body=textwrap.indent(textwrap.dedent(body), "  "))


def service_file(result: Migration, name: str = "orders") -> dict[str, Any]:
    return yaml.safe_load(result.files[f"traffic/shop/{name}.yaml"])["services"][0]


PA = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec:
  mtls: {mode: STRICT}
"""
