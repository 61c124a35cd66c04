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
transformed sample is then one row copy. Without the cache, a sample read from its file is
transformed by OpenCV (:func:`transformed_copy`): its transpose, flips and rotations copy in
blocks that stay in the CPU cache, 3 to 5 times faster than numpy's pixel-by-pixel strided copy
(numpy has no blocked transpose), and that is what makes augmented uncached epochs cheap.
"""

from __future__ import annotations

import numpy as np

from loader.sampler import STREAM_AUGMENT, splitmix64

__all__ = [
    "apply_transform",
    "orientation_view",
    "orientations_needed",
    "split_code",
    "transform_codes",
    "transformed_copy",
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
# code -> the OpenCV calls that make it, in order: ("rotate", flag name), ("flip", flip_code) or
# ("transpose",). np.rot90(a)[:, ::-1] == a.T[::-1, ::-1] (code 5) and
# np.rot90(a, 3)[:, ::-1] == a.T (code 7).
_OPENCV_STEPS = (
    (),
    (("rotate", "ROTATE_90_COUNTERCLOCKWISE"),),
    (("rotate", "ROTATE_180"),),
    (("rotate", "ROTATE_90_CLOCKWISE"),),
    (("flip", 1),),
    (("transpose",), ("flip", -1)),
    (("flip", 0),),
    (("transpose",),),
)
# The dtypes OpenCV's transpose, flip and rotate take as they are (bool goes through uint8).
_OPENCV_DTYPES = frozenset(
    np.dtype(name) for name in ("uint8", "int8", "uint16", "int16", "int32", "float32", "float64")
)


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


def transformed_copy(array: np.ndarray, code: int) -> np.ndarray:
    """``array`` (2D) transformed by ``code``, as a new C-contiguous array of the same dtype:
    equal to :func:`apply_transform`'s view, made by OpenCV where it takes the dtype (bool by its
    bytes), else by numpy. Code 0 returns ``array`` itself."""
    steps = _OPENCV_STEPS[code]
    if not steps:
        return array
    as_bytes = array.dtype == np.bool_
    work = array.view(np.uint8) if as_bytes else array
    if work.dtype not in _OPENCV_DTYPES:
        return np.ascontiguousarray(transformed_view(array, code))
    # Imported here, not with the loader: only augmented reads from files need it, and OpenCV's
    # native threads can abort a process at exit ("terminate called without an active exception")
    # that never used it.
    import cv2

    for step in steps:
        if step[0] == "rotate":
            work = cv2.rotate(work, getattr(cv2, step[1]))
        elif step[0] == "flip":
            work = cv2.flip(work, step[1])
        else:
            work = cv2.transpose(work)
    return work.view(np.bool_) if as_bytes else work
