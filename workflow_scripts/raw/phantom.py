"""A small synthetic cardiac MRI dataset in the Sunnybrook layout, with deliberate faults.

Each phantom study is a cine, as a Sunnybrook study is: slice positions x :data:`PHASES` phases
of a bright elliptical blood pool inside a darker myocardium ring, on a dim noisy background,
written as real DICOM files with pydicom (int16, the real data's Explicit VR Little Endian).
Contour files trace both ellipses on the half-pixel grid the real files use. The generator is
deterministic: the same arguments give the same bytes.

The cine (``docs/cine.md``): image number ``n`` (1-based, ``slices`` per study) is position
``(n - 1) // PHASES`` at phase ``(n - 1) % PHASES`` (position-major, as the real archive), and
its tags say so: ImagePositionPatient steps :data:`SPACING_MM` along the normal of one oblique
ImageOrientationPatient (:data:`ORIENTATION`), SpacingBetweenSlices = SliceThickness =
:data:`SPACING_MM`, TriggerTime :data:`TRIGGER_TIMES_MS` by phase, CardiacNumberOfImages
:data:`PHASES`; SliceLocation is the z coordinate of IPP, which steps less than the slices are
apart (as on the real studies). The blood pool's radii are :data:`PHASE_SCALE` of its ED radii
by phase: i-contours are drawn at phases :data:`ES_PHASE` and :data:`ED_PHASE` of every
position (the even image numbers), o-contours at ED (image numbers divisible by 4), so a
study's volumes can be worked out by hand (:func:`blood_pool_radii`). When ``slices`` is not a
multiple of :data:`PHASES`, the last position holds fewer frames (and the build says so).

With ``faults=True`` the dataset carries what real archives carry:

- the first study has an i-contour whose DICOM file is missing;
- the second study has a truncated (corrupt) DICOM under one of its contours;
- the third study has a macOS ``._`` AppleDouble file beside a real DICOM;
- link.csv lists one more study than exists on disk.

DICOMs without contours are there in every study (the phases between ES and ED).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from workflow_scripts.files import write_bytes_atomic
from workflow_scripts.layout import RawLayout
from workflow_scripts.raw.contours import CONTOUR_KINDS

__all__ = [
    "ED_PHASE",
    "ES_PHASE",
    "ORIENTATION",
    "PHASES",
    "PHASE_SCALE",
    "PIXEL_SPACING_MM",
    "SPACING_MM",
    "TRIGGER_TIMES_MS",
    "PhantomSpec",
    "blood_pool_radii",
    "contour_text",
    "ellipse_contour",
    "phantom_dicom",
    "write_phantom",
]

_UID_ROOT = "1.2.826.0.1.3680043.10.1337."  # example root; phantom UIDs derive from it

#: Frames per cardiac cycle (CardiacNumberOfImages) at every position.
PHASES = 4
#: TriggerTime of each phase, ms after the R wave.
TRIGGER_TIMES_MS = (25.0, 225.0, 425.0, 625.0)
#: The phases drawn: end-systole (smallest blood pool) and end-diastole (largest).
ES_PHASE, ED_PHASE = 1, 3
#: The blood pool's radii at each phase, as a fraction of its radii at ED.
PHASE_SCALE = (0.9, 0.8, 0.9, 1.0)
#: Distance between adjacent slice positions along the normal (SpacingBetweenSlices), mm.
SPACING_MM = 10.0
#: PixelSpacing, mm per pixel (rows and columns).
PIXEL_SPACING_MM = 1.3672
#: ImageOrientationPatient: direction cosines of a row, then of a column (an oblique plane;
#: its normal, row x column, is (-0.48, 0.64, 0.6)).
ORIENTATION = (0.8, 0.6, 0.0, -0.36, 0.48, -0.8)
_NORMAL = np.array([-0.48, 0.64, 0.6])
_ORIGIN = np.array([-100.0, -120.0, 40.0])  # IPP of position 0, mm


@dataclass(frozen=True)
class PhantomSpec:
    """What to generate: ``studies`` present on disk, ``slices`` DICOM files per study (the
    frames of ``slices / PHASES`` positions; i-contours on the even ones), ``size`` pixels
    square, a ``seed`` for the noise, and ``faults``.

    The fields are the config section ``phantom``; its defaults live in the config schema.
    """

    studies: int
    slices: int
    size: int
    seed: int
    faults: bool

    @classmethod
    def with_defaults(cls, **fields: Any) -> PhantomSpec:
        """The spec of the config schema's ``phantom`` defaults, with ``fields`` changed."""
        from workflow_scripts.config import default_config

        return cls(**{**default_config()["phantom"], **fields})

    def study_ids(self) -> list[tuple[str, str]]:
        """(patient_id, original_id) of every study link.csv lists, the absent one included."""
        count = self.studies + (1 if self.faults else 0)
        return [(f"PHANTOM{n:04d}", f"PH-HF-{n}") for n in range(1, count + 1)]

    def labelled_slices(self, patient_id: str) -> set[int]:
        """The slice numbers of a study that :func:`write_phantom` gives an i-contour file,
        known before the phantom is written (an exclusions file is checked at parse time)."""
        study = [p for p, _ in self.study_ids()].index(patient_id) + 1
        if study > self.studies:
            return set()  # listed in link.csv but not on disk
        slices = {number for number in range(1, self.slices + 1) if _has_contours(number)}
        if self.faults and study == 1:
            slices.add(_missing_dicom_slice(self))
        return slices

    def ocontour_slices(self, patient_id: str) -> set[int]:
        """The slice numbers of a study that :func:`write_phantom` gives an o-contour file."""
        study = [p for p, _ in self.study_ids()].index(patient_id) + 1
        if study > self.studies:
            return set()
        return {n for n in range(1, self.slices + 1) if _has_contours(n) and _has_ocontour(n)}


