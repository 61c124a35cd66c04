"""Independent reads of a study's cine for the ``frames: all`` tests: every DICOM read with
pydicom (not the workflow's reader), placed by its own tags (ImagePositionPatient on the normal
of ImageOrientationPatient, TriggerTime), its pixels rescaled when the file says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom


def dicom_cine(dicom_dir: Path) -> dict[tuple[int, int], tuple[str, np.ndarray | None]]:
    """{(position, phase): (file name, pixels or None where pydicom cannot decode them)} of the
    DICOMs whose header pydicom reads. Positions: planes along the normal (1 mm apart at least),
    numbered from the end holding the lowest image number; phases: TriggerTime ranks."""
    read = {}
    names = [path for path in Path(dicom_dir).glob("*.dcm") if path.stem.isdigit()]
    for path in sorted(names, key=lambda p: int(p.stem)):
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        try:
            pixels = pydicom.dcmread(path).pixel_array
        except Exception:
            pixels = None
        slope = float(dataset.get("RescaleSlope", 1) or 1)
        intercept = float(dataset.get("RescaleIntercept", 0) or 0)
        if pixels is not None and (slope, intercept) != (1.0, 0.0):
            pixels = (pixels.astype(np.float64) * slope + intercept).astype(np.float32)
        orientation = np.array([float(v) for v in dataset.ImageOrientationPatient])
        normal = np.cross(orientation[:3], orientation[3:])
        along = float(np.dot([float(v) for v in dataset.ImagePositionPatient], normal))
        read[int(path.stem)] = (along, float(dataset.TriggerTime), path.name, pixels)
    planes: list[list[int]] = []
    for number in sorted(read, key=lambda n: read[n][0]):
        if not planes or read[number][0] - read[planes[-1][-1]][0] > 1.0:
            planes.append([])
        planes[-1].append(number)
    if min(planes[-1]) < min(planes[0]):
        planes.reverse()
    cine = {}
    for position, plane in enumerate(planes):
        for phase, number in enumerate(sorted(plane, key=lambda n: (read[n][1], n))):
            cine[(position, phase)] = read[number][2:]
    return cine
