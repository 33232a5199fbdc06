"""The manifests written while the program records are the manifests of the finished export.

infra/manifest_stream.py writes each resource's manifest in a second process as the recording
monitor hands it over; ``infra.manifests.write_manifests`` on the finished export is the
reference: same files, same bytes, same count, whatever order the resources arrive in.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.export_format import StackExport, read_export
from infra.manifest_stream import ManifestError, ManifestStream, frame, serve
from infra.manifests import write_manifests
from infra.mocks import RecordedResource
from tests.test_plan import run_plan

REPO = Path(__file__).resolve().parents[1]


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _lines(resources: list[dict[str, Any]]) -> io.BytesIO:
    return io.BytesIO(b"".join(frame(r) for r in resources))


@pytest.fixture(scope="module")
def prod_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plan") / "prod"
    assert run_plan("prod", out) == 0
    return out


def test_plan_manifests_are_those_of_its_export(prod_plan: Path, tmp_path: Path) -> None:
    export = read_export(prod_plan / "resources.json")
    count = write_manifests(export, tmp_path)
    streamed = {k: v for k, v in _tree(prod_plan / "manifests").items() if "/cilium/" not in k}
    assert streamed == _tree(tmp_path)
    assert count == len(streamed) > 10


def test_arrival_order_does_not_matter(prod_plan: Path, tmp_path: Path) -> None:
    """Children before their parents (they wait for the end) and the reverse of the export
    order give the export's files."""
    export = read_export(prod_plan / "resources.json")
    write_manifests(export, tmp_path / "reference")
    done = serve(tmp_path / "streamed", _lines(list(reversed(export.resources))))
    assert done == {"count": len(_tree(tmp_path / "reference")), "collided": []}
    assert _tree(tmp_path / "streamed") == _tree(tmp_path / "reference")


def _config_map(urn_name: str, name: str, value: str) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:prod::meshless::kubernetes:core/v1:ConfigMap::{urn_name}",
        "type": "kubernetes:core/v1:ConfigMap",
        "custom": True,
        "inputs": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "shop"},
            "data": {"v": value},
        },
    }


def test_one_file_name_twice_holds_the_later_resource_of_the_export(tmp_path: Path) -> None:
    """``app:x`` and ``app-x`` make one file name; the export's order decides."""
    first, second = _config_map("one", "app:x", "first"), _config_map("two", "app-x", "second")
    export = StackExport([first, second])
    write_manifests(export, tmp_path / "reference")
    done = serve(tmp_path / "streamed", _lines([second, first]))  # arrival: the other order
    assert done["collided"] == ["_stack/configmap-shop-app-x.yaml"]
    assert "first" in (tmp_path / "streamed" / done["collided"][0]).read_text()
    write_manifests(export, tmp_path / "streamed", only=set(done["collided"]))
    assert _tree(tmp_path / "streamed") == _tree(tmp_path / "reference")
    assert "second" in (tmp_path / "reference" / done["collided"][0]).read_text()


def _recorded(entry: dict[str, Any]) -> RecordedResource:
    return RecordedResource(
        urn=entry["urn"],
        type=entry["type"],
        name=entry["urn"].rsplit("::", 1)[-1],
        custom=True,
        parent="",
        provider="",
        dependencies=[],
        property_dependencies={},
        inputs=entry["inputs"],
    )


def test_the_writer_process_and_its_collision_repair(tmp_path: Path) -> None:
    first, second = _config_map("one", "app:x", "first"), _config_map("two", "app-x", "second")
    with ManifestStream(tmp_path / "manifests") as stream:
        stream.send(_recorded(second))
        stream.send(_recorded(first))
        count = stream.finish(StackExport([first, second]))
    assert count == 2
    written = tmp_path / "manifests" / "_stack" / "configmap-shop-app-x.yaml"
    assert "second" in written.read_text()


def test_a_writer_that_cannot_write_is_a_message(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with ManifestStream(tmp_path / "file" / "manifests") as stream:
        stream.send(_recorded(_config_map("one", "app", "v")))
        with pytest.raises(ManifestError, match=r"file/manifests: writing the plan's manifests"):
            stream.finish(StackExport([]))


def test_leaving_without_finish_stops_the_writer(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), ManifestStream(tmp_path / "m") as stream:
        raise RuntimeError("the program failed")
    assert stream._child.poll() is not None


def test_send_never_waits_for_the_writer(tmp_path: Path) -> None:
    """The recording hands resources over on the SDK's threads; a writer that has stopped
    reading (a slow disk) must not stall it: send() queues, a pump thread fills the pipe."""
    import os
    import signal
    import threading

    with ManifestStream(tmp_path / "manifests") as stream:
        os.kill(stream._child.pid, signal.SIGSTOP)  # the writer reads nothing from here on
        try:
            big = _config_map("one", "app", "x" * 200_000)  # 50 of these: 10 MB, > any pipe
            sender = threading.Thread(
                target=lambda: [stream.send(_recorded(big)) for _ in range(50)], daemon=True
            )
            sender.start()
            sender.join(timeout=20)
            assert not sender.is_alive(), "send() waited for a writer that does not read"
        finally:
            os.kill(stream._child.pid, signal.SIGCONT)
        assert stream.finish(StackExport([big])) == 50


def test_values_arrive_exactly(tmp_path: Path) -> None:
    """An integer beyond 64 bits stays an integer and NaN stays NaN (JSON would not keep
    either), so the worker's YAML is the export's."""
    odd = _config_map("one", "app", "v")
    odd["inputs"]["data"] = {"big": 10**30, "nan": float("nan"), "neg": -0.0}
    write_manifests(StackExport([odd]), tmp_path / "reference")
    serve(tmp_path / "streamed", _lines([odd]))
    assert _tree(tmp_path / "streamed") == _tree(tmp_path / "reference")
    assert (
        "1000000000000000000000000000000"
        in (tmp_path / "streamed" / "_stack" / "configmap-shop-app.yaml").read_text()
    )


def test_writer_process_starts_without_the_sdk() -> None:
    # The writer runs beside the recording on the second core, which also starts the policy
    # pack: importing pulumi there (0.3 s of CPU) only to unpickle plain dicts slowed a prod
    # plan's finish() from ~0.05 to ~0.25 s. Records are dicts; the SDK stays out.
    probe = (
        "import sys, infra.manifest_stream; "
        "print(sorted(m for m in sys.modules if m.startswith('pulumi')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
