"""Worker processes for the study jobs that Snakemake runs as threads of its own process.

``build_study`` is a ``run:`` rule, and with ``force-use-threads`` (the workflow's default
profile) Snakemake runs such jobs as threads of its own process: no new Python per study. But a
study's work is mostly Python holding the GIL (DICOM parsing, drawing), so two threads get little
more than one core. So the threads hand the work to a pool of worker processes, one per core
Snakemake was given, started once per run and reused by every study job: the job graph and the
scheduling stay Snakemake's, the CPU work runs in parallel, and Python starts ``cores`` times per
run instead of once per study.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

__all__ = ["run_in_pool"]

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def run_in_pool(function: Callable[..., Any], *args: Any, workers: int) -> Any:
    """Run ``function(*args)`` in the shared worker pool and return its result.

    The pool is created on first use with ``workers`` processes ("spawn": the Snakemake process
    has threads, which fork must not copy). Exceptions raised by ``function`` propagate. A
    worker that dies (e.g. killed by the OOM killer) fails the job that was running on it; the
    pool is then replaced, so later jobs still run.
    """
    pool = _get_pool(workers)
    try:
        return pool.submit(function, *args).result()
    except BrokenProcessPool:
        _discard(pool)
        raise


def _get_pool(workers: int) -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            context = multiprocessing.get_context("spawn")
            _pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context)
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)
