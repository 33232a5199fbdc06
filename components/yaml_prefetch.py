"""Large YAML files of a stack parsed by a second process while this one reads the rest.

What we optimised and why: loading a stack of 1270 services spent a third of its time parsing
one file, the folder's flows.yaml (2 MB, 26,790 flows: 0.65 to 0.87 s of YAML), on the core
that then parsed the 1270 policy files, while the other core only started the policy pack.
``prefetching(paths)`` starts ``python -m components.yaml_prefetch <path>...``; that process
parses each file with the same line-recording loader (components/yaml_lines.py) and sends
the document and its line table back, pickled (unpickling the flows file takes 0.06 s).
Meanwhile this process reads the policy folders, and ``_read_source``
(components/traffic/source.py) takes a prefetched file instead of parsing it. The helper
imports only PyYAML and the loader, which is why both live outside components/traffic
(whose package imports pydantic and the models: 0.27 s).

A prefetch only ever saves work: a file the helper could not read or parse (or a helper that
failed) is parsed here as if there were no helper, so every message about it is the one the
plain path gives.
"""

from __future__ import annotations

import gc
import pickle
import struct
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

from components.yaml_lines import _Lines, load_with_lines

__all__ = ["PREFETCH_MIN_BYTES", "Prefetch", "prefetched", "prefetching"]

#: Files smaller than this are parsed in place: below it the helper's start (~0.1 s of CPU
#: on the other core) costs more than the parse it would save (YAML parses at ~2.5 MB/s).
PREFETCH_MIN_BYTES = 512 * 1024

_LENGTH = struct.Struct("<Q")
# The folder holding the components package: where `python -m components.yaml_prefetch`
# finds it, from a checkout or an installed distribution alike.
_PACKAGE_PARENT = Path(__file__).resolve().parents[1]

_ACTIVE: ContextVar[Prefetch | None] = ContextVar("meshless_yaml_prefetch", default=None)


class Prefetch:
    """The helper process for ``paths`` and what it has sent so far."""

    def __init__(self, paths: Sequence[Path]) -> None:
        # Compared as given, not resolved (``take`` is asked about every file the load reads,
        # and resolving costs system calls): the load names a file the same way both times.
        self.paths = list(paths)
        self._received: dict[Path, tuple[Any, _Lines] | None] = {}
        self._next = 0  # index in self.paths of the next frame
        self._ended = False  # the helper sends nothing more
        self._child: subprocess.Popen[bytes] | None = None
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "components.yaml_prefetch", *map(str, self.paths)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                cwd=_PACKAGE_PARENT,
            )
        except OSError:
            self._ended = True  # no helper: every file is parsed in place

    def take(self, path: Path) -> tuple[Any, _Lines] | None:
        """``path``'s document and line table, or None: parse it in place (not asked for, or
        the helper could not)."""
        if path not in self.paths:
            return None
        while path not in self._received and not self._ended and self._next < len(self.paths):
            sent = self.paths[self._next]  # the helper sends the files in the order given
            self._next += 1
            self._received[sent] = self._read_frame()
        return self._received.pop(path, None)

    def _read_frame(self) -> tuple[Any, _Lines] | None:
        # Only called while the helper has not ended, so it exists.
        assert self._child is not None and self._child.stdout is not None
        stream = self._child.stdout
        header = stream.read(_LENGTH.size)
        if len(header) < _LENGTH.size:  # the helper ended early: the rest in place
            self._ended = True
            return None
        (size,) = _LENGTH.unpack(header)
        if size == 0:
            return None  # the helper could not read or parse this one
        data = stream.read(size)
        if len(data) < size:
            self._ended = True
            return None
        # Our own helper's bytes, never a user's.
        document, keys, items, duplicates = pickle.loads(data)
        return document, _Lines.restored(keys, items, duplicates)

    def close(self) -> None:
        if self._child is None:
            return
        if self._child.poll() is None:
            self._child.kill()
        self._child.communicate()


@contextmanager
def prefetching(paths: Sequence[Path]) -> Iterator[Prefetch | None]:
    """Within the block, ``_read_source`` takes these files from a helper process (only the
    files of at least PREFETCH_MIN_BYTES; none: no helper)."""
    large = [p for p in paths if _size(p) >= PREFETCH_MIN_BYTES]
    if not large:
        yield None
        return
    prefetch = Prefetch(large)
    token = _ACTIVE.set(prefetch)
    try:
        yield prefetch
    finally:
        _ACTIVE.reset(token)
        prefetch.close()


def prefetched(path: Path) -> tuple[Any, _Lines] | None:
    """The active prefetch's document and line table of ``path``, if it has them."""
    prefetch = _ACTIVE.get()
    return prefetch.take(path) if prefetch is not None else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# -- the helper -------------------------------------------------------------------------------


def parse(path: Path) -> tuple[Any, _Lines] | None:
    """What ``_read_source`` parses, or None if it cannot (it then says why, in place)."""
    try:
        return load_with_lines(path.read_text(encoding="utf-8"))
    except Exception:  # unreadable, not UTF-8, not YAML: whatever it is, reported in place
        return None


def serve(paths: Sequence[Path], out: IO[bytes]) -> None:
    for path in paths:
        parsed = parse(path)
        if parsed is None:
            out.write(_LENGTH.pack(0))
        else:
            document, lines = parsed
            data = pickle.dumps(
                (document, *lines.portable(document)), protocol=pickle.HIGHEST_PROTOCOL
            )
            out.write(_LENGTH.pack(len(data)) + data)
        out.flush()


if __name__ == "__main__":
    # Everything parsed lives until the helper ends: the collector would only rescan it.
    gc.disable()
    serve([Path(p) for p in sys.argv[1:]], sys.stdout.buffer)
