"""``BatchLoader``: batches of ``(images, masks)`` numpy arrays from a built dataset."""

from __future__ import annotations

import operator
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from loader.augment import apply_transform, transform_codes
from loader.buffers import ArrayPool
from loader.cache import SampleCache
from loader.index import DatasetIndex, DatasetIndexError, Verify
from loader.sample_file import SampleFileError, read_sample
from loader.sampler import EpochSampler

__all__ = ["STATE_FORMAT", "BatchLoader"]

STATE_FORMAT = 1

Batch = tuple[np.ndarray, np.ndarray]


class BatchLoader:
    """Batches of ``(images, masks)`` from a built dataset version, reshuffled every epoch.

    One pass (``for images, masks in loader``) is one epoch: every sample of this rank's shard
    exactly once, in an order that is a pure function of ``seed`` and the epoch number. After a
    full pass the loader moves on to the next epoch by itself; ``set_epoch(n)`` pins it. The loader
    is a cursor over ``(epoch, batch)``: a pass that is left early (``break``) is resumed by the
    next pass, and ``state_dict()`` / ``load_state_dict()`` carry that cursor to a new process.

    Args:
        dataset: the version folder (``{out_dir}/{version}``), or an open :class:`DatasetIndex`
            (to share one opening between, say, a train and a val loader).
        batch_size: samples per batch (> 0).
        shuffle: a new random order each epoch (default); False serves row order.
        seed: non-negative integer fixing the orders and augmentations. Default 0.
        drop_last: drop the samples that would make a short batch (see Notes). Default False.
        rank: this process's shard, ``0 <= rank < world_size``. Default 0.
        world_size: number of data-parallel processes. Default 1.
        split: serve only the samples of this split (``"train"``, ``"val"``, ``"test"``); None,
            the default, serves every sample.
        dtype: dtype of the image batches. Default float32. Must hold the stored values
            exactly (int16 images can be served as int16, int32, float32 or float64, not as uint8
            or float16); float images may also be narrowed to another float type (float16).
        augment: apply a random flip / 90-degree rotation to each sample, image and mask alike,
            drawn from the sample's own random stream (``loader.augment``). Default False.
        prefetch: batches read ahead by a background thread while the caller works on the current
            one; 0 reads in the caller's thread. Default 2.
        cache: keep every sample in RAM after its first read, so that later epochs do not touch
            the disk. Refused with :class:`~loader.cache.CacheTooLargeError` when the selection
            needs more than 80% of MemAvailable. Default False.
        verify: check of the dataset against its manifest when opening it: ``"fast"`` (default;
            every file present with its size), ``"full"`` (also sha256), ``"none"``. Ignored
            when ``dataset`` is an open DatasetIndex.

    Yields:
        ``images`` of shape ``(B, H, W)`` and ``dtype``, and ``masks`` ``(B, H, W)`` bool: fresh
        arrays the caller owns. ``B`` is ``batch_size`` except for a short last batch when
        ``drop_last=False``.

    Raises:
        DatasetNotFinishedError, DatasetVerificationError: when opening (see DatasetIndex).
        DatasetIndexError: the selected samples have more than one slice shape (the message lists
            them), or the index is malformed.
        SampleFileError: a sample file is missing, corrupt or disagrees with the index; the
            message names the file.

    Notes:
        - Shards: each epoch's order is split into ``world_size`` interleaved shards with equal
          sample counts, so every rank has ``len(loader)`` batches. With ``drop_last=False`` the
          order is padded by repeating it from its start (as ``DistributedSampler`` does): when
          ``world_size`` does not divide the sample count, up to ``world_size - 1`` samples are
          served twice per epoch, on different ranks. With ``drop_last=True`` the last
          ``N mod (world_size * batch_size)`` samples of the epoch's order are left out, so all
          batches are full. With one rank and ``drop_last=False``, every sample exactly once.
        - Sample indices (``sample_indices``, ``peek``, augmentation streams) are row numbers of
          ``index.parquet``, whatever the split.
        - Only one pass may be active at a time: starting a new one, ``set_epoch`` or
          ``load_state_dict`` ends the previous iterator (it raises RuntimeError if used again).
        - Prefetching uses one thread: file reads and array copies release the GIL, so it
          overlaps the caller's training step; more threads were slower on two cores. Once
          every sample is cached, batches are gathered in the caller's thread (a gather is
          faster than handing a batch between threads).
        - Reads only the files named in ``index.parquet``, never unpickles.

    Example:
        >>> batches = BatchLoader("results/1.0.0", batch_size=8, seed=0, split="train")
        >>> for epoch in range(10):  # doctest: +SKIP
        ...     for images, masks in batches:
        ...         ...  # images: (8, 256, 256) float32; masks: (8, 256, 256) bool
    """

    def __init__(
        self,
        dataset: str | Path | DatasetIndex,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        split: str | None = None,
        dtype: Any = np.float32,
        augment: bool = False,
        prefetch: int = 2,
        cache: bool = False,
        verify: Verify = "fast",
    ):
        index = dataset if isinstance(dataset, DatasetIndex) else DatasetIndex(dataset, verify)
        self.index = index
        self.split = split
        #: Row numbers in index.parquet of the samples served, by position.
        self.rows: np.ndarray = index.rows(split)
        self.sampler = EpochSampler(
            num_samples=len(self.rows),
            batch_size=batch_size,
            shuffle=bool(shuffle),
            seed=seed,
            drop_last=bool(drop_last),
            rank=rank,
            world_size=world_size,
        )
        shapes = index.shapes(self.rows)
        if len(shapes) > 1:
            raise DatasetIndexError(_mixed_shapes_message(index, self.rows, split))
        self.image_shape: tuple[int, int] = next(iter(shapes))
        self.dtype = np.dtype(dtype)
        if self.dtype.kind not in "iuf":
            raise ValueError(f"dtype must be an integer or float type, got {self.dtype}")
        stored = sorted(index.dtypes(self.rows))
        for name in stored:
            source = np.dtype(name)
            exact = np.can_cast(source, self.dtype, casting="safe")
            if not exact and not (source.kind == "f" and self.dtype.kind == "f"):
                raise ValueError(
                    f"dtype {self.dtype} cannot hold the stored {name} images exactly; use "
                    "np.float32 (the default) or a wider type"
                )
        self.augment = bool(augment)
        self.prefetch = operator.index(prefetch)
        if self.prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {self.prefetch}")
        dtype_of = {name: np.dtype(name) for name in stored}
        root = str(index.root)
        self._paths = [os.path.join(root, index.npz[row]) for row in self.rows.tolist()]
        self._stored_dtypes = [dtype_of[index.image_dtype[row]] for row in self.rows.tolist()]
        self._cache = (
            SampleCache(len(self.rows), self.image_shape, np.result_type(*stored))
            if cache
            else None
        )
        self._fingerprint = {
            "version": index.version,
            "split": split,
            "samples": len(self.rows),
            "samples_digest": index.digest(self.rows),
            "shuffle": self.sampler.shuffle,
            "seed": self.sampler.seed,
            "batch_size": self.sampler.batch_size,
            "drop_last": self.sampler.drop_last,
            "rank": self.sampler.rank,
            "world_size": self.sampler.world_size,
        }
        # Enough arrays for the batch the caller holds, the queued ones and the one being made.
        capacity = self.prefetch + 3
        batch_shape = (self.sampler.batch_size, *self.image_shape)
        self._image_pool = ArrayPool(batch_shape, self.dtype, capacity)
        self._mask_pool = ArrayPool(batch_shape, np.dtype(bool), capacity)
        self._epoch = 0
        self._batches_served = 0
        self._generation = 0
        self._memo: tuple[int, list[np.ndarray]] | None = None

    # ----------------------------------------------------------------------------- description

    def __len__(self) -> int:
        """Batches per epoch on this rank (the same on every rank)."""
        return len(self.sampler)

    @property
    def num_samples(self) -> int:
        """Samples selected (the split's, or all), before sharding."""
        return len(self.rows)

    @property
    def epoch(self) -> int:
        """The epoch the next batch comes from."""
        return self._epoch

    @property
    def cached(self) -> bool:
        """Whether every sample is in the in-memory cache (always False without ``cache``)."""
        return self._cache is not None and self._cache.complete

    def __repr__(self) -> str:
        fp = self._fingerprint
        return (
            f"BatchLoader({str(self.index.root)!r}, split={fp['split']!r}, "
            f"samples={fp['samples']}, batch_size={fp['batch_size']}, shuffle={fp['shuffle']}, "
            f"seed={fp['seed']}, drop_last={fp['drop_last']}, rank={fp['rank']}, "
            f"world_size={fp['world_size']})"
        )

    def sample_indices(self, epoch: int | None = None) -> list[np.ndarray]:
        """Row numbers (int64) of each batch this rank serves in ``epoch`` (default: current).

        Reads no file; ``python -m loader peek`` prints these.
        """
        epoch = self._epoch if epoch is None else epoch
        return [self.rows[positions] for positions in self._batches(epoch)]

    # -------------------------------------------------------------------------------- position

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass serve ``epoch`` from its first batch (ends an active pass)."""
        epoch = operator.index(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._epoch, self._batches_served = epoch, 0
        self._generation += 1

    def state_dict(self) -> dict[str, Any]:
        """The cursor: the epoch and the batches of it already served, plus a fingerprint.

        Plain JSON types. Taken at any time, including inside the loop body: the batch being
        processed counts as served, so a loader restored from it serves exactly the batches not
        yet served, in the same order.
        """
        return {
            "format": STATE_FORMAT,
            "epoch": self._epoch,
            "batches_served": self._batches_served,
            "fingerprint": dict(self._fingerprint),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a cursor saved by :meth:`state_dict` (ends an active pass).

        Raises ValueError when the state comes from a loader with a different dataset, split or
        order settings (naming the differences), or is malformed.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a BatchLoader state (format {STATE_FORMAT}): {state!r}")
        saved = state.get("fingerprint")
        if saved != self._fingerprint:
            saved = saved if isinstance(saved, dict) else {}
            differences = [
                f"{key}: saved {saved.get(key)!r}, this loader {value!r}"
                for key, value in self._fingerprint.items()
                if saved.get(key) != value
            ]
            raise ValueError(
                "the state was saved by a loader over other samples or with other settings: "
                + "; ".join(differences)
            )
        epoch, served = state.get("epoch"), state.get("batches_served")
        if type(epoch) is not int or epoch < 0:
            raise ValueError(f"state epoch must be an integer >= 0, got {epoch!r}")
        if type(served) is not int or not 0 <= served < len(self):
            raise ValueError(
                f"state batches_served must be an integer in [0, {len(self)}), got {served!r}"
            )
        self._epoch, self._batches_served = epoch, served
        self._generation += 1

    # ------------------------------------------------------------------------------- iteration

    def __iter__(self) -> Iterator[Batch]:
        """The rest of the current epoch (all of it, unless a pass was left or state restored)."""
        return self._serve(epochs=1)

    def repeat(self, epochs: int | None = None) -> Iterator[Batch]:
        """Batches of successive epochs, endlessly (``epochs=None``) or until ``epochs`` ends.

        For Keras-style ``fit(loader.repeat(), steps_per_epoch=len(loader), epochs=E)``. Epochs
        advance, and ``state_dict()`` follows, as with repeated passes.
        """
        if epochs is not None and operator.index(epochs) < 1:
            raise ValueError(f"epochs must be >= 1 or None, got {epochs}")
        return self._serve(epochs)

    def batch(self, number: int, epoch: int | None = None) -> Batch:
        """Batch ``number`` of ``epoch`` (default: current), read now; the cursor does not move.

        Random access for frameworks that ask for batches by number (Keras ``PyDataset``).
        """
        epoch = self._epoch if epoch is None else epoch
        batches = self._batches(epoch)
        if not 0 <= number < len(batches):
            raise IndexError(f"batch {number} out of range: {len(batches)} batches per epoch")
        return self._load(epoch, batches[number])

    def _serve(self, epochs: int | None) -> Iterator[Batch]:
        self._generation += 1
        return self._consume(self._generation, self._epoch, self._batches_served, epochs)

    def _consume(
        self, generation: int, epoch: int, first: int, epochs: int | None
    ) -> Iterator[Batch]:
        count = len(self)
        passes = 0
        while epochs is None or passes < epochs:
            source = self._epoch_batches(epoch, first)
            try:
                for number, images, masks in source:
                    if self._generation != generation:
                        raise RuntimeError(
                            "this BatchLoader iterator was ended by a newer pass, set_epoch or "
                            "load_state_dict; start a new pass with iter(loader)"
                        )
                    if number + 1 == count:
                        self._epoch, self._batches_served = epoch + 1, 0
                    else:
                        self._batches_served = number + 1
                    yield images, masks
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
            epoch, first, passes = epoch + 1, 0, passes + 1

    def _epoch_batches(
        self, epoch: int, first: int
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Batches ``first..`` of ``epoch`` as (number, images, masks), prefetched if enabled."""
        batches = self._batches(epoch)
        plan = ((number, batches[number]) for number in range(first, len(batches)))
        if self.prefetch == 0 or self.cached:
            return ((number, *self._load(epoch, positions)) for number, positions in plan)
        return _Prefetcher(lambda positions: self._load(epoch, positions), plan, self.prefetch)

    def _batches(self, epoch: int) -> list[np.ndarray]:
        memo = self._memo
        if memo is not None and memo[0] == epoch:
            return memo[1]
        batches = self.sampler.batches(epoch)
        self._memo = (epoch, batches)
        return batches

    # --------------------------------------------------------------------------------- reading

    def _load(self, epoch: int, positions: np.ndarray) -> Batch:
        """Read (or gather from the cache) the samples at ``positions`` into batch arrays that
        nothing else references (fresh, or reused from the pools)."""
        count = len(positions)
        height, width = self.image_shape
        if count == self.sampler.batch_size:
            images, masks = self._image_pool.take(), self._mask_pool.take()
        else:
            images = np.empty((count, height, width), dtype=self.dtype)
            masks = np.empty((count, height, width), dtype=bool)
        cache = self._cache
        if (
            cache is not None
            and not self.augment
            and cache.complete
            and cache.images.dtype == self.dtype
        ):
            # Positions come from the sampler and are always in range; mode="clip" only spares
            # numpy's bounds-checking copy through a temporary buffer.
            cache.images.take(positions, 0, images, "clip")
            cache.masks.take(positions, 0, masks, "clip")
            return images, masks
        codes = None
        if self.augment:
            codes = transform_codes(
                self.sampler.seed, epoch, self.rows[positions], square=height == width
            ).tolist()
        for slot, position in enumerate(positions.tolist()):
            if cache is not None and cache.filled[position]:
                image, mask = cache.images[position], cache.masks[position]
            else:
                image, mask = self._read(position)
                if cache is not None:
                    cache.put(position, image, mask)
            if codes is not None:
                image = apply_transform(image, codes[slot])
                mask = apply_transform(mask, codes[slot])
            images[slot] = image
            masks[slot] = mask
        return images, masks

    def _read(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """One sample's image and mask from its file, checked against the index."""
        path = self._paths[position]
        arrays = read_sample(path)
        image, mask = arrays.get("image"), arrays.get("mask")
        if image is None or mask is None:
            raise SampleFileError(
                f"{path}: needs members 'image' and 'mask', has {sorted(arrays) or 'none'}"
            )
        expected = self._stored_dtypes[position]
        if image.shape != self.image_shape or image.dtype != expected:
            height, width = self.image_shape
            raise SampleFileError(
                f"{path}: image is {_shape_text(image.shape)} {image.dtype}, but "
                f"index.parquet says {height}x{width} {expected}"
            )
        if mask.shape != self.image_shape or mask.dtype != np.bool_:
            raise SampleFileError(
                f"{path}: mask is {_shape_text(mask.shape)} {mask.dtype}, expected "
                f"{_shape_text(self.image_shape)} bool like the image"
            )
        return image, mask


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


_END = object()


class _Prefetcher:
    """Runs ``load`` over ``plan`` in one background thread, ``depth`` batches ahead.

    Iterating yields ``(number, images, masks)`` in plan order; an exception in the thread is
    raised in the consumer. ``close()`` stops the thread (called when the pass ends or is left).
    """

    def __init__(
        self,
        load: Callable[[np.ndarray], Batch],
        plan: Iterator[tuple[int, np.ndarray]],
        depth: int,
    ):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(load, plan), name="loader-prefetch", daemon=True
        )
        self._thread.start()

    def _run(self, load: Callable[[np.ndarray], Batch], plan) -> None:
        try:
            for number, positions in plan:
                if self._stop.is_set():
                    return
                self._queue.put((number, *load(positions)))
            self._queue.put(_END)
        except BaseException as error:  # handed to the consumer, raised there
            self._queue.put(_Failure(error))

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting to put
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=30)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape) if shape else "scalar"


def _mixed_shapes_message(index: DatasetIndex, rows: np.ndarray, split: str | None) -> str:
    heights, widths = index.height[rows], index.width[rows]
    parts = []
    for (height, width), count in index.shapes(rows).most_common():
        first = rows[np.flatnonzero((heights == height) & (widths == width))[0]]
        parts.append(f"{height}x{width} ({count} samples, e.g. {index.npz[first]})")
    selection = "the samples" if split is None else f"the samples of split {split!r}"
    return (
        f"{index.root}: {selection} have {len(parts)} different slice shapes and cannot be "
        f"stacked into batches: {'; '.join(parts)}. Resample them to one shape when building "
        "the dataset, or select a split whose slices share a shape."
    )
