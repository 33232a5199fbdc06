"""The traffic-policy file format: who may call a service, how, and what it may reach.

Users write YAML files (one per service or per team) in the folder a cluster's
``trafficPolicies`` names. ``load_policy_folder`` reads every ``*.yaml``/``*.yml`` below it,
validates each against the pydantic models here, cross-checks the whole set, and returns a
``PolicySet``; ``components/network_policy.py`` turns that into CiliumNetworkPolicy objects.

```yaml
services:
  - name: payments              # unique per namespace; callers refer to it by this name
    namespace: shop
    selector: {app: payments}   # pod labels; default {app: <name>}
    ports:
      - {name: grpc, port: 9090}
    ingress:
      - from: [{service: checkout}]
        ports: [grpc]
        grpc:
          - service: shop.payments.v1.Payments
            methods: [Authorize, Capture]
    egress:
      - to: [{fqdn: api.stripe.com}]
        ports: [443]
```

Semantics (what a reviewer should know):
- Every namespace that has a policy here gets a default deny in both directions, with DNS
  lookups through kube-dns allowed. So every workload in such a namespace needs a file.
- Ingress is declared where it is enforced: at the callee. The caller's matching egress (L3/L4)
  is derived for callers that are services declared here (by ``service``, ``namespace`` or
  ``labels``); L7 rules are enforced once, at the callee. Egress to anything else (other
  namespaces' workloads, FQDNs, CIDRs, entities) is written by the caller.
- A literal ``path`` matches that exact path, with or without a query string (Cilium matches
  the regex against the whole ``:path``, query included); ``pathPrefix`` everything below it;
  ``pathRegex`` is passed through as the full-match RE2 regex Cilium expects.
- An unknown caller or callee in a namespace that has policies here is an error: under that
  namespace's default deny such a workload can never make or accept the call. In a namespace
  without policies here it is a warning (it may exist; we cannot check).

Not handled here: Kubernetes ``NetworkPolicy``, clusterwide policies, deny rules, TLS
interception (``terminatingTLS``/``originatingTLS``), and Cilium's L7 for protocols other than
HTTP/gRPC, Kafka and DNS.
"""

from __future__ import annotations

from components.traffic.fields import (
    DEFAULT_DENY_NAME,
    FLOWS_FILES,
    OPEN_ENTITIES,
    Cidr,
    Entity,
    FqdnName,
    FqdnPattern,
    Hostname,
    HttpMethod,
    LabelKey,
    Labels,
    LabelValue,
    LiteralPath,
    Name,
    PortRef,
    Protocol,
    RegexStr,
    grpc_path,
)
from components.traffic.loader import load_policy_folder
from components.traffic.model import (
    PEER_KINDS,
    DnsRule,
    EgressPeer,
    EgressRule,
    GrpcRule,
    HeaderMatch,
    HttpRule,
    IngressPeer,
    IngressRule,
    KafkaRule,
    PolicyFile,
    ServiceKey,
    ServicePolicy,
    ServicePort,
    peer_kind,
)
from components.traffic.policy_set import PolicySet
from components.traffic.ports import PortSpec, egress_ports, ingress_ports
from components.traffic.regex import check_re2, literal_regex
from components.traffic.source import TrafficPolicyError

__all__ = [
    "DEFAULT_DENY_NAME",
    "FLOWS_FILES",
    "OPEN_ENTITIES",
    "PEER_KINDS",
    "Cidr",
    "DnsRule",
    "EgressPeer",
    "EgressRule",
    "Entity",
    "FqdnName",
    "FqdnPattern",
    "GrpcRule",
    "HeaderMatch",
    "Hostname",
    "HttpMethod",
    "HttpRule",
    "IngressPeer",
    "IngressRule",
    "KafkaRule",
    "LabelKey",
    "LabelValue",
    "Labels",
    "LiteralPath",
    "Name",
    "PolicyFile",
    "PolicySet",
    "PortRef",
    "PortSpec",
    "Protocol",
    "RegexStr",
    "ServiceKey",
    "ServicePolicy",
    "ServicePort",
    "TrafficPolicyError",
    "check_re2",
    "egress_ports",
    "grpc_path",
    "ingress_ports",
    "literal_regex",
    "load_policy_folder",
    "peer_kind",
]
