"""Writing the files the loader's commands make (predictions, exports) so that a reader never
sees half of one."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_file_atomic"]


def write_file_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` through a temporary file beside it,
    renamed over ``path`` when complete; the temporary file is removed if writing fails. The
    mode is 0666 less the umask, as for any file the user creates."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
