"""The floor of an offline plan: load the SDK classes a plan's resources use, register N resources.

    python benchmarks/floor.py [--gc-paused] [--with-inputs] N [resources.json]

The SDKs load their class modules lazily and that load dominates small plans, so the least any
offline plan of these resources can cost in this interpreter is: import the module of every
resource class the plan uses (as the SDK's own resource-module registry names them), then
register N resources of the plan's types (the plan's type mix, cycled to N) under Pulumi's
mocks, each a bare registration with no inputs. Time it as a fresh process (`benchmarks/
plan.py` and `plan_services.py` do, next to the plan and the gate). Prints what it loaded and
registered; resources.json defaults to out/prod/resources.json.

--gc-paused runs the loading and the registering inside components/gc_pause.py's gc_paused,
as the plan runs its config loading and recording (where the SDK classes load too): the floor
with the same collector treatment, so that a ratio against it shows what the plan's own code
costs beyond the SDKs, not what pausing the collector saves.

--with-inputs registers each resource with the inputs the plan gave it (resources.json's
``inputs``, cycled like the types) instead of none: what the SDK alone spends on this plan's
properties (serialising them, the mock monitor reading them and echoing them back, the SDK
reading the echo), a reference for how much of the plan's recording no program could avoid.
Not the issue's floor; printed beside it.
"""

from __future__ import annotations

import importlib
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from components.gc_pause import gc_paused
from infra.export_format import is_secret_envelope

REPO = Path(__file__).resolve().parents[1]
STACK_TYPE = "pulumi:pulumi:Stack"
# Packages whose Python SDK is not pulumi_<package>.
_SDK_MODULES = {"kubernetes": "pulumi_kubernetes"}
# A Kubernetes custom resource (CiliumNetworkPolicy, ...) has no SDK class of its own: the
# program registers it through apiextensions.CustomResource.
_CUSTOM_RESOURCE = ("pulumi_kubernetes.apiextensions", "CustomResource")


class _Mocks(pulumi_mocks.Mocks):
    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


def _class_of(typ: str) -> tuple[str, str] | None:
    """(module, class) of a type token's SDK class, or None for component/stack types."""
    package, middle, name = [*typ.split(":"), "", ""][:3]
    sdk = _SDK_MODULES.get(package, f"pulumi_{package}")
    if package == "pulumi" and middle == "providers":
        return _SDK_MODULES.get(name, f"pulumi_{name}"), "Provider"
    try:
        importlib.import_module(sdk)  # registers the package's resource modules
    except ImportError:
        return None
    for module in (middle, middle.split("/")[0]):
        key = rpc._module_key(package, module)  # the SDK's own registry (private)
        for registered in rpc._RESOURCE_MODULES.get(key, []):
            info = getattr(registered, "mod_info", None)
            if info and typ in info.get("classes", {}):
                return info["fqn"], info["classes"][typ]
    return _CUSTOM_RESOURCE if package == "kubernetes" else None


def load_classes(types: set[str]) -> list[str]:
    """Import every SDK class the types use; return 'module.Class' for each."""
    loaded = set()
    for typ in sorted(types):
        found = _class_of(typ)
        if found is not None:
            module, name = found
            getattr(importlib.import_module(module), name)
            loaded.add(f"{module}.{name}")
    return sorted(loaded)


def as_inputs(value: Any) -> Any:
    """An export's ``inputs`` value as a program would pass it: a secret envelope (the export
    holds ``{SIG: secret, "ciphertext": "[secret]"}``) becomes a secret Output again; handed
    to the SDK raw, the envelope fails its deserialisation ("Value not set")."""
    if is_secret_envelope(value):
        return pulumi.Output.secret(value.get("plaintext", value.get("ciphertext")))
    if isinstance(value, dict):
        return {k: as_inputs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_inputs(v) for v in value]
    return value


def register(
    count: int, plan_types: list[tuple[str, bool]], inputs: list[dict[str, Any]] | None = None
) -> None:
    """Register ``count`` resources of the plan's types under mocks: bare, or with
    ``inputs`` (one per type entry) as their properties."""
    pulumi_mocks.set_mocks(_Mocks(), project="floor", stack="floor", preview=False)

    def program() -> None:
        for index in range(count):
            typ, custom = plan_types[index % len(plan_types)]
            if custom:
                # Converted per registration, inside the program: as a program makes its Outputs.
                props = as_inputs(inputs[index % len(inputs)]) if inputs else {}
                pulumi.CustomResource(typ, f"r{index}", props)
            else:
                pulumi.ComponentResource(typ, f"r{index}")

    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    _sync_await(run_pulumi_func(program))


def main(argv: list[str]) -> int:
    paused = "--gc-paused" in argv
    with_inputs = "--with-inputs" in argv
    argv = [a for a in argv if a not in ("--gc-paused", "--with-inputs")]
    if not argv or not argv[0].isdigit() or len(argv) > 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    count = int(argv[0])
    path = Path(argv[1]) if len(argv) > 1 else REPO / "out" / "prod" / "resources.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(
            f"floor: cannot read {path}: {exc}; run `make plan STACK=prod` first", file=sys.stderr
        )
        return 2
    resources = document.get("deployment", document).get("resources", [])
    entries = [r for r in resources if r["type"] != STACK_TYPE]
    plan_types = [(r["type"], bool(r.get("custom"))) for r in entries]
    inputs = [r.get("inputs") or {} for r in entries] if with_inputs else None
    if not plan_types:
        print(f"floor: {path} lists no resources", file=sys.stderr)
        return 2
    with gc_paused() if paused else nullcontext():
        classes = load_classes({typ for typ, _ in plan_types})
        register(count, plan_types, inputs)
    what = "with the plan's inputs" if with_inputs else "bare"
    print(f"floor: {len(classes)} SDK classes loaded, {count} resources registered ({what})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
