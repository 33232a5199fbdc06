"""Expected flows beside the traffic policies, and the evaluator that checks them against the
generated CiliumNetworkPolicies: spec.py (the file format), evaluate.py (Cilium's semantics),
check.py (expected vs. evaluated)."""
