"""A DICOM slice's geometry: pixel spacing, slice thickness and position, orientation.

All lengths are in millimetres, as DICOM stores them. The values are taken from the header as
they are (no defaults are invented): a tag that is absent, or whose value is malformed, gives
None. Only PixelSpacing has a reason attached when it is unusable, because the build reports
it (problem codes ``pixel_spacing_missing``, ``resample_spacing_missing``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SliceGeometry", "index_geometry", "numbers", "read_geometry", "slice_normal"]


@dataclass(frozen=True)
class SliceGeometry:
    """Where a slice's pixels are, from its DICOM header.

    ``pixel_spacing``: (row spacing, column spacing) in mm, i.e. the distance between the
    centres of adjacent rows and of adjacent columns: DICOM's PixelSpacing, in its order.
    None when the tag is absent or not two positive finite numbers; ``spacing_problem`` then
    says which.
    ``slice_thickness``: SliceThickness in mm. ``slice_location``: SliceLocation in mm.
    ``image_position``: ImagePositionPatient (x, y, z), the centre of the first stored pixel
    (row 0, column 0) in the patient coordinate system, mm.
    ``image_orientation``: ImageOrientationPatient, the direction cosines of the first row
    (towards increasing column) then of the first column (towards increasing row).
    ``spacing_between_slices``: SpacingBetweenSlices in mm, what the scanner says separates
    adjacent slice positions (the cine arrangement checks it against ImagePositionPatient).
    Each is None when absent or malformed.

    ``slice_location`` is the scanner's SliceLocation: a position along an axis of the
    scanner's choosing (on the Sunnybrook studies its steps are 5.3-6.7 mm where the slices
    are 8-10 mm apart, and its sign flips between studies). It is no distance between
    slices: :attr:`normal` and ``image_position`` are (``docs/cine.md``).
    """

    pixel_spacing: tuple[float, float] | None = None
    spacing_problem: str | None = "no PixelSpacing element"
    slice_thickness: float | None = None
    slice_location: float | None = None
    image_position: tuple[float, float, float] | None = None
    image_orientation: tuple[float, float, float, float, float, float] | None = None
    spacing_between_slices: float | None = None

    @property
    def normal(self) -> tuple[float, float, float] | None:
        """The slice normal: the row direction cosines x the column ones (unit length), or
        None without a usable ImageOrientationPatient."""
        return slice_normal(self.image_orientation)


def slice_normal(orientation) -> tuple[float, float, float] | None:
    """The unit normal row x column of an ImageOrientationPatient (6 direction cosines), or
    None when it is absent or its two directions are (nearly) parallel or zero."""
    if orientation is None:
        return None
    rx, ry, rz, cx, cy, cz = orientation
    normal = (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)
    length = math.sqrt(sum(v * v for v in normal))
    if not length > 1e-6:
        return None
    return tuple(v / length for v in normal)


def index_geometry(
    geometry: SliceGeometry | None,
    spacing: tuple[float | None, float | None],
    origin: tuple[float | None, float | None],
) -> dict:
    """The geometry columns of an index or frames row (docs/geometry.md) for a DICOM's
    ``geometry`` (None: unknown) stored with ``spacing`` (mm per pixel of the stored array,
    row then column) and ``origin`` (where stored pixel (0, 0) lies on the DICOM's pixel grid,
    row then column). Vectors are lists, as a record's JSON gives them back."""
    source = (geometry.pixel_spacing if geometry else None) or (None, None)
    position = geometry.image_position if geometry else None
    orientation = geometry.image_orientation if geometry else None
    return {
        "pixel_spacing_row": spacing[0],
        "pixel_spacing_col": spacing[1],
        "source_spacing_row": source[0],
        "source_spacing_col": source[1],
        "grid_origin_row": origin[0],
        "grid_origin_col": origin[1],
        "slice_thickness": geometry.slice_thickness if geometry else None,
        "slice_location": geometry.slice_location if geometry else None,
        "image_position": None if position is None else list(position),
        "image_orientation": None if orientation is None else list(orientation),
    }


def read_geometry(dataset) -> SliceGeometry:
    """The geometry tags of a pydicom ``dataset`` (see SliceGeometry). Never raises."""
    spacing, problem = _pixel_spacing(dataset)
    return SliceGeometry(
        pixel_spacing=spacing,
        spacing_problem=problem,
        slice_thickness=numbers(dataset, "SliceThickness", 1),
        slice_location=numbers(dataset, "SliceLocation", 1),
        image_position=numbers(dataset, "ImagePositionPatient", 3),
        image_orientation=numbers(dataset, "ImageOrientationPatient", 6),
        spacing_between_slices=numbers(dataset, "SpacingBetweenSlices", 1),
    )


def _pixel_spacing(dataset) -> tuple[tuple[float, float] | None, str | None]:
    if "PixelSpacing" not in dataset:
        return None, "no PixelSpacing element"
    values = numbers(dataset, "PixelSpacing", 2)
    if values is None or min(values) <= 0:
        try:
            text = repr(dataset["PixelSpacing"].value)
        except Exception:  # a malformed element may fail to convert
            text = "(unreadable)"
        return None, f"PixelSpacing {text} is not two positive numbers (mm)"
    return (values[0], values[1]), None


def numbers(dataset, keyword: str, count: int):
    """``count`` finite floats from the element (a float when count is 1), or None."""
    try:
        if keyword not in dataset:
            return None
        value = dataset[keyword].value
        if value is None or value == "":
            return None
        items = [value] if isinstance(value, int | float | str | bytes) else list(value)
        if len(items) != count:
            return None
        numbers = tuple(float(item) for item in items)
    except Exception:  # malformed DS/IS text, wrong types
        return None
    if not all(math.isfinite(number) for number in numbers):
        return None
    return numbers[0] if count == 1 else numbers
