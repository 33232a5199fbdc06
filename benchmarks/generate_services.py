"""Write N services' traffic-policy files into a folder, shaped like a real migration.

    python benchmarks/generate_services.py 127 out/bench/services-127
    python benchmarks/generate_services.py 1270 out/bench/services-1270 --seed 7 --force

Services are grouped 16 to a team; each team is a namespace and a subfolder, each service
one file. Every team has one entry point reached through the ingress controller; the other
services are called by one to three earlier services (mostly from their own team, sometimes
across namespaces) with HTTP rules (literal paths, prefixes, regexes, a required header) or
gRPC methods; Prometheus scrapes every service; some reach external APIs by FQDN or a
partner's CIDR; every fifth fetches cloud credentials (``cloudIdentity``) and the last
service of each team is a controller that talks to the Kubernetes API (``kubeApiserver``).
``flows.yaml`` holds what the policies must allow and deny (every declared call, requests the
L7 rules refuse, strangers, undeclared names and addresses), about eight flows per service, so
the plan benchmark covers flow evaluation too. The same N and seed always give the same files,
and the set loads without errors or warnings, so timings compare like with like. N = 127 is
the seed's migration size.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

__all__ = ["TEAM_SIZE", "generate", "write"]

TEAM_SIZE = 16
_RESOURCES = ("orders", "carts", "users", "invoices", "items", "quotes", "stock", "reviews")
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_VENDORS = ("api.stripe.com", "api.sendgrid.com", "hooks.slack.com", "api.twilio.com")


def _name(index: int) -> tuple[str, str]:
    return f"team-{index // TEAM_SIZE:02d}", f"svc-{index:04d}"


def _http_rules(rng: random.Random) -> list[dict[str, Any]]:
    resource = rng.choice(_RESOURCES)
    rules: list[dict[str, Any]] = [
        {"method": "GET", "pathPrefix": f"/api/v1/{resource}/"},
        {"method": "POST", "path": f"/api/v1/{resource}", "headers": [{"name": "X-Request-Id"}]},
    ]
    if rng.random() < 0.5:
        rules.append({"method": ["PUT", "DELETE"], "pathRegex": f"/api/v1/{resource}/[0-9]+"})
    return rules


def _callers(index: int, rng: random.Random) -> list[dict[str, str]]:
    """One to three earlier services; a fifth of them from another team (namespace)."""
    namespace, _ = _name(index)
    team_start = index - index % TEAM_SIZE
    picks: set[int] = set()
    for _ in range(rng.randint(1, 3)):
        if team_start > 0 and rng.random() < 0.2:
            picks.add(rng.randrange(0, team_start))
        else:
            picks.add(rng.randrange(team_start, index))
    peers = []
    for pick in sorted(picks):
        their_namespace, their_name = _name(pick)
        peer = {"service": their_name}
        if their_namespace != namespace:
            peer["namespace"] = their_namespace
        peers.append(peer)
    return peers


def _service(index: int, rng: random.Random) -> dict[str, Any]:
    namespace, name = _name(index)
    grpc = index % 3 == 2
    ports: list[dict[str, Any]] = [
        {"name": "http", "port": 8080},
        {"name": "metrics", "port": 9102},
    ]
    if grpc:
        ports.insert(1, {"name": "grpc", "port": 9090})
    if index % TEAM_SIZE == 0:
        entry: dict[str, Any] = {
            "from": [{"entity": "ingress"}],
            "ports": ["http"],
            "http": [{"method": ["GET", "HEAD"], "pathPrefix": "/"}, *_http_rules(rng)],
        }
    else:
        entry = {"from": _callers(index, rng), "ports": ["http"], "http": _http_rules(rng)}
    ingress = [entry]
    if grpc and index % TEAM_SIZE:
        package = f"{namespace.replace('-', '')}.{name.replace('-', '')}.v1.Api"
        ingress.append(
            {
                "from": entry["from"],
                "ports": ["grpc"],
                "grpc": [{"service": package, "methods": ["Get", "List", "Watch"]}],
            }
        )
    ingress.append(
        {
            "from": [
                {"namespace": "monitoring", "labels": {"app.kubernetes.io/name": "prometheus"}}
            ],
            "ports": ["metrics"],
            "http": [{"method": "GET", "path": "/metrics"}],
        }
    )
    service: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "ports": ports,
        "ingress": ingress,
    }
    egress = []
    if index % 10 == 3:
        egress.append({"to": [{"fqdn": _VENDORS[index % len(_VENDORS)]}], "ports": [443]})
    if index % 25 == 7:
        egress.append(
            {"to": [{"cidr": "198.51.100.0/24", "except": ["198.51.100.128/25"]}], "ports": [443]}
        )
    if egress:
        service["egress"] = egress
    if index % 5 == 1:
        service["cloudIdentity"] = True
    if index % TEAM_SIZE == TEAM_SIZE - 1:
        service["kubeApiserver"] = True
    return service


def _end(index: int) -> dict[str, str]:
    namespace, name = _name(index)
    return {"service": name, "namespace": namespace}


def _flow(
    name: str, source: dict[str, Any], target: dict[str, Any], expect: str, **extra: Any
) -> dict[str, Any]:
    return {"name": name, "from": source, "to": target, **extra, "expect": expect}


def _flows(index: int, service: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """What the generated policies of one service must allow and deny."""
    me = _end(index)
    name = me["service"]
    entry = service["ingress"][0]
    # The resource prefix of its HTTP rules (entry points also allow GET / for browsers).
    base = next(r["pathPrefix"] for r in entry["http"] if r.get("pathPrefix", "/") != "/")
    base = base.rstrip("/")
    callers = [{"entity": "ingress"}] if entry["from"] == [{"entity": "ingress"}] else entry["from"]
    flows = []
    for caller in callers:
        source = caller if "entity" in caller else {"namespace": me["namespace"], **caller}
        who = caller.get("service") or caller.get("entity")
        flows.append(
            _flow(f"{who} -> {name} GET", source, me, "allow", port=8080,
                  http={"method": "GET", "path": f"{base}/42"})
        )  # fmt: skip
    first = callers[0] if "entity" in callers[0] else {"namespace": me["namespace"], **callers[0]}
    flows += [
        _flow(f"{name} POST with request id", first, me, "allow", port=8080,
              http={"method": "POST", "path": base, "headers": {"X-Request-Id": "1"}}),
        _flow(f"{name} POST without request id", first, me, "deny", port=8080,
              http={"method": "POST", "path": base}),
        _flow(f"{name} has no admin API", first, me, "deny", port=8080,
              http={"method": "PATCH", "path": "/admin"}),
        _flow(f"prometheus scrapes {name}",
              {"namespace": "monitoring", "labels": {"app.kubernetes.io/name": "prometheus"}},
              me, "allow", port=9102, http={"method": "GET", "path": "/metrics"}),
    ]  # fmt: skip
    if len(service["ingress"]) == 3:  # gRPC
        package = service["ingress"][1]["grpc"][0]["service"]
        flows += [
            _flow(f"{name} gRPC Get", first, me, "allow", port=9090,
                  grpc={"service": package, "method": "Get"}),
            _flow(f"{name} gRPC Delete is not declared", first, me, "deny", port=9090,
                  grpc={"service": package, "method": "Delete"}),
        ]  # fmt: skip
    if index + 1 < count:  # callers are always earlier services, so a later one is a stranger
        flows.append(_flow(f"{_name(index + 1)[1]} is no caller of {name}", _end(index + 1), me,
                           "deny", port=8080, http={"method": "GET", "path": f"{base}/42"}))  # fmt: skip
    flows += _egress_flows(index, service, me)
    return flows


def _egress_flows(index: int, service: dict[str, Any], me: dict[str, str]) -> list[dict[str, Any]]:
    name = me["service"]
    flows = [
        _flow(
            f"{name} reaches no undeclared name", me, {"fqdn": "api.evil.example"}, "deny", port=443
        )
    ]
    for rule in service.get("egress", []):
        peer = rule["to"][0]
        if "fqdn" in peer:
            flows.append(
                _flow(f"{name} -> {peer['fqdn']}", me, {"fqdn": peer["fqdn"]}, "allow", port=443)
            )
        else:
            flows += [
                _flow(f"{name} -> partner", me, {"ip": "198.51.100.7"}, "allow", port=443),
                _flow(f"{name} -> partner's excepted half", me, {"ip": "198.51.100.200"}, "deny", port=443),
            ]  # fmt: skip
    identity = "allow" if service.get("cloudIdentity") else "deny"
    flows.append(_flow(f"{name} cloud credentials", me, {"platform": "cloud-identity"}, identity))
    api = "allow" if service.get("kubeApiserver") else "deny"
    flows.append(_flow(f"{name} Kubernetes API", me, {"entity": "kube-apiserver"}, api, port=443))
    return flows


def generate(count: int, seed: int = 6) -> dict[str, dict[str, Any]]:
    """The files for ``count`` services and their flows.yaml: relative path -> YAML document."""
    rng = random.Random(seed)
    files: dict[str, dict[str, Any]] = {}
    flows: list[dict[str, Any]] = []
    for index in range(count):
        namespace, name = _name(index)
        service = _service(index, rng)
        files[f"{namespace}/{name}.yaml"] = {"services": [service]}
        flows += _flows(index, service, count)
    files["flows.yaml"] = {"flows": flows}
    return files


def write(count: int, out: Path, seed: int = 6, force: bool = False) -> int:
    """Write the files under ``out`` (which must be empty unless ``force``); returns the count."""
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} is not empty; pass --force to replace it")
        shutil.rmtree(out)
    documents = generate(count, seed)
    for relative, document in documents.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            f"# Generated by benchmarks/generate_services.py ({count} services, seed {seed}).\n"
        )
        dumped = yaml.dump(document, Dumper=_DUMPER, sort_keys=False)
        path.write_text(header + dumped, encoding="utf-8")
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help="number of services, e.g. 127 or 1270")
    parser.add_argument("out", type=Path, help="folder to write the policy files into")
    parser.add_argument("--seed", type=int, default=6, help="random seed (default 6)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty folder")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("count must be at least 1")
    try:
        written = write(args.count, args.out, args.seed, args.force)
    except FileExistsError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {written} services into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
