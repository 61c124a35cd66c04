"""Reading one 2D DICOM slice: header checks, pixels, modality rescale.

The checks run on the header before any pixel is decoded, so a file that claims enormous
dimensions is refused without allocating its array.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder

from workflow_scripts.raw.geometry import SliceGeometry, numbers, read_geometry
from workflow_scripts.raw.problems import InputProblem

__all__ = ["DicomHeader", "DicomSlice", "read_dicom_header", "read_dicom_slice"]

#: The tags a cine's arrangement needs (:func:`read_dicom_header` reads only these).
_HEADER_TAGS = [
    "InstanceNumber",
    "PixelSpacing",
    "SliceThickness",
    "SliceLocation",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "SpacingBetweenSlices",
    "TriggerTime",
    "CardiacNumberOfImages",
]


@dataclass(frozen=True)
class DicomHeader:
    """The tags of one DICOM file that place it in its study's cine (header only).

    ``instance_number``: InstanceNumber; ``geometry``: pixel spacing, slice position and
    orientation, SpacingBetweenSlices (mm); ``trigger_time``: TriggerTime, ms after the R wave;
    ``cardiac_images``: CardiacNumberOfImages, the frames per cardiac cycle. Each is None when
    absent or malformed.
    """

    instance_number: int | None
    geometry: SliceGeometry
    trigger_time: float | None
    cardiac_images: int | None


def read_dicom_header(data: bytes) -> DicomHeader:
    """The cine tags of a DICOM file's bytes, parsing the header only (pydicom's
    ``stop_before_pixels`` and ``specific_tags``: no pixel element is read).

    Raises InputProblem ``dicom_unreadable`` when the bytes are no DICOM header.
    """
    dataset, _ = _parse(data, header_only=True)
    trigger_time = numbers(dataset, "TriggerTime", 1)
    images = _optional_int(dataset, "CardiacNumberOfImages")
    return DicomHeader(
        instance_number=_optional_int(dataset, "InstanceNumber"),
        geometry=read_geometry(dataset),
        trigger_time=trigger_time,
        cardiac_images=images if images is not None and images > 0 else None,
    )


@dataclass(frozen=True)
class DicomSlice:
    """A decoded slice.

    ``pixels``: (rows, columns) array; the stored integer dtype when the file has no rescale
    (or an identity one), else float32 ``stored * RescaleSlope + RescaleIntercept``.
    ``window``: (center, width) from the file's first VOI window, or None.
    ``instance_number``: the InstanceNumber tag, or None when absent.
    ``has_file_meta``: False when the file lacked the DICOM preamble/file meta and was read raw.
    ``geometry``: pixel spacing (mm, row then column), slice thickness and position,
    orientation (:class:`~workflow_scripts.raw.geometry.SliceGeometry`).
    """

    pixels: np.ndarray
    instance_number: int | None
    window: tuple[float, float] | None
    has_file_meta: bool
    geometry: SliceGeometry = field(default_factory=SliceGeometry)


def read_dicom_slice(data: bytes, max_pixels: int) -> DicomSlice:
    """Decode the bytes of a DICOM file holding one grey 2D slice.

    Args:
        data: the whole file's bytes.
        max_pixels: refuse files whose header claims more than this many pixels
            (rows * columns * frames), before decoding.

    Raises InputProblem with codes ``dicom_unreadable``, ``dicom_no_pixels``,
    ``dicom_too_large``, ``dicom_not_grayscale``, ``dicom_multiframe`` or
    ``dicom_codec_missing``. pydicom's own warnings (e.g. invalid UIDs) are left to the
    caller to collect.
    """
    dataset, has_file_meta = _parse(data)
    if "PixelData" not in dataset:
        raise InputProblem("dicom_no_pixels", "the file has no PixelData element (truncated?)")
    rows, columns = _int(dataset, "Rows"), _int(dataset, "Columns")
    frames = _int(dataset, "NumberOfFrames", default=1)
    samples = _int(dataset, "SamplesPerPixel", default=1)
    if rows <= 0 or columns <= 0:
        raise InputProblem("dicom_unreadable", f"Rows={rows}, Columns={columns}")
    if rows * columns * max(frames, 1) * max(samples, 1) > max_pixels:
        raise InputProblem(
            "dicom_too_large",
            f"header claims {rows}x{columns} pixels x {frames} frame(s) x {samples} sample(s), "
            f"more than max_pixels={max_pixels}",
        )
    if frames > 1:
        raise InputProblem("dicom_multiframe", f"NumberOfFrames={frames}")
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise InputProblem(
            "dicom_not_grayscale",
            f"SamplesPerPixel={samples}, PhotometricInterpretation={photometric}",
        )
    pixels = _decode_pixels(dataset, rows, columns)
    return DicomSlice(
        pixels=_rescale(dataset, pixels),
        instance_number=_optional_int(dataset, "InstanceNumber"),
        window=_window(dataset),
        has_file_meta=has_file_meta,
        geometry=read_geometry(dataset),
    )


def _parse(data: bytes, header_only: bool = False):
    """The parsed dataset and whether it had file meta; ``header_only`` stops before the pixel
    data and keeps only the cine's tags."""
    options = {"stop_before_pixels": True, "specific_tags": _HEADER_TAGS} if header_only else {}
    try:
        return pydicom.dcmread(io.BytesIO(data), **options), True
    except InvalidDicomError:
        pass  # no preamble: retry as a raw dataset below
    except Exception as exc:  # pydicom raises many types on truncated input
        raise InputProblem("dicom_unreadable", f"cannot parse: {exc}") from None
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True, **options)
        if header_only:
            # Parse the elements now: a deferred parse would fail later, outside this try.
            dataset = pydicom.Dataset({tag: dataset[tag] for tag in dataset})
    except Exception as exc:
        raise InputProblem("dicom_unreadable", f"not a DICOM file ({exc})") from None
    if header_only:
        if not any(keyword in dataset for keyword in _HEADER_TAGS):
            raise InputProblem("dicom_unreadable", "not a DICOM file (none of the cine tags)")
        return dataset, False
    if "Rows" not in dataset or "PixelData" not in dataset:
        raise InputProblem("dicom_unreadable", "not a DICOM file (no preamble, no image tags)")
    if "TransferSyntaxUID" not in dataset.file_meta:
        # Without file meta the encoding is unknown; raw datasets are almost always implicit LE.
        dataset.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    return dataset, False


