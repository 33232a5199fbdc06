"""Expected flows beside the traffic policies, and the evaluator that checks them against the
generated CiliumNetworkPolicies: spec.py (the file format), model.py (flows, ends, verdicts),
match.py (how a selector, CIDR, port, DNS name or HTTP rule matches), rules.py (the policies
parsed), evaluate.py (Cilium's semantics: which rules decide a flow), check.py (expected vs.
evaluated)."""
