"""One build at a time per dataset version, whichever working folder it runs from.

Snakemake's own lock lives in the working folder's ``.snakemake/``, so two builds of the same
``{out_dir}/{version}`` started from two working folders (two clones, two users) do not see
each other and would write the same files. This lock lives with the version, in
``{out_dir}/work/{version}/build.lock``: a small JSON file naming its holder (host, process id,
user, start time, working folder), created atomically (``O_EXCL``) when the run starts
executing jobs and removed when it ends.

A lock whose holder is gone (a killed build) is recognised when the holder ran on this host:
its process no longer runs, or the process id now belongs to a younger process. Such a lock is
taken over with a note saying so. A lock held from another host cannot be checked from here;
the refusal says how to remove it once that build is known to be gone.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from workflow_scripts.layout import Layout

__all__ = ["LOCK_NAME", "LockHolder", "VersionLockedError", "acquire_version_lock"]

LOCK_NAME = "build.lock"


class VersionLockedError(RuntimeError):
    """Another build of the same version holds its lock."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds a version's lock. ``process_start`` is the process's start time in clock ticks
    since boot (Linux ``/proc/<pid>/stat``), to tell a reused process id apart; None elsewhere."""

    host: str
    pid: int
    user: str
    started: str
    workdir: str
    process_start: int | None = None

    @classmethod
    def this_process(cls) -> LockHolder:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return cls(
            host=socket.gethostname(),
            pid=os.getpid(),
            user=user,
            started=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            workdir=os.getcwd(),
            process_start=_process_start(os.getpid()),
        )

    def describe(self) -> str:
        return (
            f"process {self.pid} on host {self.host} (user {self.user}, started {self.started}, "
            f"working folder {self.workdir})"
        )

    def is_gone(self) -> bool:
        """True when the holder ran on this host and no longer runs; False when it runs or
        cannot be checked from here (another host)."""
        if self.host != socket.gethostname():
            return False
        start = _process_start(self.pid)
        if start is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False  # alive, owned by someone else
            return False
        return self.process_start is not None and start != self.process_start


def _process_start(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot, None if unknown or not running."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 of the whole line


def acquire_version_lock(layout: Layout) -> Path:
    """Take the lock of ``layout``'s version for this process; return the lock file's path.

    The lock is released when the process exits (or by :func:`release_version_lock`). A lock
    left by a build that is gone is taken over, with a note on stderr. Raises
    VersionLockedError naming the holder when another build holds it.
    """
    path = layout.work_dir / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    me = LockHolder.this_process()
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            holder = _read_holder(path)
            if holder is None or not holder.is_gone():
                raise VersionLockedError(_locked_message(layout, path, holder)) from None
            print(
                f"Note: removed the lock of version {layout.version!r} left by a build that no "
                f"longer runs: {holder.describe()}. Its unfinished outputs are redone.",
                file=sys.stderr,
            )
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(me), handle)
        atexit.register(release_version_lock, path, me)
        return path


def release_version_lock(path: Path, holder: LockHolder | None = None) -> None:
    """Remove the lock at ``path`` if it is held by ``holder`` (default: this process)."""
    holder = holder or LockHolder.this_process()
    current = _read_holder(path)
    if current is not None and (current.host, current.pid) == (holder.host, holder.pid):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _read_holder(path: Path) -> LockHolder | None:
    try:
        return LockHolder(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None  # being written this very moment, or damaged


def _locked_message(layout: Layout, path: Path, holder: LockHolder | None) -> str:
    who = holder.describe() if holder else "a build whose lock file cannot be read"
    return (
        f"version {layout.version!r} in {layout.out_dir} is being built by another run: {who}. "
        "Two builds of one version would write the same files; wait for that run to end. "
        f"If it is gone for good (killed on another host, or its machine restarted), delete "
        f"{path} and run again."
    )
