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
written straight into its batch slot by :func:`transform_into`: OpenCV's transpose, flips and
rotations copy in blocks that stay in the CPU cache, 3 to 5 times faster than numpy's
pixel-by-pixel strided copy (numpy has no blocked transpose), in the stored dtype into a reused
one-sample buffer, which is then cast into the slot in one contiguous pass (or into the slot
itself when the dtypes match: masks, labels, ``dtype=int16``).
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
    "transform_into",
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
# dtype -> the dtype OpenCV's transpose, flip and rotate take it as: the dtypes they take as they
# are, and bool by its bytes.
_OPENCV_DTYPES = {
    np.dtype(name): np.dtype(name)
    for name in ("uint8", "int8", "uint16", "int16", "int32", "float32", "float64")
} | {np.dtype(np.bool_): np.dtype(np.uint8)}
_opencv_calls: tuple | None = None  # made on first use (see _load_opencv)


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


def transform_into(
    array: np.ndarray, code: int, out: np.ndarray, scratch: np.ndarray | None = None
) -> np.ndarray:
    """Write ``array`` (2D) transformed by ``code`` into ``out`` and return ``out``: the values
    of :func:`apply_transform`'s view, cast to ``out``'s dtype as ``out[...] = view`` casts.

    Code 0 and the up-down flip (code 6) are one numpy copy (whole rows, in order or reversed).
    The others are made by OpenCV (``cv2.flip``, ``cv2.transpose``, ``cv2.rotate``: blocked
    copies, 3 to 5 times numpy's pixel-by-pixel strided copy), straight into ``out`` when it is
    C-contiguous and of ``array``'s dtype (bool by its bytes), else into ``scratch`` and then
    cast into ``out`` in one contiguous pass: transforming in the stored dtype (int16) and casting
    once is cheaper than the reverse, which moves twice the bytes through the transpose. Dtypes
    OpenCV does not take (e.g. int64) are copied by numpy from :func:`transformed_view`.

    Args:
        array: the 2D sample array (any dtype; read-only is fine).
        code: the transform code, 0..7.
        out: the destination, of the transformed shape (the shape reversed for the codes with a
            quarter turn), e.g. a slot of a batch array.
        scratch: a C-contiguous array of ``array``'s dtype and ``out``'s shape to transform in
            when ``out`` cannot take OpenCV's result directly; one reused for a whole batch
            stays in the CPU cache. Allocated when None or unfit.

    Raises:
        ValueError: ``out`` does not have the transformed shape.
    """
    # (This runs 2 to 4 times per sample: checks are a few attribute reads, the OpenCV call is
    # looked up in a table, positional arguments only: cv2 parses a keyword ``dst=`` in ~0.7 us.)
    shape = array.shape[::-1] if code & 1 else array.shape  # odd codes have a quarter turn
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}; code {code} turns {array.shape} into {shape}")
    if code == 0:
        out[...] = array
        return out
    if code == 6:  # up-down flip: whole rows in reverse order
        out[...] = array[::-1]
        return out
    dtype = array.dtype
    opencv_dtype = _OPENCV_DTYPES.get(dtype)
    if opencv_dtype is None:
        out[...] = transformed_view(array, code)
        return out
    direct = out.dtype == dtype and out.flags.c_contiguous
    if direct:
        buffer = out
    elif (
        scratch is None
        or scratch.dtype != dtype
        or scratch.shape != shape
        or not scratch.flags.c_contiguous
    ):
        buffer = np.empty(shape, dtype=dtype)
    else:
        buffer = scratch
    source, target = array, buffer
    if opencv_dtype is not dtype:  # bool, by its bytes
        source, target = array.view(opencv_dtype), buffer.view(opencv_dtype)
    result = (_opencv_calls or _load_opencv())[code](source, target)
    if result is not target:
        # OpenCV allocated its own result instead of writing into target (it does so when the
        # destination does not fit); never seen with the arrays passed here, but exactness comes
        # first.
        target[...] = result
    if not direct:
        out[...] = buffer
    return out


def _load_opencv() -> tuple:
    """Import OpenCV and make :data:`_opencv_calls`: code -> ``call(source, target)`` writing the
    transform of ``source`` into ``target`` (C-contiguous, of the source's dtype and the
    transformed shape) and returning OpenCV's result; one blocked pass (two for code 5, the
    second a flip in place, in the CPU cache). Codes 0 and 6 are numpy's (None).

    Imported on first use, not with the loader: only augmented reads from files need it, and
    OpenCV's native threads can abort a process at exit ("terminate called without an active
    exception") that never used it."""
    global _opencv_calls
    import cv2

    rotate, flip, transpose = cv2.rotate, cv2.flip, cv2.transpose
    counter_clockwise, clockwise = cv2.ROTATE_90_COUNTERCLOCKWISE, cv2.ROTATE_90_CLOCKWISE
    _opencv_calls = (
        None,
        lambda source, target: rotate(source, counter_clockwise, target),  # a.T[::-1]
        lambda source, target: flip(source, -1, target),  # half turn: both flips
        lambda source, target: rotate(source, clockwise, target),  # a.T[:, ::-1]
        lambda source, target: flip(source, 1, target),  # left-right
        lambda source, target: flip(transpose(source, target), -1, target),  # a.T[::-1, ::-1]
        None,
        transpose,  # np.rot90(a, 3)[:, ::-1] == a.T
    )
    return _opencv_calls
