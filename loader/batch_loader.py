"""``BatchLoader``: batches of numpy arrays (images, then the chosen targets) from a built
dataset, reshuffled every epoch: its options, its cursor over (epoch, batch) and the passes that
move it.

The rest lives beside it: the selection of samples in ``loader.index``, the order of an epoch in
``loader.sampler``, making a batch's arrays in ``loader.batch_reader`` (targets in
``loader.targets``), reading ahead in ``loader.prefetch``, the saved state in ``loader.state``.
This module is longer than 300 lines because of the class docstring, the loader's reference for
its users (about 110 lines); the code is under 260.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from loader.batch_reader import Batch, BatchReader
from loader.index import DatasetIndex, Verify, counted
from loader.prefetch import Prefetcher
from loader.sampler import EpochSampler
from loader.state import fingerprint, restored_position, saved_state
from loader.targets import needs_omask, parse_targets

__all__ = ["BatchLoader"]


class BatchLoader:
    """Batches of ``(images, *targets)`` from a built dataset version, reshuffled every epoch.

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
        split: serve only the samples of this split (``"train"``, ``"val"``, ``"test"``) or of
            these splits (``["train", "val"]``); None, the default, serves every split.
        studies: serve only the samples of these study ids (``["SCD0000101"]``); None: all. An id
            the index does not have is refused, naming it.
        exclude_flags: leave out the samples whose ``flags`` (problem codes the workflow attached
            to the sample, e.g. ``"mask_area_outlier"``) list any of these codes. A code that
            occurs in no sample of the version only warns (the version may simply have none).
        targets: what each batch carries after the images: ``"mask"`` (default), ``"omask"``,
            ``"labels"``, or a sequence of them (``("mask", "omask")``), in that order; see
            ``loader.targets``. With ``"omask"`` or ``"labels"`` only the selected samples that
            have an o-contour are served (``has_omask`` in index.parquet).
        with_rows: append to each batch an int64 array ``(B,)`` of the samples' row numbers in
            index.parquet, exact under shuffling, shards, resume, prefetch and cache. Default
            False.
        dtype: dtype of the image batches. Default float32. Must hold the stored values
            exactly (int16 images can be served as int16, int32, float32 or float64, not as uint8
            or float16); float images may also be narrowed to another float type (float16).
        augment: apply a random flip / 90-degree rotation to each sample, the image and every
            target alike, drawn from the sample's own random stream (``loader.augment``).
            Default False. With ``cache``, the cache keeps each sample in the 4 orientations the
            transforms use (2 for non-square slices), so that augmented epochs run at ~0.75x the
            speed of plain cached ones instead of 0.15x: 4x the memory (see ``cache``).
        prefetch: batches read ahead by a background thread while the caller works on the current
            one; 0 reads in the caller's thread. Default 2.
        cache: keep every sample (image and targets) in RAM after its first read, so that later
            epochs do not touch the disk. Refused with :class:`~loader.cache.CacheTooLargeError`
            when the selection needs more than 80% of MemAvailable. With ``augment``, the extra
            orientations are kept only if they fit too; if not, one is kept (same batches,
            augmented epochs ~4x slower) with a warning. Default False.
        verify: check of the dataset against its manifest when opening it: ``"fast"`` (default;
            every file present with its size), ``"full"`` (also sha256), ``"none"``. Ignored
            when ``dataset`` is an open DatasetIndex.

    Yields:
        ``images`` ``(B, H, W)`` of ``dtype``, then one array ``(B, H, W)`` per target
        (``mask``/``omask`` bool, ``labels`` uint8: 0 background, 1 blood pool, 2 myocardium),
        then, with ``with_rows``, the rows ``(B,)`` int64: fresh arrays the caller owns. ``B`` is
        ``batch_size`` except for a short last batch when ``drop_last=False``.

    Raises:
        DatasetNotFinishedError, DatasetVerificationError: when opening (see DatasetIndex).
        DatasetIndexError: the selected samples have more than one slice shape (the message lists
            them), the index is malformed, or lacks a column an option needs.
        ValueError: a selection that is empty or names what the index does not have (see
            :meth:`DatasetIndex.rows`), or an option value refused.
        SampleFileError: a sample file is missing, corrupt or disagrees with the index (e.g. no
            ``omask`` where the index says there is one); the message names the file.

    Notes:
        - Shards: each epoch's order is split into ``world_size`` interleaved shards with equal
          sample counts, so every rank has ``len(loader)`` batches. With ``drop_last=False`` the
          order is padded by repeating it from its start (as ``DistributedSampler`` does): when
          ``world_size`` does not divide the sample count, up to ``world_size - 1`` samples are
          served twice per epoch, on different ranks. With ``drop_last=True`` the last
          ``N mod (world_size * batch_size)`` samples of the epoch's order are left out, so all
          batches are full. With one rank and ``drop_last=False``, every sample exactly once.
        - Sample indices (``sample_indices``, ``with_rows``, ``peek``, augmentation streams) are
          row numbers of ``index.parquet``, whatever the selection.
        - Only one pass may be active at a time: starting a new one, ``set_epoch`` or
          ``load_state_dict`` ends the previous iterator (it raises RuntimeError if used again).
        - Prefetching uses one thread (``loader.prefetch``). Once every sample is cached, batches
          are gathered in the caller's thread (a gather is faster than handing a batch between
          threads).
        - Reads only the files named in ``index.parquet``, never unpickles.

    Example:
        >>> batches = BatchLoader("results/1.0.0", batch_size=8, seed=0, split="train")
        >>> for epoch in range(10):  # doctest: +SKIP
        ...     for images, masks in batches:
        ...         ...  # images: (8, 256, 256) float32; masks: (8, 256, 256) bool
        >>> labelled = BatchLoader("results/1.0.0", batch_size=8, targets="labels")
        >>> images, labels = next(iter(labelled))  # doctest: +SKIP
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
        split: str | Sequence[str] | None = None,
        studies: str | Iterable[str] | None = None,
        exclude_flags: str | Iterable[str] | None = None,
        targets: str | Sequence[str] = "mask",
        with_rows: bool = False,
        dtype: Any = np.float32,
        augment: bool = False,
        prefetch: int = 2,
        cache: bool = False,
        verify: Verify = "fast",
    ):
        index = dataset if isinstance(dataset, DatasetIndex) else DatasetIndex(dataset, verify)
        self.index = index
        self.targets: tuple[str, ...] = parse_targets(targets)
        selected = index.rows(split, studies=studies, exclude_flags=exclude_flags)
        self.num_selected = len(selected)
        #: Row numbers in index.parquet of the samples served, by position.
        self.rows: np.ndarray = (
            index.rows_with_omask(selected) if needs_omask(self.targets) else selected
        )
        self.sampler = EpochSampler(
            num_samples=len(self.rows),
            batch_size=batch_size,
            shuffle=bool(shuffle),
            seed=seed,
            drop_last=bool(drop_last),
            rank=rank,
            world_size=world_size,
        )
        self.prefetch = operator.index(prefetch)
        if self.prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {self.prefetch}")
        self._reader = BatchReader(
            index,
            self.rows,
            batch_size=self.sampler.batch_size,
            targets=self.targets,
            with_rows=bool(with_rows),
            dtype=dtype,
            augment=bool(augment),
            seed=self.sampler.seed,
            cache=cache,
            # The batch the caller holds, the queued ones and the one being made.
            pool_capacity=self.prefetch + 3,
        )
        self._fingerprint = fingerprint(
            index, self.rows, self.sampler, split, studies, exclude_flags, self.targets
        )
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
        """Samples served per epoch, before sharding: the selection's, less those without an
        o-contour when a target needs one (``num_selected`` counts them all)."""
        return len(self.rows)

    @property
    def epoch(self) -> int:
        """The epoch the next batch comes from."""
        return self._epoch

    @property
    def cached(self) -> bool:
        """Whether every sample is in the in-memory cache (always False without ``cache``)."""
        return self._reader.cached

    @property
    def with_rows(self) -> bool:
        """Whether each batch ends with the samples' row numbers."""
        return self._reader.with_rows

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width) of every slice served, in pixels."""
        return self._reader.image_shape

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the image batches."""
        return self._reader.dtype

    def __repr__(self) -> str:
        fp = self._fingerprint
        served = f"samples={fp['samples']}"
        if self.num_selected != fp["samples"]:
            left_out = self.num_selected - fp["samples"]
            served += (
                f" (of {self.num_selected} selected; {counted(left_out, 'sample')} without an "
                "o-contour left out)"
            )
        selection = "".join(
            f", {key}={fp[key]!r}" for key in ("studies", "exclude_flags") if fp[key] is not None
        )
        targets = self.targets[0] if len(self.targets) == 1 else self.targets
        return (
            f"BatchLoader({str(self.index.root)!r}, split={fp['split']!r}{selection}, "
            f"targets={targets!r}, {served}, batch_size={fp['batch_size']}, "
            f"shuffle={fp['shuffle']}, seed={fp['seed']}, drop_last={fp['drop_last']}, "
            f"rank={fp['rank']}, world_size={fp['world_size']})"
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
        yet served, in the same order. The fingerprint holds the dataset version, the selection
        (split, studies, exclude_flags, and a digest of the samples served), the targets and the
        order settings.
        """
        return saved_state(self._epoch, self._batches_served, self._fingerprint)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a cursor saved by :meth:`state_dict` (ends an active pass).

        Raises ValueError when the state comes from a loader with a different dataset,
        selection, targets or order settings (naming the differences), or is malformed.
        """
        epoch, served = restored_position(state, self._fingerprint, len(self))
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
        return self._reader.load(epoch, batches[number])

    def iter_batches(self, epoch: int, numbers: Iterable[int] | None = None) -> Iterator[Batch]:
        """Batches ``numbers`` (default: all, in order) of ``epoch``, read now and prefetched as
        configured; the cursor does not move.

        For readers that split an epoch between them, e.g. the worker processes of a PyTorch
        ``DataLoader`` (``loader.adapters``): worker ``w`` of ``W`` reads
        ``range(w, len(loader), W)``.
        """
        batches = self._batches(epoch)
        numbers = range(len(batches)) if numbers is None else list(numbers)
        for number in numbers:
            if not 0 <= number < len(batches):
                raise IndexError(f"batch {number} out of range: {len(batches)} batches per epoch")
        source = self._read_ahead(epoch, ((number, batches[number]) for number in numbers))
        try:
            for _, batch in source:
                yield batch
        finally:
            _close(source)

    def _serve(self, epochs: int | None) -> Iterator[Batch]:
        self._generation += 1
        return self._consume(self._generation, self._epoch, self._batches_served, epochs)

    def _consume(
        self, generation: int, epoch: int, first: int, epochs: int | None
    ) -> Iterator[Batch]:
        count = len(self)
        passes = 0
        while epochs is None or passes < epochs:
            batches = self._batches(epoch)
            plan = ((number, batches[number]) for number in range(first, len(batches)))
            source = self._read_ahead(epoch, plan)
            try:
                for number, batch in source:
                    if self._generation != generation:
                        raise RuntimeError(
                            "this BatchLoader iterator was ended by a newer pass, set_epoch or "
                            "load_state_dict; start a new pass with iter(loader)"
                        )
                    if number + 1 == count:
                        self._epoch, self._batches_served = epoch + 1, 0
                    else:
                        self._batches_served = number + 1
                    yield batch
            finally:
                _close(source)
            epoch, first, passes = epoch + 1, 0, passes + 1

    def _read_ahead(
        self, epoch: int, plan: Iterator[tuple[int, np.ndarray]]
    ) -> Iterable[tuple[int, Batch]]:
        """``(number, batch)`` for each ``(number, positions)`` of ``plan``, prefetched if on."""
        if self.prefetch == 0 or self.cached:
            return ((number, self._reader.load(epoch, positions)) for number, positions in plan)
        return Prefetcher(
            lambda positions: self._reader.load(epoch, positions), plan, self.prefetch
        )

    def _batches(self, epoch: int) -> list[np.ndarray]:
        memo = self._memo
        if memo is not None and memo[0] == epoch:
            return memo[1]
        batches = self.sampler.batches(epoch)
        self._memo = (epoch, batches)
        return batches


def _close(source: Iterable) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        close()
