"""`meshless migrate istio`: Istio configuration to traffic-policy files and Gateway API.

Modules: ``reader`` (files to typed Istio objects, checked against Istio's CRD schemas),
``report`` (what carried over and what did not), ``authz`` (AuthorizationPolicy,
PeerAuthentication and ServiceEntry to our traffic model), ``gateway_api`` (Gateway and
VirtualService to Gateway API v1.1), ``routes`` (VirtualService HTTP routes to HTTPRoute and
GRPCRoute rules), ``other`` (kinds reported only), ``emit`` (files), ``run`` (the command).
"""
