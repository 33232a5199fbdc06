"""The few wire facts of `pulumi stack export` that the plan, the diff and the gate share.

Literal values, not imports from pulumi.runtime.rpc (where they are private), so the diff
stays a pure function over data; tests/test_plan.py holds them equal to the SDK's.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CLUSTER_TYPES",
    "ENCRYPTED_SENTINEL",
    "REDACTED",
    "RESOURCE_REF_SIG",
    "SECRET_SIG",
    "SIG_KEY",
    "UNKNOWN_SENTINEL",
    "cluster_of",
    "is_secret_envelope",
]

#: The key that marks a special value (secret, resource reference) in a serialized property.
SIG_KEY = "4dabf18193072939515e22adb298388d"
#: SIG_KEY's value for a secret: `{SIG_KEY: SECRET_SIG, "ciphertext" | "plaintext" | "value": ...}`.
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
#: SIG_KEY's value for a resource reference.
RESOURCE_REF_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
#: A value not known until the resource exists (preview).
UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
#: What the gate hands the pack for a secret whose export holds only ciphertext (the pack's
#: rules/_values.py ENCRYPTED; tests hold the two equal).
ENCRYPTED_SENTINEL = "meshless:encrypted-secret-not-readable"
#: How a secret's plaintext appears in our plan output, and how the diff shows any secret.
REDACTED = "[secret]"


def is_secret_envelope(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


#: The cluster components; every resource of a cluster has one of them as an ancestor.
CLUSTER_TYPES = ("meshless:aws:EksCluster", "meshless:gcp:GkeCluster")


def cluster_of(resource: dict[str, Any], by_urn: dict[str, dict[str, Any]]) -> str | None:
    """The cluster a resource belongs to: the name of its nearest cluster component ancestor."""
    current: dict[str, Any] | None = resource
    while current is not None:
        if current["type"] in CLUSTER_TYPES:
            return current["urn"].rsplit("::", 1)[-1]
        current = by_urn.get(current.get("parent", ""))
    return None
