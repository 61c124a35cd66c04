"""Random flips and 90-degree rotations, applied alike to an image and each of its targets.

Each sample's transform is drawn from its own counter-based random stream, keyed by
``(seed, epoch, sample)`` where ``sample`` is the row number in ``index.parquet``: the same sample
in the same epoch gets the same transform whatever the batch size, rank, prefetching or thread
that reads it, and a different, independent one in the next epoch.

The transforms are the eight symmetries of a square (the dihedral group D4), coded 0 to 7:
``code % 4`` quarter turns counter-clockwise (``np.rot90``), then, for codes 4 to 7, a left-right
flip. All eight are equally likely. A non-square slice only gets the four that keep its shape
(0 identity, 2 half turn, 4 left-right flip, 6 up-down flip), equally likely.

How a transform is made cheaply (the result is the same array as ``apply_transform``'s): every
code is one of four *orientations* of the slice, read with its rows in order or reversed
(:func:`split_code`). Reversing the order of the rows copies whole rows, as fast as a plain copy;
the orientations that move pixels within rows (a left-right flip) or across them (a transpose)
copy pixel by pixel, 10 to 20 times slower than a row copy with numpy. The in-memory cache
therefore keeps each sample in all the orientations that its codes need (``loader.cache``), and a
transformed sample is then one row copy; without the cache, a sample is written through the
inverse transform straight into its slot of the batch (:func:`inverse_code`).
"""

from __future__ import annotations

import numpy as np

from loader.sampler import STREAM_AUGMENT, splitmix64

__all__ = [
    "apply_transform",
    "inverse_code",
    "orientation_view",
    "orientations_needed",
    "split_code",
    "transform_codes",
    "transformed_view",
]

_SHAPE_KEEPING = np.array([0, 2, 4, 6], dtype=np.int64)

# code -> (orientation, rows reversed); orientation 0 the slice, 1 its left-right flip, 2 its
# transpose, 3 the transpose flipped left-right. E.g. code 1, a quarter turn counter-clockwise,
# is the transpose read bottom row first: np.rot90(a) == a.T[::-1].
_SPLIT = (
    (0, False),
    (2, True),
    (1, True),
    (3, False),
    (1, False),
    (3, True),
    (0, True),
    (2, False),
)
# A rotation by k quarter turns is undone by 4 - k; a reflection undoes itself.
_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)


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


def split_code(code: int) -> tuple[int, bool]:
    """``(orientation, rows_reversed)`` of ``code``: the transform is
    ``orientation_view(array, orientation)``, read from its last row up if ``rows_reversed``.

    Orientation 0 is the slice, 1 its left-right flip, 2 its transpose, 3 the transpose flipped
    left-right. The shape-keeping codes (0, 2, 4, 6) use orientations 0 and 1 only.
    """
    return _SPLIT[code]


def orientations_needed(square: bool) -> int:
    """How many orientations the codes drawn for square (4) or non-square (2) slices use."""
    return 4 if square else 2


def orientation_view(array: np.ndarray, orientation: int) -> np.ndarray:
    """Orientation ``orientation`` (see :func:`split_code`) of a 2D ``array``, as a view."""
    if orientation == 0:
        return array
    if orientation == 1:
        return array[:, ::-1]
    if orientation == 2:
        return array.T
    return array.T[:, ::-1]


def transformed_view(array: np.ndarray, code: int) -> np.ndarray:
    """``array`` (2D) transformed by ``code``, as a view: the same as :func:`apply_transform`,
    by slicing only (``np.rot90`` costs ~10 us of Python per call)."""
    orientation, reversed_rows = _SPLIT[code]
    view = orientation_view(array, orientation)
    return view[::-1] if reversed_rows else view


def inverse_code(code: int) -> int:
    """The code of the transform that undoes ``code``: writing a slice into
    ``transformed_view(out, inverse_code(code))`` leaves ``out`` holding the slice transformed by
    ``code``."""
    return _INVERSE[code]
