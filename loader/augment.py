"""Random flips and 90-degree rotations, applied alike to an image and each of its targets.

Each sample's transform is drawn from its own counter-based random stream, keyed by
``(seed, epoch, sample)`` where ``sample`` is the row number in ``index.parquet``: the same sample
in the same epoch gets the same transform whatever the batch size, rank, prefetching or thread
that reads it, and a different, independent one in the next epoch.

The transforms are the eight symmetries of a square (the dihedral group D4), coded 0 to 7:
``code % 4`` quarter turns counter-clockwise (``np.rot90``), then, for codes 4 to 7, a left-right
flip. All eight are equally likely. A non-square slice only gets the four that keep its shape
(0 identity, 2 half turn, 4 left-right flip, 6 up-down flip), equally likely.
"""

from __future__ import annotations

import numpy as np

from loader.sampler import STREAM_AUGMENT, splitmix64

__all__ = ["apply_transform", "transform_codes"]

_SHAPE_KEEPING = np.array([0, 2, 4, 6], dtype=np.int64)


def transform_codes(seed: int, epoch: int, samples: np.ndarray, square: bool = True) -> np.ndarray:
    """The transform code (0..7, int64) of each sample (row number) in ``epoch``.

    Args:
        seed: the loader's seed.
        epoch: the epoch number.
        samples: row numbers in ``index.parquet``.
        square: whether the slices are square; if not, only shape-keeping codes are drawn.
    """
    draws = splitmix64((STREAM_AUGMENT, seed, epoch), np.asarray(samples, dtype=np.int64))
    # The top bits of SplitMix64's output are its best; 8 and 4 divide 2**64, so no bias.
    if square:
        return (draws >> np.uint64(61)).astype(np.int64)
    return _SHAPE_KEEPING[(draws >> np.uint64(62)).astype(np.int64)]


def apply_transform(array: np.ndarray, code: int) -> np.ndarray:
    """``array`` (2D) transformed by ``code`` (see the module docstring); returns a view."""
    view = np.rot90(array, int(code) % 4)
    return view[:, ::-1] if code >= 4 else view
