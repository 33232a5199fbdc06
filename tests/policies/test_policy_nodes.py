"""eks-node-launch-template: EKS nodes in Cilium's ENI mode leave Cilium's ENIs to Cilium.

The compliant stack's launch template carries the program's own user data
(components.eks.user_data.node_user_data); each case breaks one thing a node needs.
"""

from __future__ import annotations

import base64

import pytest

from components.eks.user_data import NETWORKD_CONF_PATH, NETWORKD_NETWORK_PATH, node_user_data
from infra.export_format import UNKNOWN_SENTINEL

POLICY = "eks-node-launch-template"
GROUP = "eks-main-general"
TEMPLATE = "eks-main-general-nodes"
UNKNOWN = UNKNOWN_SENTINEL  # the engine's unknown-value sentinel


def _user_data_input(user_data: str) -> str:
    return base64.b64encode(user_data.encode()).decode()


def _names(violations) -> list[str]:
    return [v.urn.rsplit("::", 1)[-1] for v in violations]


def _without(text: str, line: str) -> str:
    assert line in text
    return text.replace(line, "")


class TestNodeLaunchTemplate:
    """A node group the OS fights Cilium on loses routes; prod blocks it, staging warns."""

    def test_compliant_stack_passes(self, gate, stack) -> None:
        assert gate.run(stack).of(POLICY) == []

    def test_default_launch_template_is_blocked_in_prod(self, gate, stack) -> None:
        stack.delete(GROUP, "launchTemplate")
        hits = gate.run(stack).of(POLICY)
        assert _names(hits) == [GROUP]
        assert hits[0].enforcement_level == "mandatory"
        assert "systemd-networkd" in hits[0].message and "EksCluster" in hits[0].message

    def test_staging_only_warns(self, gate, stack) -> None:
        stack.delete(GROUP, "launchTemplate")
        (hit,) = gate.run(stack, "staging").of(POLICY)
        assert hit.enforcement_level == "advisory"

    def test_template_outside_the_stack_cannot_be_checked(self, gate, stack) -> None:
        stack[GROUP]["dependencies"] = [
            d for d in stack[GROUP]["dependencies"] if d != stack.urn_of(TEMPLATE)
        ]
        (hit,) = gate.run(stack).of(POLICY)
        assert "not in this stack" in hit.message

    def test_template_found_by_name(self, gate, stack) -> None:
        stack.set(GROUP, "launchTemplate", {"name": "eks-main-nodes", "version": "$Latest"})
        stack.set(TEMPLATE, "name", "eks-main-nodes")
        assert gate.run(stack).of(POLICY) == []

    def test_template_by_name_without_waiting_for_it(self, gate, stack) -> None:
        """The rehearsal's question: is the template there before its node group?"""
        stack[GROUP]["dependencies"] = [
            d for d in stack[GROUP]["dependencies"] if d != stack.urn_of(TEMPLATE)
        ]
        stack.set(GROUP, "launchTemplate", {"name": "eks-main-nodes", "version": "$Latest"})
        stack.set(TEMPLATE, "name", "eks-main-nodes")
        (hit,) = gate.run(stack).of(POLICY)
        assert "does not wait for its launch template" in hit.message

    @pytest.mark.parametrize(
        ("removed", "expected"),
        [
            ("Unmanaged=yes\n", "Unmanaged=yes"),
            ("Driver=ena\n", "Unmanaged=yes"),
            ("Property=!INTERFACE=$primary\n", "Unmanaged=yes"),
            ("ManageForeignRoutes=no\n", "ManageForeignRoutes=no"),
            ("ManageForeignRoutingPolicyRules=no\n", "ManageForeignRoutingPolicyRules=no"),
            ("      maxPods: 110\n", "maxPods"),
        ],
    )
    def test_user_data_missing_a_piece(self, gate, stack, removed: str, expected: str) -> None:
        user_data = _without(node_user_data(110, prefix_delegation=True), removed)
        stack.set(TEMPLATE, "userData", _user_data_input(user_data))
        (hit,) = gate.run(stack).of(POLICY)
        assert expected in hit.message and TEMPLATE in hit.message

    def test_files_written_elsewhere_do_not_count(self, gate, stack) -> None:
        user_data = node_user_data(110, prefix_delegation=True)
        user_data = user_data.replace(NETWORKD_NETWORK_PATH, "/tmp/ignored.network")
        user_data = user_data.replace(NETWORKD_CONF_PATH, "/tmp/ignored.conf")
        stack.set(TEMPLATE, "userData", _user_data_input(user_data))
        (hit,) = gate.run(stack).of(POLICY)
        assert "Unmanaged=yes" in hit.message and "ManageForeignRoutes" in hit.message

    @pytest.mark.parametrize(
        ("user_data", "expected"),
        [
            ("not base64!", "base64"),
            (base64.b64encode(b"#!/bin/bash\necho hi\n").decode(), "MIME multi-part"),
            (UNKNOWN, "unknown during preview"),
        ],
    )
    def test_unreadable_user_data(self, gate, stack, user_data: str, expected: str) -> None:
        stack.set(TEMPLATE, "userData", user_data)
        (hit,) = gate.run(stack).of(POLICY)
        assert expected in hit.message

    def test_imds_v1_is_blocked(self, gate, stack) -> None:
        stack.set(TEMPLATE, "metadataOptions.httpTokens", "optional")
        (hit,) = gate.run(stack).of(POLICY)
        assert "IMDSv2" in hit.message

    def test_gke_node_pools_are_not_judged(self, gate, stack) -> None:
        stack.remove(GROUP)
        stack.remove(TEMPLATE)
        assert gate.run(stack).of(POLICY) == []
