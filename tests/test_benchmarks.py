"""The benchmark scripts run on what the plan writes (they are how issue 21's ratios are
measured, so a script that fails part way would silently time a crash)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from infra.export_format import REDACTED, SECRET_SIG, SIG_KEY

REPO = Path(__file__).resolve().parents[1]


def test_the_floor_registers_an_exports_secret_inputs(tmp_path: Path) -> None:
    # resources.json holds a secret as its redacted envelope; handed to the SDK raw, the
    # envelope failed deserialisation ("Value not set") after every registration was timed.
    secret = {SIG_KEY: SECRET_SIG, "ciphertext": REDACTED}
    exported = tmp_path / "resources.json"
    resource = {
        "urn": "urn:pulumi:prod::meshless::kubernetes:core/v1:Secret::hubble-tls",
        "type": "kubernetes:core/v1:Secret",
        "custom": True,
        "inputs": {"metadata": {"name": "hubble-tls"}, "stringData": {"tls.key": secret}},
    }
    exported.write_text(json.dumps({"deployment": {"resources": [resource]}}), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "benchmarks/floor.py", "--gc-paused", "--with-inputs", "3", str(exported)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 resources registered (with the plan's inputs)" in done.stdout
