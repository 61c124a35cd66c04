"""A batch of studies: the workflow's unit of work (rule ``build_studies``).

One job builds several studies (which ones: :mod:`workflow_scripts.batches`), each exactly as
:func:`~workflow_scripts.study.build.build_study` alone would, to the same files; the batch adds
its studies' share of the manifest as tables (:mod:`workflow_scripts.dataset.batch_tables`) and
a small *batch record* listing its studies, written last (the job's tracked output).

With ``workers`` > 1 the studies go to a pool of that many worker processes (the job's
``threads``); with 1 they run in the job's own process. The pool's workers are forked from the
job's process, which is a fresh single-purpose Python without threads of its own: they inherit
its imports (pydicom, numpy, Pillow, pyarrow: ~0.7 s each to import again) at no cost.

The workers ignore Ctrl-C (SIGINT, which reaches every process of the run): only the job's
process takes it, drops the studies not yet started, lets the running ones finish (their files
are written atomically) and stops (see :mod:`workflow_scripts.job_failures`). A failing study
stops the batch the same way.

Before building, each study is checked for reuse (:mod:`workflow_scripts.study.reuse`): a
study whose build would give the same bytes (same options, decisions, code, listing, input
contents, and intact outputs) is kept as it is, so a batch rerun for one changed study (or for
a file touched with the same content) rebuilds that study alone. The study build's imports
(pydicom, matplotlib, ...) are loaded only when a study is rebuilt.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TextIO

from workflow_scripts.config import FOLLOW_SYMLINKS
from workflow_scripts.dataset.batch_tables import write_batch_tables
from workflow_scripts.files import write_bytes_atomic
from workflow_scripts.job_failures import workers_ignore_interrupts
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.study.reuse import NOT_BUILT, build_key, reuse_study, write_stamp

__all__ = ["build_batch"]


def build_batch(
    batch: str,
    studies: Iterable[tuple[str, str]],
    layout: Layout,
    options: dict,
    workers: int,
    record_path: str | Path,
    exclusions: Mapping[str, list] | None = None,
    log: TextIO = sys.stderr,
) -> list[str]:
    """Build every study of a batch; return their ids.

    Args:
        batch: the batch's id (for the record and the log).
        studies: (patient_id, original_id) of each study, in build order.
        layout: where the raw data is and where the outputs go.
        options: the ``contours``/``checks``/``qc`` config sections.
        workers: processes building studies at once (1: in this process).
        record_path: the batch record to write last: ``{"batch", "studies"}``.
        exclusions: reviewed exclusions by study id (see
            :func:`~workflow_scripts.study.build.build_study`); studies not named have none.
        log: where one line per finished or reused study goes (and why a study built before
            is rebuilt); each study built also writes its own log
            (:meth:`~workflow_scripts.layout.Layout.study_log`).

    A study's input problems never raise (they are rows of its record); anything that does
    raise (or a Ctrl-C, KeyboardInterrupt) fails the batch once the studies in hand are done,
    after which a rerun reuses the studies finished before and builds the others, to the
    same bytes as a whole build.
    """
    exclusions = exclusions or {}
    jobs = [
        (StudyLink(pid, oid, None), layout, options, exclusions.get(pid, []))
        for pid, oid in studies
    ]
    start = time.perf_counter()
    kinds = tuple(options["contours"])
    follow = bool(options.get("follow_symlinks", FOLLOW_SYMLINKS))
    rebuild = []
    for job in jobs:
        link, _, _, decisions = job
        key = build_key(link, options, decisions)
        why = reuse_study(layout, link, key, kinds, follow)
        if why is None:
            print(f"{time.perf_counter() - start:8.2f} s  {link.patient_id}: reused", file=log)
        else:
            if why != NOT_BUILT:
                print(f"{'':10}  {link.patient_id}: rebuilt: {why}", file=log)
            rebuild.append((*job, key))
    if rebuild:
        # before the pool forks: its workers inherit the build's imports
        import workflow_scripts.study.build  # noqa: F401
    if workers <= 1 or len(rebuild) <= 1:
        done = map(_build_one, rebuild)
        _log_progress(done, log, start)
    else:
        pool = ProcessPoolExecutor(min(workers, len(rebuild)), mp_context=_context())
        try:
            with workers_ignore_interrupts():  # the workers start as the studies are submitted
                done = pool.map(_build_one, rebuild)
            _log_progress(done, log, start)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    ids = [link.patient_id for link, *_ in jobs]
    write_batch_tables(layout, batch, ids)
    record = {"batch": batch, "studies": ids}
    write_bytes_atomic(record_path, json.dumps(record, indent=1).encode())
    return ids


def _build_one(job: tuple[StudyLink, Layout, dict, list, str]) -> tuple[str, dict]:
    from workflow_scripts.study.build import build_study
    from workflow_scripts.study.options import BuildOptions

    link, layout, options, exclusions, key = job
    record = build_study(
        link,
        layout,
        BuildOptions.from_config(options),
        layout.study_log(link.patient_id),
        exclusions,
    )
    write_stamp(layout, link, key)  # after the record: a stamp always describes a finished build
    return link.patient_id, record["counts"]


def _log_progress(done: Iterable[tuple[str, dict]], log: TextIO, start: float) -> None:
    for study, counts in done:
        print(f"{time.perf_counter() - start:8.2f} s  {study}: {counts}", file=log, flush=True)


def _context() -> multiprocessing.context.BaseContext:
    # fork where it is safe and the platform's default (Linux); spawn elsewhere (macOS).
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method)
