"""Problems found in the input: stable codes, severities, and the records that carry them.

Every problem the workflow finds becomes one row of ``validation.parquet``. Its ``code`` is
stable (scripts and dashboards may match on it); ``severity`` is ``error`` when the item was
left out of the dataset and ``warning`` when it was kept but looks suspicious. ``CODES`` is the
single list of codes; the table in docs/qc.md is checked against it by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["CODES", "ERROR", "WARNING", "InputProblem", "Problem"]

ERROR = "error"
WARNING = "warning"

#: code -> (severity, what it means)
CODES: dict[str, tuple[str, str]] = {
    # studies
    "study_missing": (ERROR, "a study listed in link.csv has no DICOM folder on disk"),
    "study_contours_missing": (WARNING, "a listed study has no contour folder: no samples"),
    "study_unlisted": (ERROR, "a folder under dicoms/ or contourfiles/ is not in link.csv"),
    # files in general
    "hidden_file": (WARNING, "a hidden file (e.g. a macOS ._ AppleDouble file) was skipped"),
    "file_name_unrecognized": (WARNING, "a file whose name fits no known pattern was skipped"),
    "path_outside_data_dir": (
        ERROR,
        "with `follow_symlinks: false`, a symbolic link leads outside the data folder; not read",
    ),
    "link_broken": (ERROR, "a symbolic link leads nowhere (its target does not exist); not read"),
    "link_loop": (
        ERROR,
        "a symbolic link leads into a loop of links, or to a folder that contains it; not read",
    ),
    "link_wrong_type": (
        ERROR,
        "a symbolic link leads to something other than a regular file (a folder, fifo or "
        "device), or other than a folder where a folder is expected; not read",
    ),
    # DICOM slices
    "dicom_missing": (ERROR, "a contour file has no DICOM slice with its number"),
    "dicom_unreadable": (ERROR, "the file is not DICOM, or is truncated or corrupt"),
    "dicom_no_file_meta": (WARNING, "the DICOM has no preamble/file meta; read as raw dataset"),
    "dicom_no_pixels": (ERROR, "the DICOM has no pixel data"),
    "dicom_codec_missing": (ERROR, "compressed pixel data and no installed decoder for it"),
    "dicom_not_grayscale": (ERROR, "the image is not one grey channel (colour or other)"),
    "dicom_multiframe": (ERROR, "the file holds several frames; one 2D slice was expected"),
    "dicom_too_large": (ERROR, "the header claims more pixels than `max_pixels` allows"),
    "slice_shape_mismatch": (ERROR, "the slice's size differs from the rest of its study"),
    "instance_number_mismatch": (
        ERROR,
        "the DICOM's InstanceNumber differs from its file number: the contour may "
        "belong to another slice",
    ),
    "pixel_spacing_missing": (
        WARNING,
        "the DICOM has no valid PixelSpacing: the sample is kept, its spacing is unknown",
    ),
    "resample_spacing_missing": (
        ERROR,
        "with `resample`, a DICOM without valid PixelSpacing cannot be put on the common grid",
    ),
    # the cine: slice positions and phases from the tags (docs/cine.md)
    "cine_tags_missing": (
        WARNING,
        "a DICOM lacks ImagePositionPatient/ImageOrientationPatient or TriggerTime (or its "
        "header is unreadable): its position or phase comes from its image number and "
        "CardiacNumberOfImages, or is unknown; the message says which",
    ),
    "cine_order_mismatch": (
        WARNING,
        "the image number with CardiacNumberOfImages gives another position or phase than the "
        "tags; the tags' are used",
    ),
    "cine_frame_count": (
        WARNING,
        "a slice position holds another number of frames than CardiacNumberOfImages (or than "
        "most positions)",
    ),
    "cine_spacing_mismatch": (
        WARNING,
        "adjacent slice positions are unevenly spaced, or SpacingBetweenSlices differs from "
        "the spacing of ImagePositionPatient (which is used)",
    ),
    "cine_orientation_changes": (
        WARNING,
        "a DICOM's ImageOrientationPatient differs from its study's; its position is its "
        "ImagePositionPatient projected on the study's normal",
    ),
    "measures_unavailable": (
        WARNING,
        "a study with samples has no row in measures.parquet: the message says why (no two "
        "contoured phases, unknown spacing, ...)",
    ),
    # contour files
    "contour_name_unrecognized": (
        ERROR,
        "a file in a contour folder is not named IM-0001-<nnnn>-<kind>contour-manual.txt",
    ),
    "contour_empty": (ERROR, "the contour file holds no points"),
    "contour_unparseable": (ERROR, "a line of the contour file is not two numbers"),
    "contour_not_finite": (ERROR, "the contour file holds NaN or infinite coordinates"),
    "contour_too_few_points": (ERROR, "fewer than 3 points: not a polygon"),
    "contour_out_of_bounds": (ERROR, "contour points lie outside the image"),
    "contour_outside_grid": (
        ERROR,
        "with `resample`, contour points fall outside the centre-cropped grid",
    ),
    "ocontour_unpaired": (ERROR, "an o-contour whose slice yields no sample (see its other rows)"),
    # labels that look wrong (kept, flagged)
    "mask_empty": (WARNING, "the polygon covers no pixel centre"),
    "mask_too_large": (WARNING, "the mask covers more of the image than `max_mask_fraction`"),
    "mask_area_outlier": (
        WARNING,
        "the i-mask's area breaks its phase's course: beyond `neighbour_area_factor` times (or "
        "below 1/f of) what its phase's neighbouring positions give",
    ),
    "icontour_outside_ocontour": (
        WARNING,
        "more than `max_i_outside_o` of the i-mask lies outside the o-mask",
    ),
    "contour_duplicate": (
        WARNING,
        "the contour file's points equal those of another contour file of the dataset (another "
        "slice or another study): a copied label; the message names the other file(s)",
    ),
    # decisions of a person (config `exclusions`)
    "excluded_by_review": (
        ERROR,
        "a reviewer left the slice out (config `exclusions`); the message says who, when and why",
    ),
}


class InputProblem(Exception):
    """Raised by readers and parsers when an input item is bad; carries a stable code."""

    def __init__(self, code: str, message: str):
        if code not in CODES:
            raise KeyError(f"unknown problem code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Problem:
    """One row of validation.parquet.

    ``path`` is the file at fault, relative to the data folder (POSIX separators); ``slice``
    is the slice number when the problem concerns one slice, else None; ``value`` carries the
    figure behind a label warning (an area, a fraction), else None; ``contour`` names the
    contour file this row accounts for (an error row: the file that was left out because of
    it), else None.
    """

    study_id: str
    path: str
    code: str
    message: str
    slice: int | None = None
    value: float | None = None
    contour: str | None = None

    @property
    def severity(self) -> str:
        return CODES[self.code][0]

    def as_row(self) -> dict:
        # by field, not dataclasses.asdict: its deep copy of each value was most of the cost of
        # the index step's rows (all fields are plain values)
        row = {field.name: getattr(self, field.name) for field in fields(self)}
        return {**row, "severity": self.severity}
