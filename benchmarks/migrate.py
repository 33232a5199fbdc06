"""Time of `meshless migrate istio` on N VirtualServices plus their AuthorizationPolicies.

    python benchmarks/migrate.py [--counts 127 1270] [--repeat 3]

For each N writes a deterministic Istio input (out/bench/istio-N/): N VirtualServices bound to
one ingress Gateway (prefix, exact and header matches, weighted backends, header changes, a
timeout and retries on every fourth to exercise the report), N AuthorizationPolicies (service
accounts, namespaces, methods, paths, ports, a header condition on every third, a DENY on every
tenth), N Kubernetes Services, 16 workloads per namespace. Times the migration in this process
(read + validate + convert + validate outputs, no disk writes), the whole command in a fresh
process (writes out/bench/istio-N-out/), and our loader on the generated traffic folder.
Medians of --repeat runs. Exits 1 if a generated traffic folder does not load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from components.traffic import load_policy_folder

REPO = Path(__file__).resolve().parents[1]


def _migration() -> Callable[..., Any]:
    """The package `migrate`: this script's own name shadows it while benchmarks/ is first on
    sys.path, so that entry goes before the import."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    from migrate.run import migrate

    return migrate


TEAM = 16


def documents(count: int) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "public", "namespace": "edge"},
            "spec": {
                "selector": {"istio": "ingressgateway"},
                "servers": [
                    {
                        "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                        "hosts": ["*/*.example.com"],
                        "tls": {"mode": "SIMPLE", "credentialName": "wildcard"},
                    }
                ],
            },
        }
    ]
    for i in range(count):
        docs += _service(i)
    return docs


def _service(i: int) -> list[dict[str, Any]]:
    ns, name = f"team-{i // TEAM:02d}", f"svc-{i:04d}"
    caller = f"svc-{max(i - 1, 0):04d}"
    http: list[dict[str, Any]] = [
        {
            "match": [
                {"uri": {"prefix": f"/{name}/api/"}},
                {"uri": {"exact": f"/{name}"}, "method": {"exact": "GET"}},
            ],
            "route": [
                {"destination": {"host": name, "port": {"number": 8080}}, "weight": 90},
                {
                    "destination": {
                        "host": f"{name}.{ns}.svc.cluster.local",
                        "port": {"number": 8080},
                    },
                    "weight": 10,
                },
            ],
            "headers": {"request": {"set": {"x-team": ns}}},
        },
        {
            "match": [{"uri": {"prefix": f"/{name}/beta"}, "headers": {"x-beta": {"exact": "1"}}}],
            "route": [{"destination": {"host": name, "port": {"number": 8080}}}],
        },
    ]
    if i % 4 == 0:
        http[0]["timeout"] = "3s"
        http[0]["retries"] = {"attempts": 2}
    rule: dict[str, Any] = {
        "from": [
            {"source": {"principals": [f"cluster.local/ns/{ns}/sa/{caller}"]}},
            {"source": {"namespaces": ["edge"]}},
        ],
        "to": [
            {
                "operation": {
                    "methods": ["GET", "POST"],
                    "paths": [f"/{name}/api/*", f"/{name}"],
                    "ports": ["8080"],
                }
            }
        ],
    }
    if i % 3 == 0:
        rule["when"] = [{"key": "request.headers[x-tenant]", "values": ["acme", "globex"]}]
    out = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": [{"port": 8080}]},
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"hosts": [f"{name}.example.com"], "gateways": ["edge/public"], "http": http},
        },
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": name}}, "rules": [rule]},
        },
    ]
    if i % 10 == 0:
        out.append(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": f"{name}-deny-admin", "namespace": ns},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "action": "DENY",
                    "rules": [{"to": [{"operation": {"ports": ["9901"]}}]}],
                },
            }
        )
    return out


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[127, 1270])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    migrate = _migration()
    bench = REPO / "out" / "bench"
    print(
        f"{'VS':>6} {'objects':>7} {'files':>6} {'in-process s':>12} {'command s':>10} {'load traffic s':>14}  counts"
    )
    failed = False
    for count in args.counts:
        source = bench / f"istio-{count}"
        source.mkdir(parents=True, exist_ok=True)
        docs = documents(count)
        (source / "input.yaml").write_text(
            yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8"
        )
        result = migrate([source])
        in_process = median_seconds(lambda s=source: migrate([s]), args.repeat)
        out = bench / f"istio-{count}-out"
        command = [
            sys.executable,
            "-m",
            "infra.cli",
            "migrate",
            "istio",
            str(source),
            "--out",
            str(out),
        ]
        whole = median_seconds(
            lambda c=command: subprocess.run(c, cwd=REPO, capture_output=True, check=False),
            args.repeat,
        )
        try:
            load = median_seconds(
                lambda o=out: load_policy_folder(o / "traffic", root=o), args.repeat
            )
        except Exception as exc:  # the benchmark reports a broken output instead of a time
            print(f"traffic folder of N={count} does not load: {exc}", file=sys.stderr)
            failed, load = True, float("nan")
        counts = result.report.counts
        print(
            f"{count:>6} {len(docs):>7} {len(result.files):>6} {in_process:>12.2f} {whole:>10.2f} {load:>14.2f}  "
            f"fully {counts['fully']}, partly {counts['partly']}, not {counts['not']}, unreadable {counts['unreadable']}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
