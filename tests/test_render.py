"""Text for its medium: Markdown that survives GitHub's sanitiser, CI-log blocks that never
break a word, annotations that point at the stack file line."""

from __future__ import annotations

import ast
import io
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from rich.console import Console

from components.eks import EksClusterConfig
from components.gke import GkeClusterConfig
from infra.findings_log import annotation_lines, finding_blocks, print_findings
from infra.gate import GateReport, Violation
from infra.render import PLACEHOLDER, gh_data, gh_property, md_code, md_text, split_finding
from infra.stack_lines import POLICY_KEYS, StackFileIndex
from infra.summary import artifact_link

GithubText = Callable[..., str]

REPO = Path(__file__).resolve().parents[1]


def policy_messages() -> list[str]:
    """Every message text in the policy pack's rules, f-string fields filled with `x`."""
    texts: list[str] = []
    for path in sorted((REPO / "policies" / "rules").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                texts.append(
                    "".join(
                        v.value if isinstance(v, ast.Constant) else "x"
                        for v in node.values
                        if isinstance(v, ast.Constant | ast.FormattedValue)
                    )
                )
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.append(node.value)
    return [t for t in texts if len(t) > 20 and " " in t]


class TestMarkdownCells:
    """Placeholders and values are code; code spans are verbatim; the rest is escaped."""

    def test_the_sanitiser_drops_bare_placeholders(self, github_text: GithubText) -> None:
        # The defect this guards against, reproduced: GitHub drops the unknown tag.
        assert "<project>" not in github_text('Set it to "<project>.svc.id.goog"')

    @pytest.mark.parametrize(
        ("text", "kept"),
        [
            ('Set it to "<project>.svc.id.goog"', '"<project>.svc.id.goog"'),
            ("Use repository[:tag]@sha256:<digest> now", "repository[:tag]@sha256:<digest>"),
            ("resolve it with `crane digest <image>`", "crane digest <image>"),
            ('Set databaseEncryption {state: "ENCRYPTED", keyName: <kms key>}', "<kms key>"),
        ],
    )
    def test_placeholders_survive_as_code(
        self, text: str, kept: str, github_text: GithubText
    ) -> None:
        rendered = md_text(text)
        assert kept in github_text(f"| a |\n| --- |\n| {rendered} |")
        assert "&lt;" not in rendered  # code spans are never entity-escaped

    def test_every_policy_message_keeps_its_placeholders_in_code(
        self, github_text: GithubText
    ) -> None:
        messages = policy_messages()
        with_placeholders = [m for m in messages if PLACEHOLDER.search(m)]
        assert len(with_placeholders) >= 3, with_placeholders
        for message in messages:
            text = split_finding(message)
            for part in (text.message, text.fix or ""):
                cell = f"| a |\n| --- |\n| {md_text(part)} |"
                outside = github_text(cell, drop_code=True)
                assert not PLACEHOLDER.search(outside), (message, md_text(part))
                for placeholder in PLACEHOLDER.findall(part):
                    assert placeholder in github_text(cell), (message, md_text(part))

    def test_pipes_backticks_and_markup(self, github_text: GithubText) -> None:
        cell = md_text("a | b `x|y` and *c* <b>bold</b> _d_ ~~e~~ [f](g)")
        shown = github_text(f"| a |\n| --- |\n| {cell} |")
        assert "a | b x|y and *c*" in shown and "<b>bold</b> _d_ ~~e~~ [f](g)" in shown
        assert md_code("a`b") == "`` a`b ``"
        assert md_code("x|y", table=False) == "`x|y`"

    def test_paths_are_whole_code_spans(self, github_text: GithubText) -> None:
        text = "plan /tmp/out/prod/resources.json is a file; give its folder (out/<stack>, here)"
        cell = md_text(text, table=False)
        assert "`/tmp/out/prod/resources.json`" in cell and "(`out/<stack>`," in cell
        assert github_text(cell).strip() == text

    def test_resource_prefix_and_fix_are_split(self) -> None:
        urn = "urn:pulumi:s::meshless::kubernetes:helm.sh/v3:Release::rel"
        text = split_finding(
            "kubernetes:helm.sh/v3:Release 'rel': kubeProxyReplacement is \"strict\": "
            "1.16 accepts only true or false. Set kubeProxyReplacement: true",
            urn,
        )
        assert text.message.startswith("kubeProxyReplacement is")
        assert text.fix == "Set kubeProxyReplacement: true"
        assert md_text(text.fix) == "Set `kubeProxyReplacement: true`"


def _violation(message: str, policy: str = "kube-proxy-replacement-strict") -> Violation:
    urn = "urn:pulumi:staging::meshless::meshless:aws:EksCluster$kubernetes:helm.sh/v3:Release::stg-eks-usw2-cilium-release-with-a-long-name"
    return Violation(policy, "mandatory", urn, message)


LONG = (
    "kubernetes:helm.sh/v3:Release 'stg-eks-usw2-cilium-release-with-a-long-name': the Envoy "
    'DaemonSet image (envoy.image) is not pinned by digest: useDigest is false, digest is "". '
    "Set envoy.image.useDigest: true and envoy.image.digest to the catalog's sha256 for this "
    "chart version (policies/data/cilium-images.json)"
)


class TestCiLog:
    """Piped, each finding is a block of at most six whole lines."""

    def test_blocks_keep_every_word_whole(self) -> None:
        report = GateReport("pack", "1", "staging", None, [_violation(LONG)] * 2, resources=9)
        out = io.StringIO()
        print_findings(report, Console(file=out, width=80, force_terminal=False))
        lines = out.getvalue().splitlines()
        text = split_finding(LONG, _violation(LONG).urn)
        assert sum(text.message in line for line in lines) == 2  # on one line, unbroken
        assert sum(text.fix in line for line in lines) == 2
        assert any("policies/data/cilium-images.json" in line for line in lines)
        blocks = "\n".join(lines).split("✖ ")[1:]
        assert len(blocks) == 2 and all(len(b.strip().splitlines()) <= 6 for b in blocks)
        assert "┃" not in out.getvalue()  # no table in a log

    def test_terminal_gets_the_table(self) -> None:
        report = GateReport("pack", "1", "staging", None, [_violation(LONG)], resources=9)
        out = io.StringIO()
        print_findings(report, Console(file=out, width=160, force_terminal=True))
        assert "┃" in out.getvalue() or "│" in out.getvalue()

    def test_control_characters_cannot_reach_the_log(self) -> None:
        lines = finding_blocks([_violation("bad\x1b[31m red\n::error::forged")])
        assert all("\x1b" not in line for line in lines)
        assert not any(line.startswith("::") for line in lines)


STACK = """\
config:
  meshless:environment: staging
  meshless:clusters:
    - cloud: eks
      name: stg-eks-usw2
      cilium:
        version: 1.16.19
        kubeProxyReplacement: strict
      addons:
        - name: kube-proxy
"""


class TestAnnotations:
    """Under GitHub Actions, findings land on the stack file line of their config key."""

    def test_location_of_the_key(self, tmp_path: Path) -> None:
        path = tmp_path / "Pulumi.staging.yaml"
        path.write_text(STACK)
        index = StackFileIndex(path, "Pulumi.staging.yaml")
        where = index.locate("stg-eks-usw2", "kube-proxy-replacement-strict")
        assert where is not None and where.line == 8
        assert where.key == "meshless:clusters[0].cilium.kubeProxyReplacement"
        assert index.locate("stg-eks-usw2", "eks-no-conflicting-addons").line == 9
        # not written (a default): the nearest written ancestor, then the cluster entry
        assert index.locate("stg-eks-usw2", "hubble-relay-enabled").line == 6
        assert index.locate("stg-eks-usw2", "gke-workload-identity").line == 5
        assert index.locate("other", "gke-mode-stated") is None

    def test_annotation_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "Pulumi.staging.yaml"
        path.write_text(STACK)
        index = StackFileIndex(path, "Pulumi.staging.yaml")
        v = _violation("x: 100% wrong,\nreally. Set kubeProxyReplacement: true")
        (line,) = annotation_lines([v], lambda _v: index.locate("stg-eks-usw2", _v.policy_name))
        assert line.startswith(
            "::error file=Pulumi.staging.yaml,line=8,title=kube-proxy-replacement-strict (mandatory)::"
        )
        assert "100%25 wrong," in line and "\n" not in line
        assert gh_property("a:b,c%") == "a%3Ab%2Cc%25" and gh_data("a\r\nb") == "a%0D%0Ab"
        (advisory,) = annotation_lines([Violation("p", "advisory", "", "m")])
        assert advisory.startswith("::warning title=p (advisory)::")


def test_artifact_link_on_github_and_locally() -> None:
    env = {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/meshless",
        "GITHUB_RUN_ID": "42",
    }
    assert "https://github.com/acme/meshless/actions/runs/42#artifacts" in artifact_link(
        "prod", env
    )
    assert "`out/prod/`" in artifact_link("prod", {})


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or n): f.annotation for n, f in model.model_fields.items()}


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside a field's type (Optional, unions, containers)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def test_policy_keys_name_real_policies_and_config_keys() -> None:
    """A renamed policy or config key must not leave annotations pointing nowhere."""
    policies = set()
    for path in (REPO / "policies" / "rules").glob("*.py"):
        policies |= set(re.findall(r'name="([a-z0-9-]+)"', path.read_text(encoding="utf-8")))
    assert set(POLICY_KEYS) <= policies, set(POLICY_KEYS) - policies
    for policy, keys in POLICY_KEYS.items():
        for key in keys:
            models: list[type[BaseModel]] = [EksClusterConfig, GkeClusterConfig]
            for part in key.split("."):
                found = [_fields(m)[part] for m in models if part in _fields(m)]
                assert found, f"{policy}: {key}: no config key {part!r}"
                models = [m for a in found for m in _models(a)]
