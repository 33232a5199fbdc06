"""The plan's manifests written by a second process while the program records.

What we optimised and why: an offline plan records its resources on one core while the other
waits for work, and then had to turn every Kubernetes object into YAML and create its file, one
after another, before it could finish. At 1270 services that is 2700 files: 1.3 s of YAML and
1 to 4 s of file creation, almost all of it kernel time that grows with the size of the folder
(`python benchmarks/plan_services.py`). So the recording monitor hands each resource to
``ManifestStream.send`` as it registers it (its export entry, pickled down a pipe), and a
child process (``python -m infra.manifest_stream <folder>``) writes its manifest at once on the
idle core. The files are those ``infra.manifests.write_manifests`` writes for the finished
export, byte for byte:

- the cluster folder: a resource's owner is itself if it is a cluster component, else its
  parent's owner; the SDK registers a parent before its children (pulumi 3.272.0,
  pulumi/runtime/resource.py ``prepare_resource`` awaits ``opts.parent.urn`` before the
  RegisterResource call), so the owner is known on arrival (a resource whose parent has not
  arrived yet waits for the end, where the finished list answers as
  ``StackExport.cluster_of`` does);
- two resources with one file name: the export's order decides which one the file holds, so
  the child reports such names and ``finish`` writes them again in export order.

Threads could not do this: every file costs three system calls, and a thread that gives up the
interpreter lock for each waits up to the 5 ms switch interval to get it back while the program
runs. Measured (prod + 1270 services, `meshless plan`, five interleaved rounds against the
commit before): medians 19.2 -> 16.5 s with the writer, 13.1 -> 11.7 s more with ``send``
queueing instead of writing the pipe itself; prod (98 resources) unchanged within noise.
The writer imports no SDK (records arrive as plain dicts): with pulumi imported its start cost
0.36 s of CPU on the core that is also starting the policy pack; without, 0.08 s, and a prod
plan went 4.64 -> 4.37 s (seven interleaved rounds, medians).
"""

from __future__ import annotations

import gc
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from infra.export_format import StackExport, cluster_named, entry_of
from infra.manifests import placed, write_manifest, write_manifests

if TYPE_CHECKING:  # the writer process itself never needs the SDK: records arrive as dicts
    from infra.mocks import RecordedResource

__all__ = ["ManifestError", "ManifestStream", "serve"]

_LENGTH = struct.Struct("<I")  # a frame's byte count, before its pickle

# The folder holding the infra package: where `python -m infra.manifest_stream` finds it,
# from a checkout or an installed distribution alike.
_PACKAGE_PARENT = Path(__file__).resolve().parents[1]


class ManifestError(Exception):
    """The manifest writer failed (a full disk, a folder it may not write): the message says."""


class ManifestStream:
    """``with ManifestStream(folder) as stream: ... stream.send(resource) ...
    stream.finish(export)``; leaving the block without ``finish`` stops the writer."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._broken = False
        self._child = subprocess.Popen(
            [sys.executable, "-m", "infra.manifest_stream", str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=_PACKAGE_PARENT,
        )
        # send() runs on the SDK's executor threads and must never wait for the writer (a
        # full pipe would stall the recording): it queues frames, and this thread writes them
        # down the pipe in batches, one system call per batch.
        self._queue: list[bytes] = []
        self._queued = threading.Condition()
        self._ending = False
        self._pump = threading.Thread(target=self._pump_frames, daemon=True)
        self._pump.start()

    def __enter__(self) -> ManifestStream:
        return self

    def send(self, resource: RecordedResource) -> None:
        """One recorded resource to the writer (a component: just what ownership needs)."""
        if resource.custom:
            record: dict[str, Any] = entry_of(resource)
        else:
            record = {"urn": resource.urn, "type": resource.type, "parent": resource.parent}
        data = frame(record)
        with self._queued:
            self._queue.append(data)
            self._queued.notify()

    def _pump_frames(self) -> None:
        while True:
            with self._queued:
                while not self._queue and not self._ending:
                    self._queued.wait()
                batch, self._queue = b"".join(self._queue), []
                ending = self._ending
            if batch and not self._broken:
                try:
                    assert self._child.stdin is not None
                    self._child.stdin.write(batch)
                    self._child.stdin.flush()
                except OSError:  # BrokenPipeError: it ended early; finish() reports why
                    self._broken = True
            if ending and not batch:
                return

    def _end_frames(self) -> None:
        with self._queued:
            self._ending = True
            self._queued.notify()
        self._pump.join()

    def finish(self, export: StackExport) -> int:
        """Wait for the writer; the count of manifest files, as ``write_manifests`` gives it.
        ManifestError if the writer failed."""
        self._end_frames()
        # A writer that ended early broke the pipe: communicate() ignores that and collects
        # what it said.
        out, err = self._child.communicate()
        if self._child.returncode != 0:
            said = err.decode("utf-8", "replace").strip().splitlines()
            raise ManifestError(
                f"{self.directory}: writing the plan's manifests failed"
                + (f": {said[-1]}" if said else f" (exit {self._child.returncode})")
            )
        done = orjson.loads(out)
        if done["collided"]:
            write_manifests(export, self.directory, only=set(done["collided"]))
        return int(done["count"])

    def __exit__(self, *exc: object) -> None:
        if self._child.poll() is None:
            self._child.kill()
        self._end_frames()  # the pump ends too (a write to a dead writer fails at once)
        if self._child.returncode is None:
            self._child.communicate()


def frame(record: dict[str, Any]) -> bytes:
    """One resource for the pipe: pickled, so every value arrives exactly as it left (JSON
    would turn an integer beyond 64 bits into a float and NaN into null), length first."""
    data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _frames(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    while header := stream.read(_LENGTH.size):
        (size,) = _LENGTH.unpack(header)
        yield pickle.loads(stream.read(size))  # our own process's bytes, never a user's


def serve(directory: Path, stream: IO[bytes]) -> dict[str, Any]:
    """The writer: each frame a resource (see ManifestStream.send); returns the manifest count
    and the file names more than one resource wrote."""
    owners: dict[str, str | None] = {}
    received: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []
    written: set[str] = set()
    collided: set[str] = set()
    made: set[Path] = set()
    count = 0

    def write(res: dict[str, Any], owner: str | None) -> None:
        nonlocal count
        manifest = placed(res, owner)
        if manifest is None:
            return
        count += 1
        if manifest[0] in written:
            collided.add(manifest[0])
        written.add(manifest[0])
        write_manifest(directory, *manifest, made)

    for res in _frames(stream):
        received.append(res)
        parent = res.get("parent")
        owner = cluster_named(res)
        if owner is None and parent:
            if parent not in owners:
                waiting.append(res)
                continue
            owner = owners[parent]
        owners[res["urn"]] = owner
        write(res, owner)
    if waiting:
        export = StackExport(received)
        for res in waiting:
            write(res, export.cluster_of(res))
    return {"count": count, "collided": sorted(collided)}


if __name__ == "__main__":
    # The writer keeps every resource it received until it ends, and the collector only
    # rescanned them again and again. Writing the 2790 resources of 1270 services took 3.5 to
    # 4.3 s of CPU with it and 3.1 to 3.95 s without (five runs each, each pair faster without),
    # on the core that also runs the policy pack.
    gc.disable()
    sys.stdout.buffer.write(orjson.dumps(serve(Path(sys.argv[1]), sys.stdin.buffer)))
