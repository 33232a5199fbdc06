"""Policy config checked with jsonschema against a policy's own config schema (no pack process).

The gRPC tests in tests/policies/ run the same check with the schemas the running pack reports;
these pin the wording and the JSON Schema keywords a hand-written subset used to ignore.
"""

from __future__ import annotations

from infra.gate.policy_config import config_problems

DIGEST = "sha256:" + "a" * 64
SCHEMAS = {
    "cilium-digests-match-catalog": {
        "properties": {
            "allowedDigests": {
                "type": "array",
                "items": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
            }
        }
    },
    "cluster-deletion-protection": {
        "properties": {"environment": {"type": "string", "enum": ["staging", "prod"]}},
        "required": ["environment"],
    },
    "gke-private-nodes": {},
}


def problems(raw: dict) -> list[str]:
    return config_problems(raw, SCHEMAS, "meshless-guardrails")


class TestSchemaKeywordsHold:
    """Every keyword of a policy's schema holds offline, as the engine holds it."""

    def test_valid_config_has_no_problem(self) -> None:
        assert (
            problems(
                {
                    "all": "mandatory",
                    "cilium-digests-match-catalog": {"allowedDigests": [DIGEST]},
                    "cluster-deletion-protection": {
                        "enforcementLevel": "advisory",
                        "environment": "prod",
                    },
                    "gke-private-nodes": "disabled",
                }
            )
            == []
        )

    def test_pattern(self) -> None:
        found = problems(
            {"cilium-digests-match-catalog": {"allowedDigests": [DIGEST, "sha256:abc"]}}
        )
        assert found == [
            "cilium-digests-match-catalog.allowedDigests[1]: 'sha256:abc' does not match "
            "'^sha256:[0-9a-f]{64}$'"
        ]

    def test_required(self) -> None:
        assert problems({"cluster-deletion-protection": "mandatory"}) == [
            "cluster-deletion-protection: 'environment' is a required property"
        ]

    def test_type_enum_and_unknown_property(self) -> None:
        found = problems(
            {
                "cilium-digests-match-catalog": {"allowedDigests": "sha256:x"},
                "cluster-deletion-protection": {"environment": "qa", "colour": "red"},
                "gke-private-nodes": {"enforcementLevel": "blocking"},
            }
        )
        assert found == [
            "cilium-digests-match-catalog.allowedDigests: 'sha256:x' is not of type 'array'",
            "cluster-deletion-protection: unknown property 'colour' (this policy takes: "
            "environment)",
            'cluster-deletion-protection.environment must be one of ["staging", "prod"], got "qa"',
            'gke-private-nodes.enforcementLevel must be one of ["advisory", "mandatory", '
            '"remediate", "disabled"], got "blocking"',
        ]

    def test_unknown_policy_and_bad_all(self) -> None:
        assert problems({"no-such": "mandatory", "all": "loud", "gke-private-nodes": 3}) == [
            "'no-such' is not a policy of meshless-guardrails (known: "
            "cilium-digests-match-catalog, cluster-deletion-protection, gke-private-nodes)",
            "all: must be one of advisory, mandatory, remediate, disabled",
            "gke-private-nodes: must be an enforcement level or an object, got 3",
        ]