def _has_contours(number: int) -> bool:
    """Contours on even image numbers only, the phases ES and ED of each position: odd ones
    are DICOMs without contour."""
    return (number - 1) % PHASES in (ES_PHASE, ED_PHASE)


def _has_ocontour(number: int) -> bool:
    """o-contours at the ED phase of each position only, as in the real data."""
    return (number - 1) % PHASES == ED_PHASE


def _missing_dicom_slice(spec: PhantomSpec) -> int:
    """The fault of the first study: an i-contour with this number has no DICOM."""
    return spec.slices + 2


def ellipse_contour(cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    """Vertices of an ellipse on the half-pixel grid, as (x, y) pixel coordinates, not closed.

    Like the real files: consecutive duplicates removed, about one vertex per half pixel of
    perimeter.
    """
    count = max(16, int(2 * np.pi * max(ax, ay) * 2))
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    points = np.stack([cx + ax * np.cos(angles), cy + ay * np.sin(angles)], axis=1)
    points = np.round(points * 2) / 2
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = np.any(points[1:] != points[:-1], axis=1)
    return points[keep]


def contour_text(points: np.ndarray) -> str:
    """A contour file's text: one ``x y`` line per vertex, two decimals, as the real files."""
    return "".join(f"{x:.2f} {y:.2f}\n" for x, y in points)


def phantom_dicom(
    pixels: np.ndarray,
    patient_id: str,
    instance: int,
    spacing: float = PIXEL_SPACING_MM,
    cine: bool = False,
) -> bytes:
    """Bytes of an MR DICOM file holding ``pixels`` (int16, rows x columns) as ``instance``;
    with ``cine``, the tags that place image ``instance`` in the phantom's cine (see the
    module's docstring)."""
    seed = f"{patient_id}/{instance}"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(_UID_ROOT, [seed, "sop"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = _UID_ROOT + "1"
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(_UID_ROOT, [patient_id, "study"])
    ds.SeriesInstanceUID = generate_uid(_UID_ROOT, [patient_id, "series"])
    ds.Modality = "MR"
    ds.PatientID = patient_id
    ds.PatientName = "Phantom^" + patient_id
    ds.InstanceNumber = instance
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.PixelSpacing = [spacing, spacing]
    ds.WindowCenter, ds.WindowWidth = 600, 1200
    if cine:
        position, phase = divmod(instance - 1, PHASES)
        corner = _ORIGIN - position * SPACING_MM * _NORMAL  # apex-wards along -normal
        ds.ImagePositionPatient = [f"{value:.4f}" for value in corner]
        ds.ImageOrientationPatient = [f"{value:g}" for value in ORIENTATION]
        ds.SliceThickness = ds.SpacingBetweenSlices = f"{SPACING_MM:g}"
        ds.SliceLocation = f"{corner[2]:.4f}"
        ds.TriggerTime = f"{TRIGGER_TIMES_MS[phase]:g}"
        ds.CardiacNumberOfImages = PHASES
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<i2").tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def blood_pool_radii(spec: PhantomSpec, number: int) -> tuple[float, float]:
    """The blood pool's ellipse radii (x, y) in pixels on image ``number``: at ED
    ``0.09 * size * (1 - 0.5 * p / (P - 1))`` and 0.9 times that, for position ``p`` of ``P``
    (the heart narrows from base to apex), times :data:`PHASE_SCALE` of its phase."""
    position, phase = divmod(number - 1, PHASES)
    positions = -(-spec.slices // PHASES)
    blood = spec.size * 0.09 * (1.0 - 0.5 * position / max(1, positions - 1))
    scale = PHASE_SCALE[phase]
    return blood * scale, 0.9 * blood * scale


def _slice_geometry(spec: PhantomSpec, study: int, number: int) -> dict:
    """Ellipse parameters of one image: its blood pool's radii (:func:`blood_pool_radii`), a
    wall of constant thickness, and a centre that wanders a few pixels."""
    rng = np.random.default_rng([spec.seed, study, number, 1])
    half = spec.size / 2
    ax, ay = blood_pool_radii(spec, number)
    return {
        "cx": half + rng.uniform(-4, 4),
        "cy": half + rng.uniform(-4, 4),
        "ax": ax,
        "ay": ay,
        "wall": spec.size * 0.035,
    }


def _slice_pixels(spec: PhantomSpec, geometry: dict, study: int, number: int) -> np.ndarray:
    rng = np.random.default_rng([spec.seed, study, number, 2])
    rows, columns = np.mgrid[0 : spec.size, 0 : spec.size].astype(np.float64)
    dx, dy = columns - geometry["cx"], rows - geometry["cy"]
    blood = (dx / geometry["ax"]) ** 2 + (dy / geometry["ay"]) ** 2 <= 1
    outer_ax, outer_ay = geometry["ax"] + geometry["wall"], geometry["ay"] + geometry["wall"]
    muscle = ((dx / outer_ax) ** 2 + (dy / outer_ay) ** 2 <= 1) & ~blood
    image = 120 + rng.normal(0, 25, size=blood.shape)
    image[muscle] += 250
    image[blood] += 900
    return np.clip(image, 0, 2900).astype(np.int16)


def write_phantom(root: str | Path, spec: PhantomSpec) -> Path:
    """Write the phantom dataset under ``root`` (link.csv last) and return ``root``."""
    root = Path(root)
    raw = RawLayout(root)
    ids = spec.study_ids()
    for study, (patient_id, original_id) in enumerate(ids[: spec.studies], start=1):
        dicom_dir = raw.path(raw.dicom_dir_relpath(patient_id))
        contour_dir = raw.path(raw.contour_dir_relpath(original_id))
        for number in range(1, spec.slices + 1):
            geometry = _slice_geometry(spec, study, number)
            pixels = _slice_pixels(spec, geometry, study, number)
            write_bytes_atomic(
                dicom_dir / f"{number}.dcm", phantom_dicom(pixels, patient_id, number, cine=True)
            )
            if not _has_contours(number):
                continue
            radii = {"i": 0.0, "o": geometry["wall"]}
            for kind in CONTOUR_KINDS:
                if kind == "o" and not _has_ocontour(number):
                    continue  # o-contours at ED only, as in the real data
                points = ellipse_contour(
                    geometry["cx"],
                    geometry["cy"],
                    geometry["ax"] + radii[kind],
                    geometry["ay"] + radii[kind],
                )
                name = f"IM-0001-{number:04d}-{kind}contour-manual.txt"
                path = contour_dir / raw.contour_kind_folder(kind) / name
                write_bytes_atomic(path, contour_text(points).encode())
        if spec.faults:
            _add_faults(root, spec, study, patient_id, original_id)
    link = "patient_id,original_id\n" + "".join(f"{p},{o}\n" for p, o in ids)
    write_bytes_atomic(raw.link_csv, link.encode())
    return root


def _add_faults(
    root: Path, spec: PhantomSpec, study: int, patient_id: str, original_id: str
) -> None:
    raw = RawLayout(root)
    dicom_dir = raw.path(raw.dicom_dir_relpath(patient_id))
    if study == 1:  # a contour whose DICOM is missing
        number = _missing_dicom_slice(spec)
        geometry = _slice_geometry(spec, study, spec.slices)
        points = ellipse_contour(geometry["cx"], geometry["cy"], geometry["ax"], geometry["ay"])
        name = f"IM-0001-{number:04d}-icontour-manual.txt"
        path = raw.path(raw.contour_kind_relpath(original_id, "i")) / name
        write_bytes_atomic(path, contour_text(points).encode())
    elif study == 2:  # a truncated DICOM under a contour (an o-contour too, from 4 slices)
        path = dicom_dir / ("4.dcm" if spec.slices >= 4 else "2.dcm")
        data = path.read_bytes()
        write_bytes_atomic(path, data[: len(data) // 2])
    elif study == 3:  # a macOS AppleDouble file beside a real one
        digest = hashlib.sha256(patient_id.encode()).digest()
        write_bytes_atomic(dicom_dir / "._2.dcm", b"\x00\x05\x16\x07" + digest)
