"""Making the arrays of one batch: reading the samples' files (or gathering them from the
cache), applying the augmentation to the image and every target alike, and filling batch arrays
from the reuse pools.

Augmentation is cheap both ways: a cached sample is copied into its batch slot from the cached
orientation its code needs, whole rows in order or reversed (``loader.augment.split_code``), and
a sample read from its file is transformed by OpenCV straight into its slot, or through a reused
one-sample buffer when it is also cast (``loader.augment.transform_into``).

``BatchReader`` knows what a batch holds (image dtype, targets, rows); it does not know which
samples go into which batch or epoch: ``loader.batch_loader`` decides that.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from loader.augment import (
    orientation_view,
    orientations_needed,
    split_code,
    transform_codes,
    transform_into,
)
from loader.buffers import ArrayPool
from loader.cache import SampleCache
from loader.index import DatasetIndex
from loader.index_columns import DatasetIndexError
from loader.sample_file import read_sample
from loader.targets import TARGET_DTYPES, check_sample, write_labels, write_sample

__all__ = ["Batch", "BatchReader"]

Batch = tuple[np.ndarray, ...]


class BatchReader:
    """The batches of the samples at given positions of ``rows``.

    Args:
        index: the open dataset.
        rows: row numbers in index.parquet of the samples, by position (int64).
        batch_size: the size of full batches (short ones are allocated, not pooled).
        targets: target names (``loader.targets``), in serving order.
        with_rows: append the samples' row numbers (int64) to each batch.
        dtype: dtype of the image batches; must hold the stored images exactly (a float may be
            narrowed to another float).
        augment: transform each sample by its code for (seed, epoch, row) (``loader.augment``).
        seed: the seed of the augmentation streams.
        cache: keep the samples in memory after their first read (``loader.cache``).
        pool_capacity: batch arrays kept for reuse per kind (``loader.buffers``).

    Raises:
        DatasetIndexError: the samples have more than one slice shape (naming the shapes).
        ValueError: ``dtype`` is not an integer or float type that holds the stored images.
        CacheTooLargeError: ``cache`` and the samples do not fit in memory.
    """

    def __init__(
        self,
        index: DatasetIndex,
        rows: np.ndarray,
        *,
        batch_size: int,
        targets: Sequence[str],
        with_rows: bool,
        dtype: Any,
        augment: bool,
        seed: int,
        cache: bool,
        pool_capacity: int,
    ):
        shapes = index.shapes(rows)
        if len(shapes) > 1:
            raise DatasetIndexError(_mixed_shapes_message(index, rows))
        self.image_shape: tuple[int, int] = next(iter(shapes))
        self.dtype = np.dtype(dtype)
        if self.dtype.kind not in "iuf":
            raise ValueError(f"dtype must be an integer or float type, got {self.dtype}")
        stored = sorted(index.dtypes(rows))
        for name in stored:
            source = np.dtype(name)
            exact = np.can_cast(source, self.dtype, casting="safe")
            if not exact and not (source.kind == "f" and self.dtype.kind == "f"):
                raise ValueError(
                    f"dtype {self.dtype} cannot hold the stored {name} images exactly; use "
                    "np.float32 (the default) or a wider type"
                )
        self.rows = rows
        self.targets = tuple(targets)
        self.with_rows = with_rows
        self.augment = augment
        self.seed = seed
        dtype_of = {name: np.dtype(name) for name in stored}
        root = str(index.root)
        self._paths = [os.path.join(root, index.npz[row]) for row in rows.tolist()]
        self._stored_dtypes = [dtype_of[index.image_dtype[row]] for row in rows.tolist()]
        target_dtypes = {name: TARGET_DTYPES[name] for name in self.targets}
        height, width = self.image_shape
        self._cache = (
            SampleCache(
                len(rows),
                self.image_shape,
                np.result_type(*stored),
                target_dtypes,
                orientations=orientations_needed(height == width) if augment else 1,
            )
            if cache
            else None
        )
        self._batch_size = batch_size
        self._dtypes = [self.dtype, *target_dtypes.values()]
        batch_shape = (batch_size, *self.image_shape)
        self._pools = [ArrayPool(batch_shape, dtype, pool_capacity) for dtype in self._dtypes]
        self._sample_buffers: dict[np.dtype, ArrayPool] = {}
        self._epoch_codes: tuple[int, np.ndarray] | None = None

    @property
    def cached(self) -> bool:
        """Whether every sample is in the in-memory cache (always False without ``cache``)."""
        return self._cache is not None and self._cache.complete

    def load(self, epoch: int, positions: np.ndarray) -> Batch:
        """The batch of the samples at ``positions`` in ``epoch`` (the epoch keys augmentation):
        images, then each target, then the rows if asked for; arrays nothing else references
        (fresh, or reused from the pools)."""
        count = len(positions)
        if count == self._batch_size:
            outs = [pool.take() for pool in self._pools]
        else:
            outs = [np.empty((count, *self.image_shape), dtype=dtype) for dtype in self._dtypes]
        codes = self._codes(epoch)[positions].tolist() if self.augment else None
        cache = self._cache
        if cache is None and codes is None:
            for slot, position in enumerate(positions.tolist()):
                self._read(position, into=[out[slot] for out in outs])
        elif cache is None:
            # One-sample buffers for the whole batch, held here so that no other thread gets them
            scratch: dict[np.dtype | str, np.ndarray] = {}
            for slot, position in enumerate(positions.tolist()):
                into = [out[slot] for out in outs]
                self._read_transformed(position, into, codes[slot], scratch)
        else:
            for position in positions.tolist():
                if not cache.filled[position]:
                    self._read(position, into=cache.sample(position))
                    cache.mark_filled(position)
            if codes is None:
                self._gather(cache, positions, outs)
            else:
                self._gather_transformed(cache, positions, codes, outs)
        if self.with_rows:
            outs.append(self.rows[positions])
        return tuple(outs)

    def _codes(self, epoch: int) -> np.ndarray:
        """The transform code of every position in ``epoch``, drawn once per epoch: drawing a
        batch's eight codes cost ~40 small numpy calls, a fifth of an augmented cached batch."""
        memo = self._epoch_codes
        if memo is not None and memo[0] == epoch:
            return memo[1]
        height, width = self.image_shape
        codes = transform_codes(self.seed, epoch, self.rows, square=height == width).astype(
            np.uint8
        )
        self._epoch_codes = (epoch, codes)  # one assignment: safe beside the prefetch thread
        return codes

    def _gather(self, cache: SampleCache, positions: np.ndarray, outs: list[np.ndarray]) -> None:
        """Copy the cached samples at ``positions`` into the batch arrays ``outs``."""
        if cache.image_dtype == self.dtype:
            # Positions come from the sampler and are always in range; mode="clip" only spares
            # numpy's bounds-checking copy through a temporary buffer.
            for stored, out in zip(cache.arrays, outs, strict=True):
                stored.take(positions, 0, out, "clip")
            return
        for slot, position in enumerate(positions.tolist()):
            for stored, out in zip(cache.arrays, outs, strict=True):
                out[slot] = stored[position]

    def _gather_transformed(
        self, cache: SampleCache, positions: np.ndarray, codes: list[int], outs: list[np.ndarray]
    ) -> None:
        """Copy the cached samples at ``positions``, each transformed by its code, into the
        batch arrays ``outs``: from the cached orientation the code needs, whole rows in order or
        reversed, when the cache keeps them all (else pixel by pixel from the one it keeps)."""
        plan = [
            (slot, position, *split_code(code))
            for slot, (position, code) in enumerate(zip(positions.tolist(), codes, strict=True))
        ]
        kept = cache.orientations > 1
        for stored, out in zip(cache.oriented, outs, strict=True):
            buffer = None
            for slot, position, orientation, reversed_rows in plan:
                if kept:
                    sample = stored[orientation, position]
                else:
                    sample = orientation_view(stored[0, position], orientation)
                if not reversed_rows:
                    out[slot] = sample
                elif stored.dtype == out.dtype or not kept:
                    out[slot] = sample[::-1]
                else:
                    # numpy casts reversed rows one row at a time (~4x a contiguous cast): copy
                    # them in the stored dtype (row copies, as fast either way) into a buffer
                    # that stays in the CPU cache, then cast it in one contiguous pass.
                    if buffer is None:
                        buffer = self._buffers(stored.dtype).take()
                    buffer[...] = sample[::-1]
                    out[slot] = buffer

    def _buffers(self, dtype: np.dtype, use: str = "cast") -> ArrayPool:
        """The pool of one-sample arrays of ``dtype`` for ``use`` ("cast": the transformed
        sample before its cast, "labels": the labels before their transform)."""
        pool = self._sample_buffers.get((use, dtype))
        if pool is None:
            # Two: the prefetch thread and the caller's thread may both load (first epoch).
            pool = self._sample_buffers[use, dtype] = ArrayPool(self.image_shape, dtype, 2)
        return pool

    def _read(self, position: int, into: list[np.ndarray]) -> None:
        """Read one sample's file, check it against the index, and write its image and targets
        as stored into ``into`` (2D destinations: batch slots, cache slots)."""
        path = self._paths[position]
        arrays = read_sample(path)
        check_sample(arrays, path, self.image_shape, self._stored_dtypes[position], self.targets)
        write_sample(arrays, self.targets, into)

    def _read_transformed(
        self,
        position: int,
        into: list[np.ndarray],
        code: int,
        scratch: dict[np.dtype | str, np.ndarray],
    ) -> None:
        """Read one sample's file, check it, and write its image and targets transformed by
        augmentation ``code`` into the batch slots ``into`` (``loader.augment.transform_into``:
        one pass per array, straight into the slot or through a one-sample buffer of
        ``scratch``, the batch's buffers by use, taken from the pools when first needed).

        The labels are made from the stored mask and omask, then transformed: one transform
        instead of two (the labels of a transformed pair are the transformed labels, pixel by
        pixel)."""
        path = self._paths[position]
        arrays = read_sample(path)
        stored_dtype = self._stored_dtypes[position]
        check_sample(arrays, path, self.image_shape, stored_dtype, self.targets)
        buffer = scratch.get(stored_dtype)  # (keyed by the dtype itself: dtype.str costs 0.3 us)
        if buffer is None and stored_dtype != self.dtype:
            buffer = scratch[stored_dtype] = self._buffers(stored_dtype).take()
        transform_into(arrays["image"], code, into[0], buffer)
        for name, out in zip(self.targets, into[1:], strict=True):
            if name == "labels":
                labels = scratch.get("labels")
                if labels is None:
                    labels = scratch["labels"] = self._buffers(out.dtype, "labels").take()
                write_labels(arrays["mask"], arrays["omask"], labels)
                transform_into(labels, code, out)
            else:
                transform_into(arrays[name], code, out)


def _mixed_shapes_message(index: DatasetIndex, rows: np.ndarray) -> str:
    heights, widths = index.height[rows], index.width[rows]
    parts = []
    for (height, width), count in index.shapes(rows).most_common():
        first = rows[np.flatnonzero((heights == height) & (widths == width))[0]]
        parts.append(f"{height}x{width} ({count} samples, e.g. {index.npz[first]})")
    selection = "the samples" if len(rows) == len(index) else "the selected samples"
    return (
        f"{index.root}: {selection} have {len(parts)} different slice shapes and cannot be "
        f"stacked into batches: {'; '.join(parts)}. Resample them to one shape when building "
        "the dataset, or select a split (or studies) whose slices share a shape."
    )
