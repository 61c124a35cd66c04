"""Writing outputs so that an interrupted run leaves nothing that looks complete, encoding
tables reproducibly, and listing folders.

Files are written to a temporary name in the destination folder and renamed into place; folders
are filled under a temporary name and renamed as a whole. A rename within one file system is
atomic, so a reader (or a rerun) sees either the old file or the complete new one.

Policy, chosen once for every writer of the workflow: no ``fsync`` per file. Atomic renames
already protect against what interrupts builds in practice (Ctrl-C, a killed job, a full disk);
only a power loss or kernel crash can leave a renamed file without its content, and fsyncing
each of the ~20 files a slice produces would multiply the build's I/O wait for that case alone.
The version's one commit point, ``manifest.json``, is written after :func:`flush_to_disk`, so a
manifest that survives a power loss never certifies files that did not.

Temporary files and folders are created with the permissions the umask gives (0644 and 0755
under umask 022), like any other file, so the renamed result is readable by whoever may read
the folder: ``tempfile`` would create them private (0600/0700).
"""

from __future__ import annotations

import errno
import io
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "flush_to_disk",
    "folder_names",
    "parquet_bytes",
    "read_user_text",
    "remove_stale_staging",
    "staged_directory",
    "write_bytes_atomic",
]

_STAGING_MARK = ".staging-"


def _temporary_name(final: Path, prefix: str) -> Path:
    return final.parent / f"{prefix}{final.name}.{os.getpid()}.{secrets.token_hex(4)}"


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    Creates the parent folders. The file's mode is 0666 less the umask. An OSError (a full
    disk, say) names ``path``, which a failed ``write`` alone would not.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path, ".")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.filename is None:
            error.filename = str(path)
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def staged_directory(final: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``final``; on success it replaces ``final``.

    Replacing is two steps, removing the old ``final`` and renaming the new folder into place:
    a run killed between them leaves ``final`` absent (never half-written), which a rerun
    rebuilds. On an exception the temporary folder is removed and ``final`` is left as it was.
    A run killed inside the block leaves a ``.staging-`` folder, which
    :func:`remove_stale_staging` clears on the next run.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = _temporary_name(final, _STAGING_MARK)
    staging.mkdir()  # mode 0777 less the umask, unlike tempfile.mkdtemp's 0700
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_stale_staging(parent: str | Path, name: str) -> None:
    """Delete staging folders left in ``parent`` for ``name`` by an interrupted run.

    Only ``name``'s own: names may hold dots, and the staging folder of another name that
    starts with ``name.`` (study ``A.b`` beside ``A``) may be in use by a running job.
    """
    own = re.compile(re.escape(f"{_STAGING_MARK}{name}.") + r"[0-9]+\.[0-9a-f]{8}")
    for stale in Path(parent).glob(f"{_STAGING_MARK}{name}.*"):
        if own.fullmatch(stale.name):
            shutil.rmtree(stale, ignore_errors=True)


def flush_to_disk() -> None:
    """Ask the kernel to write every file written so far to disk (``sync``); see the module
    docstring for why this runs once, before the manifest, rather than per file."""
    os.sync()


def folder_names(folder: str | Path) -> list[str]:
    """Names of the entries of ``folder`` (hidden ones included), sorted; [] when it is absent
    or not a folder, also when a symbolic link on its way leads nowhere or into a loop."""
    try:
        return sorted(entry.name for entry in os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as error:
        if error.errno == errno.ELOOP:
            return []
        raise


def parquet_bytes(table: pa.Table) -> bytes:
    """The Parquet encoding of ``table``; the same table always gives the same bytes."""
    import pyarrow.parquet as pq  # deferred: only the steps that write tables need pyarrow

    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def read_user_text(path: str | Path, what: str, error: type[Exception]) -> str:
    """The text of a UTF-8 file a person wrote (link.csv, an exclusions file); a byte-order
    mark is dropped. Raises ``error`` naming the file and the reason when it cannot be read or
    is not UTF-8 (``what`` says what the file is for)."""
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
