"""The size and modification time of every recorded input of a finished version, for the
immutability check (:mod:`~workflow_scripts.dataset.version_guard`): one ``stat`` per file,
through any symbolic link, as two int64 arrays.

At 100,000 studies that is 3 million ``stat`` calls (~5 µs each on the loaded 2-core machine:
15 s), beside a listing of each study (mostly Python, as long again). So beyond
:data:`WORKER_MIN_FILES` files they run in a second process (:class:`StatWorker`, this module
run with ``python -m``: it imports nothing but numpy), started before the listing and read
after it: the two halves of the check take the time of the longer one. The worker gets the
paths as bytes on its stdin and answers with the two arrays on its stdout; if it fails in any
way, the files are stat'ed here instead (the check never depends on the worker).

Protocol (all integers little-endian int64): in, ``count``, ``len(root)``, ``root`` (bytes),
``count + 1`` offsets into the paths' bytes, the paths' UTF-8 bytes (each relative to root,
joined to it with ``/``); out, ``count`` sizes then ``count`` modification times (ns), -1
where the path is missing, cannot be stat'ed or is not a regular file.
"""

from __future__ import annotations

import itertools
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["WORKER_MIN_FILES", "StatWorker", "stat_files"]

#: From this many files on, a worker process stats them (below, starting it costs more than
#: it saves: ~0.1 s of start-up against ~5 µs a file).
WORKER_MIN_FILES = 50_000

_INT = np.dtype("<i8")


def stat_files(root: bytes, offsets: np.ndarray, paths: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(size, mtime_ns) of each path (``paths[offsets[i]:offsets[i + 1]]``, relative to
    ``root``) as two int64 arrays, -1 where missing, unreachable or not a regular file;
    through any symbolic link (``os.stat``)."""
    sizes, times = [], []
    prefix = root + b"/"
    bounds = offsets.tolist()
    for start, end in itertools.pairwise(bounds):
        try:
            status = os.stat(prefix + paths[start:end])
        except OSError:
            sizes.append(-1)
            times.append(-1)
            continue
        if stat.S_ISREG(status.st_mode):
            sizes.append(status.st_size)
            times.append(status.st_mtime_ns)
        else:
            sizes.append(-1)
            times.append(-1)
    return np.array(sizes, dtype=np.int64), np.array(times, dtype=np.int64)


def arrow_paths(column: Any) -> tuple[np.ndarray, bytes]:
    """The offsets (int64, ``len + 1``) and UTF-8 bytes of a pyarrow string column (no nulls),
    without a Python str per path."""
    import pyarrow as pa

    array = column.cast(pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    _, offsets, data = array.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64, count=array.offset + len(array) + 1)
    bounds = bounds[array.offset :]
    data_bytes = b"" if data is None else data.to_pybytes()[bounds[0] : bounds[-1]]
    return bounds - bounds[0], data_bytes


class StatWorker:
    """:func:`stat_files` in a second process: started by the constructor (its input written
    by a thread), answered by :meth:`result`; falls back to :func:`stat_files` here when the
    worker fails."""

    def __init__(self, root: str, offsets: np.ndarray, paths: bytes):
        self._args = (os.fsencode(root), offsets, paths)
        self._process: subprocess.Popen | None = None
        try:
            package_root = Path(__file__).resolve().parents[2]  # this module's own code
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(package_root), *filter(None, [os.environ.get("PYTHONPATH")])])}  # fmt: skip
            self._process = subprocess.Popen(
                [sys.executable, "-m", "workflow_scripts.dataset.input_stats"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError:
            return
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._writer.start()

    def _write(self) -> None:
        root, offsets, paths = self._args
        count = len(offsets) - 1
        header = np.array([count, len(root)], dtype=_INT).tobytes()
        try:
            with self._process.stdin as stdin:
                stdin.write(header + root)
                stdin.write(offsets.astype(_INT).tobytes())
                stdin.write(paths)
        except OSError:  # the worker died: result() falls back
            pass

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The two arrays, from the worker or, if it failed, computed here."""
        count = len(self._args[1]) - 1
        if self._process is not None:
            try:
                data = self._process.stdout.read()
                self._process.stdout.close()
                code = self._process.wait()
                self._writer.join()
            except OSError:
                code, data = -1, b""
            if code == 0 and len(data) == 16 * count:
                both = np.frombuffer(data, dtype=_INT).astype(np.int64)
                return both[:count].copy(), both[count:].copy()
        return stat_files(*self._args)


def _serve() -> None:
    """The worker: read the request on stdin, answer on stdout."""
    data = sys.stdin.buffer.read()
    count, root_length = np.frombuffer(data, dtype=_INT, count=2).tolist()
    position = 16
    root = data[position : position + root_length]
    position += root_length
    offsets = np.frombuffer(data, dtype=_INT, count=count + 1, offset=position)
    position += 8 * (count + 1)
    sizes, times = stat_files(root, offsets, data[position:])
    sys.stdout.buffer.write(sizes.astype(_INT).tobytes() + times.astype(_INT).tobytes())
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _serve()
