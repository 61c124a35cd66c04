"""Collecting library warnings per thread, so each job's warnings reach its own log.

Study jobs run as threads of one Snakemake process, and ``warnings.catch_warnings`` swaps
process-wide state, so two jobs using it at once would steal or lose each other's warnings. This
module installs one ``showwarning`` hook that hands a warning to the list of the thread that
raised it, when that thread is capturing, and to Python's usual display otherwise.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["captured_warnings"]

_local = threading.local()
_install_lock = threading.Lock()
_original_showwarning = None


def _route(message, category, filename, lineno, file=None, line=None):
    sink = getattr(_local, "sink", None)
    if sink is None:
        _original_showwarning(message, category, filename, lineno, file, line)
    else:
        sink.append(f"{category.__name__}: {str(message).strip()}")


def _install() -> None:
    global _original_showwarning
    with _install_lock:
        if _original_showwarning is None:
            _original_showwarning = warnings.showwarning
            warnings.showwarning = _route
            # pydicom repeats the same warning for every file; count them all, not the first.
            warnings.filterwarnings("always", module=r"pydicom(\.|$)")


@contextmanager
def captured_warnings() -> Iterator[list[str]]:
    """Collect warnings raised in this thread inside the block, as "Category: message" text."""
    _install()
    previous = getattr(_local, "sink", None)
    _local.sink = sink = []
    try:
        yield sink
    finally:
        _local.sink = previous
