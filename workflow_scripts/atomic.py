"""Writing outputs so that an interrupted run leaves nothing that looks complete.

Files are written to a temporary name in the destination folder and renamed into place; folders
are filled under a temporary name and renamed as a whole. A rename within one file system is
atomic, so a reader (or a rerun) sees either the old state or the complete new one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["remove_stale_staging", "staged_directory", "write_bytes_atomic"]

_STAGING_MARK = ".staging-"


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            handle.write(data)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


@contextmanager
def staged_directory(final: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``final``; on success it replaces ``final``.

    On an exception the temporary folder is removed and ``final`` is left as it was. A run
    killed inside the block leaves only a ``.staging-`` folder, which
    :func:`remove_stale_staging` clears on the next run.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f"{_STAGING_MARK}{final.name}."))
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_stale_staging(parent: str | Path, name: str) -> None:
    """Delete staging folders left in ``parent`` for ``name`` by an interrupted run."""
    for stale in Path(parent).glob(f"{_STAGING_MARK}{name}.*"):
        shutil.rmtree(stale, ignore_errors=True)
