"""The opt-in in-memory cache of a loader's samples, and the memory check that guards it."""

from __future__ import annotations

import os
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
    """Images and masks of ``num_samples`` same-shaped samples, filled as they are first read.

    The images are kept in their stored dtype (int16 for the Sunnybrook data: half the memory of
    float32) and converted when a batch is gathered. The arrays are allocated up front with
    ``np.empty``; the operating system commits their pages only as samples are written, so the
    process grows during the first epoch and stays flat after it.

    Args:
        num_samples: number of slots (the loader's samples, by position).
        shape: (height, width) of every sample.
        image_dtype: dtype the images are kept in.
        memory_limit: bytes the cache may take; None means ``MEMORY_FRACTION`` of
            :func:`available_memory`.

    Raises:
        CacheTooLargeError: the cache would need more than the limit; the message gives both.
    """

    def __init__(
        self,
        num_samples: int,
        shape: tuple[int, int],
        image_dtype: np.dtype,
        memory_limit: int | None = None,
    ):
        image_dtype = np.dtype(image_dtype)
        height, width = shape
        needed = num_samples * height * width * (image_dtype.itemsize + 1)
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
            raise CacheTooLargeError(
                f"cache=True needs {format_bytes(needed)} ({num_samples} samples of "
                f"{height}x{width}: {image_dtype} image + bool mask) but only "
                f"{format_bytes(memory_limit)} may be used ({source}). Use cache=False, a "
                "split, or a larger machine."
            )
        self.nbytes = needed
        self.images = np.empty((num_samples, height, width), dtype=image_dtype)
        self.masks = np.empty((num_samples, height, width), dtype=bool)
        self.filled = np.zeros(num_samples, dtype=bool)
        self._complete = False

    def __len__(self) -> int:
        return len(self.filled)

    def put(self, position: int, image: np.ndarray, mask: np.ndarray) -> None:
        """Store a sample (copied); the slot counts as filled only after both arrays are in."""
        self.images[position] = image
        self.masks[position] = mask
        self.filled[position] = True

    @property
    def complete(self) -> bool:
        """Whether every slot is filled (checked once per call until it becomes true)."""
        if not self._complete:
            self._complete = bool(self.filled.all())
        return self._complete
