"""Hubble's mTLS certificates, made by the program and handed to the chart as existing secrets.

Why not one of the chart's own methods (Cilium 1.16 chart, ``hubble.tls.auto.method``):
- ``helm`` generates new certificates on every render, so every ``pulumi preview`` would show
  the release as changed and every ``up`` would roll the relay;
- ``cronJob`` renders Job ``hubble-generate-certs`` as a ``post-install,post-upgrade`` hook
  (templates/hubble/tls-cronjob/job.yaml). Helm waits for hook Jobs even when it does not wait
  for resources (helm pkg/action/hooks.go, ``execHook`` -> ``WatchUntilReady``), and that Job
  needs a schedulable node. On EKS the release is installed before any node exists (a node
  group never turns ACTIVE without a CNI: terraform-aws-eks #3106), so the hook would hang the
  release to its timeout;
- ``certmanager`` needs cert-manager, which itself needs nodes.

Here ``pulumi-tls`` creates a CA and the two leaf certificates the agent and the relay use;
their keys live in the Pulumi state as secrets, so a preview reads them back unchanged (no
diff from one preview to the next) and a certificate is renewed only by a ``pulumi up`` once
``early_renewal_hours`` is reached. They become the Secrets ``hubble-server-certs`` and
``hubble-relay-client-certs`` in kube-system, which the chart mounts through
``hubble.tls.server.existingSecret`` / ``hubble.relay.tls.client.existingSecret`` (both exist in
the 1.16.5, 1.16.19 and 1.17 charts). The common names are the ones the chart's certgen uses
(templates/hubble/tls-cronjob/_job-spec.tpl): the relay checks the server name
``*.<cluster>.hubble-grpc.cilium.io``.

Not managed here: relay server TLS and Hubble UI client certificates (the chart's
``hubble.relay.tls.server.enabled`` stays off; UI traffic stays in the cluster), and metrics TLS.
Creating a Secret needs only the API server, never a node.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components.common import type_token

__all__ = [
    "HUBBLE_RELAY_CLIENT_SECRET",
    "HUBBLE_SERVER_SECRET",
    "HubbleTls",
    "hubble_server_name",
]

HUBBLE_SERVER_SECRET = "hubble-server-certs"
HUBBLE_RELAY_CLIENT_SECRET = "hubble-relay-client-certs"
# Three years, like the chart's certValidityDuration default of 1095 days; renewed by the
# first `pulumi up` in the last 30 days.
_VALIDITY_HOURS = 1095 * 24
_EARLY_RENEWAL_HOURS = 30 * 24


def hubble_server_name(cluster_name: str) -> str:
    """The server name the relay expects (chart: ``*.<cluster.name with . as ->.hubble-grpc``)."""
    return f"*.{cluster_name.replace('.', '-')}.hubble-grpc.cilium.io"


class HubbleTls(pulumi.ComponentResource):
    """A Hubble CA and the agent's and relay's certificates, as kube-system Secrets."""

    secrets: list[k8s.core.v1.Secret]

    def __init__(
        self,
        name: str,
        cluster_name: str,
        relay: bool,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_token("cilium", "HubbleTls"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ca_key = tls.PrivateKey(f"{name}-ca", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name="Cilium CA"),
            validity_period_hours=_VALIDITY_HOURS,
            early_renewal_hours=_EARLY_RENEWAL_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            opts=child,
        )
        server = hubble_server_name(cluster_name)
        leaves = [(HUBBLE_SERVER_SECRET, server, ["server_auth", "client_auth"])]
        if relay:
            leaves.append((HUBBLE_RELAY_CLIENT_SECRET, "*.hubble-relay.cilium.io", ["client_auth"]))
        self.secrets = [
            self._leaf(name, secret, common_name, uses, ca_key, ca, provider)
            for secret, common_name, uses in leaves
        ]
        self.register_outputs({"secretNames": [s.metadata.name for s in self.secrets]})

    def _leaf(
        self,
        name: str,
        secret_name: str,
        common_name: str,
        uses: list[str],
        ca_key: tls.PrivateKey,
        ca: tls.SelfSignedCert,
        provider: k8s.Provider,
    ) -> k8s.core.v1.Secret:
        child = pulumi.ResourceOptions(parent=self)
        key = tls.PrivateKey(
            f"{name}-{secret_name}", algorithm="ECDSA", ecdsa_curve="P256", opts=child
        )
        request = tls.CertRequest(
            f"{name}-{secret_name}",
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=common_name),
            dns_names=[common_name],
            opts=child,
        )
        cert = tls.LocallySignedCert(
            f"{name}-{secret_name}",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca.cert_pem,
            validity_period_hours=_VALIDITY_HOURS,
            early_renewal_hours=_EARLY_RENEWAL_HOURS,
            allowed_uses=["digital_signature", "key_encipherment", *uses],
            opts=child,
        )
        return k8s.core.v1.Secret(
            f"{name}-{secret_name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=secret_name, namespace="kube-system"),
            type="kubernetes.io/tls",
            string_data={
                "ca.crt": ca.cert_pem,
                "tls.crt": cert.cert_pem,
                "tls.key": pulumi.Output.secret(key.private_key_pem),
            },
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
