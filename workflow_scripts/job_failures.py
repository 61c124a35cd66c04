"""How a job (and a run) ends when it cannot finish: one plain message instead of a traceback.

Each rule's script runs its work inside :func:`job_failures`. The endings a user can meet and
fix are said plainly, in the job's log and, where the user has to act, on the console (the job's
own standard error, which Snakemake passes through):

- a refusal to finish the version (:class:`~workflow_scripts.dataset.stale_records.
  StaleRecordsError`): its message, which names the studies and says how to rebuild them;
- a full disk (``ENOSPC``, or ``EDQUOT`` for a quota): the folder that is full, how much is
  free, the file being written when known, and that the same command finishes the version once
  space is freed (writes are atomic, so nothing half-written is left to be taken for done);
- an interruption (Ctrl-C: SIGINT reaches every process of the run): one line in the log and
  exit status 130, nothing on the console. The run says it once, from the Snakefile's
  ``onerror`` (:func:`note_interrupts`, :func:`interrupted_message`). Worker processes never
  see the signal (:func:`workers_ignore_interrupts`): they finish the study in hand, whose
  files are written atomically, and the job stops without starting another.

Anything else is unexpected: its traceback goes to the log as before, and Snakemake names the
log. The status is 1 for a refusal and a full disk.
"""

from __future__ import annotations

import errno
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from workflow_scripts.dataset.stale_records import StaleRecordsError

__all__ = [
    "INTERRUPTED",
    "disk_full_message",
    "interrupted_message",
    "job_failures",
    "note_interrupts",
    "workers_ignore_interrupts",
]

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
#: The exit status of a job stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
INTERRUPTED = 128 + signal.SIGINT


@contextmanager
def job_failures(step: str, out_dir: str | Path) -> Iterator[None]:
    """Run a job's work, turning the expected failures into one message and an exit status
    (1, or :data:`INTERRUPTED`).

    ``step``: the rule's name, which starts each message; ``out_dir``: the build's out_dir,
    where everything the job writes goes.
    """
    try:
        yield
    except KeyboardInterrupt:
        _say(f"{step}: interrupted; what was completed is kept for the next run", console=False)
        raise SystemExit(INTERRUPTED) from None
    except StaleRecordsError as error:
        _say(f"{step}: {error}", console=True)
        raise SystemExit(1) from None
    except OSError as error:
        if error.errno not in _DISK_FULL:
            raise
        _say(disk_full_message(step, error, out_dir), console=True)
        raise SystemExit(1) from None


def disk_full_message(step: str, error: OSError, out_dir: str | Path) -> str:
    """What a job says when the disk holding ``out_dir`` is full (or its quota used up)."""
    folder = Path(out_dir).resolve()
    writing = f" while writing {error.filename}" if error.filename else ""
    return (
        f"{step}: {error.strerror or 'no space left on device'}: the disk holding {folder} is "
        f"full ({_free(folder)} free){writing}. The version has no manifest, so it is not "
        "finished and nothing in it is taken for done. Free some space and run the same "
        "command again: it keeps what was completed and finishes the same dataset."
    )


def _free(folder: Path) -> str:
    for candidate in (folder, *folder.parents):
        try:
            free = shutil.disk_usage(candidate).free
        except OSError:
            continue
        return f"{free / 1e6:.1f} MB"
    return "unknown space"


def _say(message: str, console: bool) -> None:
    """Write ``message`` to the job's log (the script's ``sys.stderr``) and, with ``console``,
    to the process's own standard error. A log that cannot take it (a full disk) is closed and
    left as it is, so that no second error follows at exit."""
    log = sys.stderr
    try:
        print(message, file=log, flush=True)
    except OSError:
        sys.stderr = sys.__stderr__
        with suppress(OSError):
            log.close()
    if console and sys.__stderr__ is not None and log is not sys.__stderr__:
        print(message, file=sys.__stderr__, flush=True)


@contextmanager
def workers_ignore_interrupts() -> Iterator[None]:
    """Start worker processes inside this block, and they ignore SIGINT for good, while this
    process still gets a Ctrl-C.

    A Ctrl-C goes to every process of the terminal's process group, pool workers included,
    each of which would print its own KeyboardInterrupt traceback. Here SIGINT is ignored while
    the workers start (they inherit that, through fork and through spawn's exec alike) and
    blocked meanwhile, so that one arriving in between is held, not lost, and reaches this
    process as soon as the block ends. Does nothing outside the main thread (where signals
    cannot be handled anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def note_interrupts() -> list[int]:
    """Remember Ctrl-Cs (SIGINT) of this process in the returned list, then handle them as
    before (Snakemake's KeyboardInterrupt): its ``onerror`` can then tell an interrupted run
    from a failed one. Nothing changes where SIGINT is ignored or not Python's to handle."""
    noted: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        return noted

    def note(signum, frame):
        noted.append(signum)
        previous(signum, frame)

    signal.signal(signal.SIGINT, note)
    return noted


def interrupted_message(version: str, out_dir: str | Path) -> str:
    """The one line an interrupted run ends with."""
    return (
        f"Interrupted: version {version!r} in {out_dir} is not finished (it has no manifest); "
        "run the same command again to finish it, keeping what was completed."
    )
