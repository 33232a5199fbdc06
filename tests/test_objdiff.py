"""Rendered-object diffs between two plans (the `--compare` table of chart objects)."""

from __future__ import annotations

from pathlib import Path

import yaml

from infra.objdiff import diff_rendered


def _plan(root: Path, token: str) -> Path:
    folder = root / "manifests" / "c1" / "cilium"
    folder.mkdir(parents=True)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hubble-ca", "namespace": "kube-system"},
        "data": {"ca.crt": token},
    }
    (folder / "secret.yaml").write_text(yaml.safe_dump(secret), encoding="utf-8")
    return root


class TestSecretsStayRedacted:
    """A changed Secret is reported by path, its values never shown (and the diff must not
    crash on it: ResourceChange is immutable)."""

    def test_changed_secret_values_are_redacted(self, tmp_path: Path) -> None:
        base = _plan(tmp_path / "base", "b2xkLXNlY3JldA==")
        head = _plan(tmp_path / "head", "bmV3LXNlY3JldA==")
        [diff] = diff_rendered(base, head)
        [change] = diff.changed
        assert change.urn == "Secret/kube-system/hubble-ca"
        assert change.paths == ['data["ca.crt"]']
        assert change.values == {'data["ca.crt"]': ("[secret]", "[secret]")}
        assert "bmV3LXNlY3JldA==" not in repr(change)
