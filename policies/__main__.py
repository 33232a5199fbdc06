"""meshless-guardrails: the CrossGuard policy pack every preview, update and offline plan runs.

Run by the Pulumi engine as ``python -u -m pulumi.policy <engine-address> <this dir>``:
``pulumi preview --stack prod --policy-pack policies --policy-pack-config
policies/config/prod.json``; offline, ``uv run meshless gate out/prod/resources.json``.
"""

import gc

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import ALL_POLICIES
from rules._servicer import install

# Serve with the SDK's analyzer minus its per-policy conversion of every resource (see
# rules/_servicer.py): same answers for a fraction of the work (benchmarks/gate.py).
install()

# The pack keeps a converted copy of every resource's properties for the stack policies, some
# hundred thousand containers at 1,270 services: with the default thresholds (a collection
# every 700 allocations) the collector walked that growing heap over and over, half the time
# of the conversion. What the imports made is frozen out of collection, and collections run
# every 50,000 allocations; cycles are still collected.
gc.freeze()
gc.set_threshold(50_000, 20, 20)

PolicyPack(
    name="meshless-guardrails",
    description=(
        "Cilium instead of Istio, kube-proxy-free, digest-pinned: Cilium images and workloads "
        "pinned by sha256, kubeProxyReplacement true with no kube-proxy add-ons, L7 proxy where "
        "L7 rules exist, cluster posture, and Cilium installed before what depends on it."
    ),
    # Each policy states its own level; this is only the fallback for a policy that forgot.
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=ALL_POLICIES,
)
