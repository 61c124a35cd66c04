"""The opt-in in-memory cache of a loader's samples (images and targets), and the memory check
that guards it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from loader.augment import orientation_view

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

    With augmentation, each sample is also kept in the other orientations its transforms use
    (``loader.augment.split_code``: 4 for square slices, 2 otherwise), made once when the sample
    is first read: every augmented sample is then served by a copy of whole rows, instead of a
    pixel-by-pixel copy that made augmented epochs 3 to 7 times slower than plain ones. That
    takes ``orientations`` times the memory; when it does not fit, the cache keeps one
    orientation (the same batches, served slower) and warns.

    Args:
        num_samples: number of slots (the loader's samples, by position).
        shape: (height, width) of every sample.
        image_dtype: dtype the images are kept in.
        targets: target name -> dtype, in the order the loader serves them.
        memory_limit: bytes the cache may take; None means ``MEMORY_FRACTION`` of
            :func:`available_memory`.
        orientations: orientations to keep (1, 2 or 4; see above), if they fit.

    Raises:
        CacheTooLargeError: even one orientation would need more than the limit; the message
            gives both and what one sample holds.
    """

    def __init__(
        self,
        num_samples: int,
        shape: tuple[int, int],
        image_dtype: np.dtype,
        targets: Mapping[str, np.dtype],
        memory_limit: int | None = None,
        orientations: int = 1,
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
        if orientations > 1 and memory_limit is not None and needed * orientations > memory_limit:
            warnings.warn(
                f"cache=True with augment=True would keep the samples in {orientations} "
                f"orientations ({format_bytes(needed * orientations)}), more than "
                f"{format_bytes(memory_limit)} ({source}): keeping one ({format_bytes(needed)}); "
                "the batches are the same, augmented epochs about 4 times slower",
                stacklevel=4,
            )
            orientations = 1
        #: Orientations kept (``loader.augment.split_code``): 1 without augmentation.
        self.orientations = orientations
        #: Per kind (the image, then each target): (orientations, num_samples, height, width).
        self.oriented = [
            np.empty((orientations, num_samples, height, width), dtype=dtype) for dtype in dtypes
        ]
        #: The image array, then one array per target: each (num_samples, height, width), the
        #: samples as stored (orientation 0).
        self.arrays = [stored[0] for stored in self.oriented]
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
        """Count slot ``position`` as filled: call after writing all of its arrays (as stored);
        makes its other orientations."""
        for stored in self.oriented:
            sample = stored[:, position]
            if self.orientations > 1:
                sample[1] = orientation_view(sample[0], 1)  # left-right flip
            if self.orientations > 2:
                sample[2] = orientation_view(sample[0], 2)  # transpose
                # the transpose flipped: flipping 2 costs a third of a second transposed copy
                sample[3] = orientation_view(sample[2], 1)
        self.filled[position] = True

    @property
    def complete(self) -> bool:
        """Whether every slot is filled (checked once per call until it becomes true)."""
        if not self._complete:
            self._complete = bool(self.filled.all())
        return self._complete
