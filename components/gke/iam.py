"""Who may do what on a GKE cluster: the Google Cloud IAM and KMS side of GkeCluster.

- a Cloud KMS key ring and key for envelope encryption of Secrets, usable by the project's GKE
  service agent (granted before the cluster encrypts with it);
- the nodes' own service account with GKE's least-privilege node role and Artifact Registry
  read access, instead of the Compute Engine default account (project Editor).

Every resource is a child of the GkeCluster component. Not managed here: the project and its
APIs (container, compute, cloudkms must be enabled), and roles for workloads (Workload
Identity, components/platform.py).
"""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_gcp as gcp

from components.gke.config import GkeClusterConfig

__all__ = ["node_account_id", "node_service_account", "secrets_key"]


def node_account_id(cluster: str) -> str:
    """A service account id (6-30 characters) unique per cluster name."""
    base = f"{cluster}-nodes"
    if len(base) <= 30:
        return base
    digest = hashlib.sha256(cluster.encode()).hexdigest()[:6]
    return f"{cluster[:17].rstrip('-')}-{digest}-nodes"


def secrets_key(
    name: str,
    config: GkeClusterConfig,
    labels: dict[str, str],
    deletion_protection: bool,
    parent: pulumi.Resource,
    protect: bool,
) -> tuple[pulumi.Output[str], pulumi.Resource]:
    """A Cloud KMS key in the cluster's region for Secrets envelope encryption, usable by
    the project's GKE service agent."""
    child = pulumi.ResourceOptions(parent=parent)
    # No explicit names: KMS key rings and keys can never be deleted, so a fixed name would
    # block re-creating a destroyed stack; Pulumi's auto-name suffix avoids the clash.
    ring = gcp.kms.KeyRing(
        f"{name}-secrets",
        project=config.project,
        # GKE wants the key in the cluster's location.
        location=config.region,
        opts=child,
    )
    key = gcp.kms.CryptoKey(
        f"{name}-secrets",
        key_ring=ring.id,
        purpose="ENCRYPT_DECRYPT",
        rotation_period="7776000s",  # 90 days
        labels=labels,
        # Losing the key makes every Secret in etcd unreadable: protected wherever the
        # cluster itself is (by Pulumi or by GKE's deletion protection).
        opts=pulumi.ResourceOptions(parent=parent, protect=protect or deletion_protection),
    )
    # The agent's address needs the project number; an invoke reads it (no resource is
    # created inside apply, and the plan's mocks answer it).
    project = gcp.organizations.get_project_output(
        project_id=config.project, opts=pulumi.InvokeOutputOptions(parent=parent)
    )
    agent = project.number.apply(
        lambda number: (
            f"serviceAccount:service-{number}@container-engine-robot.iam.gserviceaccount.com"
        )
    )
    grant = gcp.kms.CryptoKeyIAMMember(
        f"{name}-secrets-gke-agent",
        crypto_key_id=key.id,
        role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
        member=agent,
        opts=child,
    )
    return key.id, grant


def node_service_account(
    name: str, config: GkeClusterConfig, parent: pulumi.Resource
) -> tuple[gcp.serviceaccount.Account, list[pulumi.Resource]]:
    """Nodes run as their own account with GKE's least-privilege node role, not as the
    Compute Engine default account (project Editor). Pods use Workload Identity."""
    child = pulumi.ResourceOptions(parent=parent)
    account = gcp.serviceaccount.Account(
        f"{name}-nodes",
        project=config.project,
        account_id=node_account_id(config.name),
        display_name=f"GKE nodes of {config.name}",
        opts=child,
    )
    grants: list[pulumi.Resource] = [
        gcp.projects.IAMMember(
            f"{name}-nodes-{role.split('.')[-1]}",
            project=config.project,
            role=role,
            member=account.member,
            opts=child,
        )
        # container.defaultNodeServiceAccount: logs, metrics, autoscaling metrics;
        # artifactregistry.reader: pulling images of this project's registries.
        for role in (
            "roles/container.defaultNodeServiceAccount",
            "roles/artifactregistry.reader",
        )
    ]
    return account, grants
