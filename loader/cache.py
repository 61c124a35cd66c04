"""The opt-in in-memory cache of a loader's samples (images and targets), and the memory check
that guards it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["CacheTooLargeError", "SampleCache", "available_memory", "format_bytes"]

#: Share of MemAvailable the cache may take; the rest is left to the training process.
MEMORY_FRACTION = 0.8


class CacheTooLargeError(MemoryError):
    """``cache=True`` was asked for a selection that does not fit in the available memory."""


def available_memory(meminfo: str | Path = "/proc/meminfo") -> int | None:
    """Bytes of memory available for new allocations (Linux ``MemAvailable``), None if unknown."""
    try:
        with open(meminfo, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    value, unit = line.split()[1:3]
                    return int(value) * {"kB": 1024, "B": 1}[unit]
    except (OSError, ValueError, KeyError, IndexError):
        pass
    try:  # other POSIX systems: free pages only (a lower bound)
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    raise AssertionError("unreachable")


class SampleCache:
    """Images and targets of ``num_samples`` same-shaped samples, filled as they are first read.

    The images are kept in their stored dtype (int16 for the Sunnybrook data: half the memory of
    float32) and converted when a batch is gathered; each target is kept in its own dtype
    (``mask``/``omask`` bool, ``labels`` uint8, made once when the sample is first read). The
    arrays are allocated up front with ``np.empty``; the operating system commits their pages
    only as samples are written, so the process grows during the first epoch and stays flat
    after it.

    Args:
        num_samples: number of slots (the loader's samples, by position).
        shape: (height, width) of every sample.
        image_dtype: dtype the images are kept in.
        targets: target name -> dtype, in the order the loader serves them.
        memory_limit: bytes the cache may take; None means ``MEMORY_FRACTION`` of
            :func:`available_memory`.

    Raises:
        CacheTooLargeError: the cache would need more than the limit; the message gives both and
            what one sample holds.
    """

    def __init__(
        self,
        num_samples: int,
        shape: tuple[int, int],
        image_dtype: np.dtype,
        targets: Mapping[str, np.dtype],
        memory_limit: int | None = None,
    ):
        dtypes = [np.dtype(image_dtype), *(np.dtype(d) for d in targets.values())]
        height, width = shape
        needed = num_samples * height * width * sum(dtype.itemsize for dtype in dtypes)
        if memory_limit is None:
            available = available_memory()
            memory_limit = None if available is None else int(available * MEMORY_FRACTION)
            source = (
                f"{MEMORY_FRACTION:.0%} of MemAvailable "
                f"({format_bytes(available) if available is not None else 'unknown'})"
            )
        else:
            source = "the given memory limit"
        if memory_limit is not None and needed > memory_limit:
            parts = " + ".join(
                f"{dtype} {name}" for dtype, name in zip(dtypes, ["image", *targets], strict=True)
            )
            raise CacheTooLargeError(
                f"cache=True needs {format_bytes(needed)} ({num_samples} samples of "
                f"{height}x{width}: {parts}) but only {format_bytes(memory_limit)} may be used "
                f"({source}). Use cache=False, a smaller selection, or a larger machine."
            )
        #: The image array, then one array per target: each (num_samples, height, width).
        self.arrays = [np.empty((num_samples, height, width), dtype=dtype) for dtype in dtypes]
        self.filled = np.zeros(num_samples, dtype=bool)
        self._complete = False

    @property
    def image_dtype(self) -> np.dtype:
        """The dtype the images are kept in."""
        return self.arrays[0].dtype

    def sample(self, position: int) -> list[np.ndarray]:
        """The image and targets of slot ``position``: views into the cache, to read a filled
        slot or to write a sample into (then :meth:`mark_filled`)."""
        return [stored[position] for stored in self.arrays]

    def mark_filled(self, position: int) -> None:
        """Count slot ``position`` as filled: call after writing all of its arrays."""
        self.filled[position] = True

    @property
    def complete(self) -> bool:
        """Whether every slot is filled (checked once per call until it becomes true)."""
        if not self._complete:
            self._complete = bool(self.filled.all())
        return self._complete
