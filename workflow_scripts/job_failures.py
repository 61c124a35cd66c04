"""How a job ends when it cannot finish: one plain message instead of a traceback.

Each rule's script runs its work inside :func:`job_failures`. The endings a user can meet and
fix are said plainly, in the job's log and, where the user has to act, on the console (the job's
own standard error, which Snakemake passes through):

- a refusal to finish the version (:class:`~workflow_scripts.dataset.stale_records.
  StaleRecordsError`): its message, which names the studies and says how to rebuild them;
- a full disk (``ENOSPC``, or ``EDQUOT`` for a quota): the folder that is full, how much is
  free, the file being written when known, and that the same command finishes the version once
  space is freed (writes are atomic, so nothing half-written is left to be taken for done).

Anything else is unexpected: its traceback goes to the log as before, and Snakemake names the
log. The status is 1 in both cases above.
"""

from __future__ import annotations

import errno
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from workflow_scripts.dataset.stale_records import StaleRecordsError

__all__ = ["disk_full_message", "job_failures"]

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def job_failures(step: str, out_dir: str | Path) -> Iterator[None]:
    """Run a job's work, turning the expected failures into one message and exit status 1.

    ``step``: the rule's name, which starts each message; ``out_dir``: the build's out_dir,
    where everything the job writes goes.
    """
    try:
        yield
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
