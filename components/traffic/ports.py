"""Which ports a rule opens: a named port of the callee resolved to its number and protocol,
numbers and ranges as written.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.traffic.fields import _PORT_RANGE
from components.traffic.model import EgressRule, IngressRule, ServicePolicy

__all__ = ["PortSpec", "egress_ports", "ingress_ports"]


@dataclass(frozen=True, order=True)
class PortSpec:
    port: int
    protocol: str = "TCP"
    end_port: int | None = None

    def __str__(self) -> str:
        span = f"{self.port}-{self.end_port}" if self.end_port else str(self.port)
        return f"{span}/{self.protocol}"


class _PortProblem(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


def _explicit_port(ref: str, protocol: str) -> PortSpec | None:
    match = _PORT_RANGE.fullmatch(ref)
    if not match:
        return None
    end = int(match["end"]) if match["end"] else None
    return PortSpec(int(match["port"]), (match["proto"] or protocol).upper(), end)


def ingress_ports(service: ServicePolicy, rule: IngressRule) -> tuple[PortSpec, ...]:
    """The ports an ingress rule opens; () means every port (an L3-only rule).

    Numbers take the protocol the service declares for them (TCP if undeclared); names must be
    declared. Without ``ports`` the rule covers every declared port (the TCP ones if it has L7
    rules). Raises _PortProblem for a name the service does not declare.
    """
    declared = {p.port: p.protocol for p in service.ports}
    by_name = {p.name: p for p in service.ports if p.name}
    if not rule.ports:
        ports = [p for p in service.ports if not rule.has_l7 or p.protocol == "TCP"]
        return tuple(PortSpec(p.port, p.protocol) for p in ports)
    specs = []
    for index, ref in enumerate(rule.ports):
        spec = _explicit_port(ref, "TCP")
        if spec is None:
            if ref not in by_name:
                known = ", ".join(sorted(by_name)) or "none"
                raise _PortProblem(
                    index,
                    f"{service.name} declares no port named {ref!r} (named ports: {known}); add it to ports or use the number",
                )
            spec = PortSpec(by_name[ref].port, by_name[ref].protocol)
        elif "/" not in ref and spec.end_port is None:
            spec = PortSpec(spec.port, declared.get(spec.port, "TCP"))
        specs.append(spec)
    return tuple(specs)


def egress_ports(rule: EgressRule, target: ServicePolicy | None) -> tuple[PortSpec, ...]:
    """The ports an egress rule opens towards ``target`` (a declared service, or None for any
    other peer); () means every port. Without ``ports``: the target's declared ports, or 53
    (UDP and TCP) for a rule with DNS rules."""
    if rule.ports:
        specs = []
        for index, ref in enumerate(rule.ports):
            spec = _explicit_port(ref, "TCP")
            if spec is None:
                raise _PortProblem(
                    index,
                    f"egress ports are numbers ({ref!r} is a name); write the port number, e.g. 8080 or 53/udp",
                )
            if target is not None and "/" not in ref and spec.end_port is None:
                spec = PortSpec(
                    spec.port, {p.port: p.protocol for p in target.ports}.get(spec.port, "TCP")
                )
            specs.append(spec)
        return tuple(specs)
    if rule.dns:
        return (PortSpec(53, "UDP"), PortSpec(53, "TCP"))
    if target is not None:
        return tuple(
            PortSpec(p.port, p.protocol)
            for p in target.ports
            if not rule.has_l7 or p.protocol == "TCP"
        )
    return ()
