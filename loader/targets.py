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
    "labels_from_masks",
    "needs_omask",
    "parse_targets",
    "sample_arrays",
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
    # Arithmetic on the masks' bytes (a bool is one byte, 0 or 1): a masked copy (np.copyto with
    # where=) took 40x as long on real-looking masks, and made labels 6x slower to serve.
    myocardium = np.greater(omask, mask)  # inside the o-contour, outside the i-contour
    labels = np.multiply(myocardium.view(np.uint8), 2, dtype=np.uint8)  # 2: myocardium
    np.bitwise_or(labels, mask.view(np.uint8), out=labels)  # 1: blood pool (0 where myocardium)
    return labels


def sample_arrays(
    arrays: Mapping[str, np.ndarray],
    path: str,
    shape: tuple[int, int],
    image_dtype: np.dtype,
    targets: Sequence[str],
) -> list[np.ndarray]:
    """``[image, *targets]`` of one sample from the arrays of its file, checked.

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
    made = [image]
    for name in targets:
        if name == "labels":
            made.append(labels_from_masks(arrays["mask"], arrays["omask"]))
        else:
            made.append(arrays[name])
    return made


def _shape_text(shape: tuple[int, ...]) -> str:
    """``(256, 208)`` -> ``"256x208"``; ``()`` -> ``"scalar"``."""
    return "x".join(str(n) for n in shape) if shape else "scalar"
