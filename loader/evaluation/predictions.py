"""The predictions folder a user writes, and :func:`save_prediction` that writes one sample's.

Layout (DESIGN.md, *Evaluating a model against the version*)::

    PREDICTIONS/
      {study_id}/{slice:04d}.npz   # one sample: ``mask`` (bool, H x W), optionally ``omask``
      {study_id}.npy               # one whole cine: bool (P, T, H, W), positions x phases

Sample files use the project's own npz format (:mod:`loader.sample_file`: uncompressed, written
byte-for-byte reproducibly, read without unpickling). Masks are on the version's stored grid:
the shape of the sample's ``image`` (``height`` x ``width`` in ``index.parquet``), bool. Nothing
is converted: a float or integer array is refused (threshold it yourself, e.g. ``probs > 0.5``),
as is a shape that differs from the sample's, a study or slice the version does not hold, and an
array other than ``mask``/``omask``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from loader.files import write_file_atomic
from loader.index import DatasetIndex
from loader.sample_file import SampleFileError, encode_sample, read_sample

__all__ = [
    "PREDICTION_ARRAYS",
    "PredictionError",
    "find_predictions",
    "prediction_path",
    "read_cine_prediction",
    "read_prediction",
    "save_prediction",
]

#: The arrays a sample's prediction file may hold.
PREDICTION_ARRAYS = ("mask", "omask")
_SAMPLE_NAME = re.compile(r"^(\d{4,})\.npz$")
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class PredictionError(ValueError):
    """A prediction is missing, malformed, or does not fit the version; the message names the
    file or the sample."""


def prediction_path(folder: str | Path, study_id: str, slice_number: int) -> Path:
    """``{folder}/{study_id}/{slice:04d}.npz``."""
    _check_study_id(study_id)
    return Path(folder) / study_id / f"{int(slice_number):04d}.npz"


def save_prediction(
    folder: str | Path,
    version_or_index: str | Path | DatasetIndex,
    row: int | tuple[str, int],
    *,
    mask: Any,
    omask: Any = None,
) -> Path:
    """Write the prediction of one sample of a dataset version into ``folder``.

    Args:
        folder: the predictions folder (created when absent).
        version_or_index: the version folder (``results/1.0.0``) or its opened
            :class:`~loader.DatasetIndex` (cheaper when called once per sample: pass the index).
        row: the sample, as its row in ``index.parquet`` (the sample index the loader serves) or
            as ``(study_id, slice)``.
        mask: bool array (height, width) of the sample: the predicted blood pool (i-contour).
        omask: optional bool array of the same shape: the predicted o-contour region.

    Returns:
        the path written, ``{folder}/{study_id}/{slice:04d}.npz`` (replaced if present).

    Raises:
        PredictionError: unknown row or (study, slice); an array that is not bool, not 2D, or of
            another shape than the sample's (the message gives both).
    """
    index = _open(version_or_index)
    number = _row_of(index, row)
    study_id, slice_number = str(index.study_id[number]), int(index.slice[number])
    shape = (int(index.height[number]), int(index.width[number]))
    where = f"sample {study_id} slice {slice_number} (row {number})"
    arrays = {"mask": _checked(mask, "mask", shape, where)}
    if omask is not None:
        arrays["omask"] = _checked(omask, "omask", shape, where)
    path = prediction_path(folder, study_id, slice_number)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomic(path, encode_sample(arrays))
    return path


def read_prediction(path: Path, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """The arrays of a sample's prediction file, checked against the sample's ``shape``.

    Raises:
        PredictionError: the file is missing, unreadable, lacks ``mask``, holds another array,
            or an array is not bool of ``shape``.
    """
    if not path.is_file():
        raise PredictionError(f"{path}: no prediction file")
    try:
        arrays = read_sample(path)
    except SampleFileError as exc:
        raise PredictionError(str(exc)) from None
    extra = sorted(set(arrays) - set(PREDICTION_ARRAYS))
    if extra:
        raise PredictionError(
            f"{path}: unexpected array(s) {', '.join(extra)}; a prediction holds 'mask' and "
            "optionally 'omask'"
        )
    if "mask" not in arrays:
        raise PredictionError(f"{path}: no 'mask' array (it holds {', '.join(arrays)})")
    return {name: _checked(array, name, shape, str(path)) for name, array in arrays.items()}


def read_cine_prediction(path: Path, shape: tuple[int, int, int, int]) -> np.ndarray:
    """A whole-cine prediction ``{study_id}.npy``: bool (positions, phases, height, width),
    memory-mapped (read-only), checked against ``shape``.

    Raises:
        PredictionError: unreadable, not bool, or another shape.
    """
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PredictionError(f"{path}: cannot read the cine prediction: {exc}") from None
    if not isinstance(array, np.ndarray) or array.dtype != np.bool_:
        raise PredictionError(
            f"{path}: a cine prediction is a bool array, got {getattr(array, 'dtype', type(array))}"
        )
    if array.shape != tuple(shape):
        raise PredictionError(
            f"{path}: shape {array.shape}, but the study's cine is (positions, phases, height, "
            f"width) = {tuple(shape)}"
        )
    return array


def find_predictions(folder: Path) -> tuple[dict[tuple[str, int], Path], dict[str, Path]]:
    """The prediction files in ``folder``: ``{(study_id, slice): path}`` of sample files and
    ``{study_id: path}`` of cine files.

    Raises:
        PredictionError: ``folder`` is not a folder, or holds a ``.npz``/``.npy`` file or a
            study folder whose name does not follow the layout (named, so that a typo is not
            silently left out).
    """
    if not folder.is_dir():
        raise PredictionError(f"{folder}: no such predictions folder")
    samples: dict[tuple[str, int], Path] = {}
    cines: dict[str, Path] = {}
    misnamed: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            if not _STUDY_NAME.match(entry.name):
                misnamed.append(entry.name + "/")
                continue
            for path in sorted(entry.iterdir()):
                match = _SAMPLE_NAME.match(path.name)
                if match and path.is_file():
                    samples[(entry.name, int(match[1]))] = path
                elif path.suffix in (".npz", ".npy") or path.is_dir():
                    misnamed.append(f"{entry.name}/{path.name}")
        elif entry.suffix == ".npy" and _STUDY_NAME.match(entry.stem):
            cines[entry.stem] = entry
        elif entry.suffix in (".npz", ".npy"):
            misnamed.append(entry.name)
    if misnamed:
        shown = ", ".join(misnamed[:5]) + (", ..." if len(misnamed) > 5 else "")
        raise PredictionError(
            f"{folder}: {len(misnamed)} file(s) not in the predictions layout "
            f"({{study_id}}/{{slice:04d}}.npz or {{study_id}}.npy): {shown}"
        )
    return samples, cines


def _checked(array: Any, name: str, shape: tuple[int, int], where: str) -> np.ndarray:
    """``array`` as a 2D bool numpy array of ``shape``, or PredictionError naming ``where``."""
    if array is None:
        raise PredictionError(f"{where}: {name} is None")
    values = np.asarray(array)
    if values.dtype != np.bool_:
        raise PredictionError(
            f"{where}: {name} has dtype {values.dtype}; predictions are bool masks (threshold "
            f"probabilities yourself, e.g. {name}=probabilities > 0.5)"
        )
    if values.shape != shape:
        raise PredictionError(
            f"{where}: {name} has shape {values.shape}, the sample is {shape[0]} x {shape[1]} "
            "(height x width of the stored image)"
        )
    return values


def _row_of(index: DatasetIndex, row: int | tuple[str, int]) -> int:
    if isinstance(row, tuple):
        if len(row) != 2:
            raise PredictionError(f"row {row!r}: expected (study_id, slice)")
        study_id, slice_number = row
        found = np.flatnonzero((index.study_id == study_id) & (index.slice == int(slice_number)))
        if len(found) == 0:
            raise PredictionError(
                f"({study_id!r}, {slice_number}) is not a sample of {index.root} (no row of "
                "index.parquet has that study and slice)"
            )
        return int(found[0])
    if isinstance(row, bool) or not isinstance(row, int | np.integer):
        raise PredictionError(f"row {row!r}: expected a row number or (study_id, slice)")
    if not 0 <= int(row) < len(index):
        raise PredictionError(f"row {row}: {index.root} has rows 0 to {len(index) - 1}")
    return int(row)


_OPENED: dict[tuple[str, int], DatasetIndex] = {}


def _open(version_or_index: str | Path | DatasetIndex) -> DatasetIndex:
    """The index itself, or the version folder's index, opened once per folder and index file
    change (``save_prediction`` is called once per sample)."""
    if isinstance(version_or_index, DatasetIndex):
        return version_or_index
    root = Path(version_or_index).resolve()
    stamp = (root / "index.parquet").stat().st_mtime_ns if root.is_dir() else 0
    key = (str(root), stamp)
    if key not in _OPENED:
        _OPENED.clear()
        _OPENED[key] = DatasetIndex(root, verify="none")
    return _OPENED[key]


def _check_study_id(study_id: str) -> None:
    if not _STUDY_NAME.match(study_id):
        raise PredictionError(f"study id {study_id!r} cannot name a file (refused)")