def _decode_pixels(dataset, rows: int, columns: int) -> np.ndarray:
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    if syntax is not None and syntax.is_compressed:
        # Ask for a decoder first, so that "nothing installed can decode this" is told apart
        # from "the compressed data is broken".
        try:
            available = get_decoder(syntax).is_available
        except NotImplementedError:
            available = False
        if not available:
            raise InputProblem(
                "dicom_codec_missing", f"no installed decoder for transfer syntax {syntax.name}"
            )
    try:
        pixels = dataset.pixel_array
    except Exception as exc:  # pydicom raises many types on corrupt pixel data
        message = " ".join(str(exc).split())[:300]
        raise InputProblem("dicom_unreadable", f"cannot decode pixels: {message}") from None
    if pixels.shape != (rows, columns):
        raise InputProblem(
            "dicom_unreadable", f"pixel array shape {pixels.shape} != header {rows}x{columns}"
        )
    return pixels


def _rescale(dataset, pixels: np.ndarray) -> np.ndarray:
    # Apply the modality rescale only when the file carries one; a missing slope means 1
    # (the prototype read it as 0 and blanked such images).
    if "RescaleSlope" not in dataset and "RescaleIntercept" not in dataset:
        return pixels
    slope = float(dataset.get("RescaleSlope", 1) or 1)
    intercept = float(dataset.get("RescaleIntercept", 0) or 0)
    if slope == 1 and intercept == 0:
        return pixels
    return (pixels.astype(np.float64) * slope + intercept).astype(np.float32)


def _window(dataset) -> tuple[float, float] | None:
    center, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if center is None or width is None:
        return None
    try:
        center = float(center[0] if isinstance(center, pydicom.multival.MultiValue) else center)
        width = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
    except (TypeError, ValueError):
        return None
    return (center, width) if width > 0 else None


def _int(dataset, keyword: str, default: int | None = None) -> int:
    value = _optional_int(dataset, keyword)
    if value is None:
        if default is None:
            raise InputProblem("dicom_unreadable", f"missing or invalid {keyword}")
        return default
    return value


def _optional_int(dataset, keyword: str) -> int | None:
    try:
        value = dataset.get(keyword)
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None
