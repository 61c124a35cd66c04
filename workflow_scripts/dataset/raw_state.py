"""The raw files of a finished version as they are now: what its immutability check compares.

A no-op run over a finished version costs one ``stat`` per recorded input and a few ``scandir``
calls per study (:mod:`~workflow_scripts.dataset.version_guard`). At 100,000 studies that is
3.2 million ``stat`` calls and 300,000 folder listings: 31.6 s in one process, almost all of it
system calls and the Python around each (a ``stat`` costs 5-7 us on the 2-core VM these were
measured on, ``benchmarks/scale_100k.py``). The work splits cleanly: each input's ``stat`` and
each study's listing digest depend on nothing else. So with ``processes`` > 1 and enough
studies (:data:`PARALLEL_FROM`), :func:`raw_state` hands equal shares of the inputs and of the
studies to worker processes (``python -m workflow_scripts.dataset.raw_state``) and does one
share itself: 19.5 s in two. The parse of a Snakemake run is otherwise idle, and Snakemake's
``--cores`` bounds the processes (``workflow_scripts/rules/common.smk``).

Threads do not help: the ``stat`` loop holds the GIL between calls, and two threads measured
twice as slow as one. A worker takes its request on stdin (a JSON line, then the paths as an
Arrow IPC stream) and answers on stdout (a JSON line of digests, then the sizes and times as
an Arrow IPC stream): no pickle, no temporary file. A worker that fails or answers anything
else has its share done in this process instead, so the result never depends on a worker.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import StudyListing, file_stat_arrays, list_study

__all__ = ["PARALLEL_FROM", "RawState", "raw_state"]

#: Fewer studies than this are checked in one process: a worker's start (Python, numpy and
#: pyarrow imported: ~0.3 s) costs more than half of their ~0.4 ms each saves.
PARALLEL_FROM = 5_000

#: Inputs stat'ed per call of file_stat_arrays (bounds the path strings held at once).
_STAT_CHUNK = 65_536

#: (study link, contour kinds, follow_symlinks) -> the study's listing
ListStudy = Callable[[StudyLink, tuple[str, ...], bool], StudyListing]


@dataclass(frozen=True)
class RawState:
    """The raw files now: ``sizes`` and ``times`` (bytes, ns; int64, -1 where the input is
    missing, cannot be stat'ed or is not a regular file) of each input in the order of the
    paths asked for; ``digests``: each study's listing digest
    (:meth:`~workflow_scripts.raw.listing.StudyListing.digest`) by study id."""

    sizes: np.ndarray
    times: np.ndarray
    digests: dict[str, str]


def raw_state(
    data_dir: str | Path,
    paths: pa.ChunkedArray | pa.Array,
    links: list[StudyLink],
    kinds: tuple[str, ...],
    follow_symlinks: bool,
    processes: int = 1,
    list_files: ListStudy | None = None,
) -> RawState:
    """Stat every input of ``paths`` (relative to ``data_dir``, through symbolic links as
    ``os.stat``) and list every study of ``links`` (contour ``kinds``, ``follow_symlinks``), in
    up to ``processes`` processes from :data:`PARALLEL_FROM` studies on.

    ``list_files`` (the build plan's caching listing, or a test's) keeps the work in this
    process: a worker lists with :func:`~workflow_scripts.raw.listing.list_study`."""
    root = str(data_dir)
    paths = pa.chunked_array([paths]) if isinstance(paths, pa.Array) else paths
    shares = max(1, min(processes, os.cpu_count() or 1))
    if list_files is not None or shares == 1 or len(links) < PARALLEL_FROM:
        return _measure(root, paths, links, kinds, follow_symlinks, list_files)
    parts = [
        (paths.slice(start, stop - start), links[first:last])
        for (start, stop), (first, last) in zip(
            _split(len(paths), shares), _split(len(links), shares), strict=True
        )
    ]
    workers = [_Worker.start(root, *part, kinds, follow_symlinks) for part in parts[1:]]
    states = [_measure(root, *parts[0], kinds, follow_symlinks)]
    for worker, part in zip(workers, parts[1:], strict=True):
        state = worker.result()
        if state is None:  # the worker failed: its share is done here
            state = _measure(root, *part, kinds, follow_symlinks)
        states.append(state)
    return RawState(
        np.concatenate([state.sizes for state in states]),
        np.concatenate([state.times for state in states]),
        {study: digest for state in states for study, digest in state.digests.items()},
    )


def _split(count: int, shares: int) -> list[tuple[int, int]]:
    """``shares`` contiguous (start, stop) ranges of ``range(count)``, sizes within one."""
    bounds = [count * share // shares for share in range(shares + 1)]
    return list(itertools.pairwise(bounds))


def _measure(
    root: str,
    paths: pa.ChunkedArray,
    links: list[StudyLink],
    kinds: tuple[str, ...],
    follow_symlinks: bool,
    list_files: ListStudy | None = None,
) -> RawState:
    """One share of :func:`raw_state`'s work, in this process."""
    sizes, times = _stat_arrays(root, paths)
    if list_files is None:

        def list_files(link: StudyLink, kinds: tuple[str, ...], follow: bool) -> StudyListing:
            return list_study(link, root, kinds, follow)

    digests = {link.patient_id: list_files(link, kinds, follow_symlinks).digest() for link in links}
    return RawState(sizes, times, digests)


def _stat_arrays(root: str, paths: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(size, mtime_ns) of each file under ``root`` (``paths`` relative to it) as two int64
    arrays, -1 where it is missing, cannot be stat'ed or is not a regular file; through any
    symbolic link, as ``os.stat``: :func:`~workflow_scripts.raw.listing.file_stat_arrays`
    (each folder opened once), over :data:`_STAT_CHUNK` paths at a time, so that only so many
    Python strings exist at once. (Arrow's C++ ``get_file_info`` in batches, used here before,
    measured the same at 100,000 studies: 5.8-7.5 us a file either way, the ``stat`` itself.)"""
    sizes = np.full(len(paths), -1, dtype=np.int64)
    times = np.full(len(paths), -1, dtype=np.int64)
    for start in range(0, len(paths), _STAT_CHUNK):
        relpaths = paths.slice(start, _STAT_CHUNK).to_pylist()
        stop = start + len(relpaths)
        sizes[start:stop], times[start:stop] = file_stat_arrays(root, relpaths)
    return sizes, times


_SIZES_SCHEMA = pa.schema([("size", pa.int64()), ("mtime_ns", pa.int64())])
_PATHS_SCHEMA = pa.schema([("path", pa.string())])


class _Worker:
    """A worker process measuring one share; :meth:`result` is its :class:`RawState`, or None
    when it failed or answered anything else."""

    def __init__(
        self, process: subprocess.Popen, sender: threading.Thread, studies: list[str], rows: int
    ):
        self.process, self.sender, self.studies, self.rows = process, sender, studies, rows

    @classmethod
    def start(
        cls,
        root: str,
        paths: pa.ChunkedArray,
        links: list[StudyLink],
        kinds: tuple[str, ...],
        follow_symlinks: bool,
    ) -> _Worker:
        # The package's own folder first: the working folder may be a project folder elsewhere.
        package_parent = str(Path(__file__).resolve().parents[2])
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [package_parent, environment.get("PYTHONPATH")])
        )
        process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=environment,
        )
        request = {
            "data_dir": root,
            "kinds": list(kinds),
            "follow_symlinks": follow_symlinks,
            "studies": [[link.patient_id, link.original_id] for link in links],
        }
        table = pa.table([paths], schema=_PATHS_SCHEMA)
        # Sent beside this process's own share: a pipe holds 64 kB, the paths are megabytes.
        sender = threading.Thread(target=_send, args=(process.stdin, request, table), daemon=True)
        sender.start()
        return cls(process, sender, [link.patient_id for link in links], len(paths))

    def result(self) -> RawState | None:
        answer = self.process.stdout.read()
        self.process.stdout.close()
        self.sender.join()
        if self.process.wait() != 0:
            return None
        try:
            head, _, body = answer.partition(b"\n")
            digests = json.loads(head)["digests"]
            table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
        except (ValueError, KeyError, TypeError, pa.ArrowException):
            return None
        # Its answer is used only if it is one: a size and time per path, a digest per study.
        if table.schema != _SIZES_SCHEMA or table.num_rows != self.rows:
            return None
        if not isinstance(digests, list) or len(digests) != len(self.studies):
            return None
        if not all(isinstance(digest, str) for digest in digests):
            return None
        return RawState(
            table["size"].to_numpy(),
            table["mtime_ns"].to_numpy(),
            dict(zip(self.studies, digests, strict=True)),
        )


def _send(stream, request: dict, table: pa.Table) -> None:
    try:
        stream.write(json.dumps(request).encode() + b"\n")
        with pa.ipc.new_stream(stream, table.schema) as writer:
            writer.write_table(table)
        stream.close()
    except (OSError, ValueError):  # the worker died: its exit status says so
        pass


def _serve() -> None:
    """A worker: read a request on stdin, answer on stdout (see the module's docstring)."""
    stdin = sys.stdin.buffer
    request = json.loads(stdin.readline())
    paths = pa.ipc.open_stream(stdin).read_all()["path"]
    links = [StudyLink(patient_id, original_id) for patient_id, original_id in request["studies"]]
    state = _measure(
        request["data_dir"], paths, links, tuple(request["kinds"]), request["follow_symlinks"]
    )
    digests = [state.digests[link.patient_id] for link in links]
    stdout = sys.stdout.buffer
    stdout.write(json.dumps({"digests": digests}).encode() + b"\n")
    table = pa.table([pa.array(state.sizes), pa.array(state.times)], schema=_SIZES_SCHEMA)
    with pa.ipc.new_stream(stdout, _SIZES_SCHEMA) as writer:
        writer.write_table(table)
    stdout.flush()


if __name__ == "__main__":
    _serve()
