"""What each batch carries after its images: the targets, their dtypes, and how a sample's
targets are made from the arrays of its file.

Targets, each an array of the slice's shape ``(H, W)`` per sample:

- ``mask``: bool, the i-contour (the blood pool), as stored in the sample file.
- ``omask``: bool, the o-contour (the outer border of the myocardium), as stored. Only samples
  built with ``contours: [i, o]`` that have an o-contour hold one.
- ``labels``: uint8 classes, 0 background, 1 blood pool, 2 myocardium: 1 where ``mask``, else 2
  where ``omask``, else 0.

Where an i-contour pixel lies outside the o-contour (contours drawn independently by hand do
cross by a pixel or two; the workflow flags larger crossings as ``icontour_outside_ocontour``),
the blood pool wins: the pixel is class 1. Class 1 is then exactly the stored ``mask``, so a
model trained on labels and one trained on masks learn the same blood pool, and
``labels == 1`` can be checked against the mask files. Giving such pixels to the myocardium (2)
or to the background (0) would move a few pixels of the blood pool out of it, silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from loader.sample_file import SampleFileError

__all__ = [
    "TARGET_DTYPES",
    "check_sample",
    "labels_from_masks",
    "needs_omask",
    "parse_targets",
    "write_sample",
]

#: The dtype of each target, by name.
TARGET_DTYPES: dict[str, np.dtype] = {
    "mask": np.dtype(bool),
    "omask": np.dtype(bool),
    "labels": np.dtype(np.uint8),
}


def parse_targets(targets: str | Sequence[str]) -> tuple[str, ...]:
    """The target names of a ``targets`` option: one name, or a sequence of distinct names.

    Raises ValueError naming the unknown or repeated names, TypeError for other types.
    """
    names = (targets,) if isinstance(targets, str) else targets
    try:
        names = tuple(names)
    except TypeError:
        raise TypeError(f"targets must be a name or a sequence of names, got {targets!r}") from None
    if not names:
        raise ValueError("targets is empty: give at least one of 'mask', 'omask', 'labels'")
    unknown = [name for name in names if name not in TARGET_DTYPES]
    if unknown:
        raise ValueError(
            f"unknown target(s) {', '.join(map(repr, unknown))}: targets are "
            f"{', '.join(map(repr, TARGET_DTYPES))}"
        )
    if len(set(names)) < len(names):
        raise ValueError(f"targets {names!r} names a target twice")
    return names


def needs_omask(targets: Sequence[str]) -> bool:
    """Whether serving ``targets`` needs an o-contour (``omask`` or ``labels``)."""
    return "omask" in targets or "labels" in targets


def labels_from_masks(mask: np.ndarray, omask: np.ndarray) -> np.ndarray:
    """uint8 classes (same shape): 1 where ``mask``, else 2 where ``omask``, else 0.

    Args:
        mask: bool, the i-contour (blood pool).
        omask: bool, same shape, the o-contour.

    Example:
        >>> labels_from_masks(np.array([True, False, False, True]),
        ...                   np.array([True, True, False, False])).tolist()
        [1, 2, 0, 1]
    """
    return write_labels(mask, omask, np.empty(mask.shape, dtype=np.uint8))


def write_labels(mask: np.ndarray, omask: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write the labels of ``mask`` and ``omask`` (see :func:`labels_from_masks`) into ``out``
    (uint8, same shape; e.g. a slot of a batch array) and return it."""
    # Arithmetic on the masks' bytes (a bool is one byte, 0 or 1), in place: a masked copy
    # (np.copyto with where=) took 40x as long on real-looking masks, and made labels 6x slower
    # to serve.
    np.greater(omask, mask, out=out.view(np.bool_))  # inside the o-contour, outside the mask
    np.multiply(out, 2, out=out)  # 2: myocardium
    np.bitwise_or(out, mask.view(np.uint8), out=out)  # 1: blood pool (0 where myocardium)
    return out


def check_sample(
    arrays: Mapping[str, np.ndarray],
    path: str,
    shape: tuple[int, int],
    image_dtype: np.dtype,
    targets: Sequence[str],
) -> None:
    """Check that the arrays of a sample's file hold what ``targets`` need, as the index says.

    Args:
        arrays: the members of the sample file (``loader.sample_file.read_sample``).
        path: the file, for error messages.
        shape: (height, width) that index.parquet gives for the sample.
        image_dtype: the image dtype that index.parquet gives.
        targets: target names (see the module docstring).

    Raises:
        SampleFileError: a member is missing or has another shape or dtype than expected; the
            message names the file.
    """
    wanted = ["image", *targets]
    if "labels" in targets:
        wanted += ["mask", "omask"]
    missing = [name for name in dict.fromkeys(wanted) if name != "labels" and name not in arrays]
    if missing:
        raise SampleFileError(
            f"{path}: needs member(s) {', '.join(map(repr, missing))}, has "
            f"{', '.join(map(repr, sorted(arrays))) or 'none'}"
            + (" (index.parquet says the sample has an o-contour)" if "omask" in missing else "")
        )
    image = arrays["image"]
    if image.shape != shape or image.dtype != image_dtype:
        raise SampleFileError(
            f"{path}: image is {_shape_text(image.shape)} {image.dtype}, but index.parquet says "
            f"{_shape_text(shape)} {image_dtype}"
        )
    for name in ("mask", "omask"):
        member = arrays.get(name)
        if name in wanted and (member.shape != shape or member.dtype != np.bool_):
            raise SampleFileError(
                f"{path}: {name} is {_shape_text(member.shape)} {member.dtype}, expected "
                f"{_shape_text(shape)} bool like the image"
            )


def write_sample(
    arrays: Mapping[str, np.ndarray], targets: Sequence[str], into: Sequence[np.ndarray]
) -> None:
    """Write a checked sample's image and targets into ``into`` (the image's destination, then
    one per target, each (H, W); the image is cast to its destination's dtype): slots of a batch
    or of the cache, so that nothing is allocated or copied twice."""
    into[0][...] = arrays["image"]
    for name, out in zip(targets, into[1:], strict=True):
        if name == "labels":
            write_labels(arrays["mask"], arrays["omask"], out)
        else:
            out[...] = arrays[name]


def _shape_text(shape: tuple[int, ...]) -> str:
    """``(256, 208)`` -> ``"256x208"``; ``()`` -> ``"scalar"``."""
    return "x".join(str(n) for n in shape) if shape else "scalar"
