"""DICOM files for tests, built with pydicom: the phantom's slice and its real-world variants."""

from __future__ import annotations

import copy
import io

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

from workflow_scripts.raw.phantom import phantom_dicom


def pixels(rows: int = 64, columns: int = 64) -> np.ndarray:
    """A test pattern with distinct values, int16."""
    return (np.arange(rows * columns).reshape(rows, columns) % 997 - 100).astype(np.int16)


def dataset(image: np.ndarray | None = None, instance: int = 3) -> pydicom.Dataset:
    image = pixels() if image is None else image
    return pydicom.dcmread(io.BytesIO(phantom_dicom(image, "TEST", instance)))


def encode(ds: pydicom.Dataset, **kwargs) -> bytes:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, **kwargs)
    return buffer.getvalue()


def standard(image: np.ndarray | None = None, instance: int = 3, **tags) -> bytes:
    ds = dataset(image, instance)
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    return encode(ds, enforce_file_format=True)


def implicit_vr(image: np.ndarray, instance: int = 3) -> bytes:
    ds = dataset(image, instance)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return encode(ds, enforce_file_format=True)


def big_endian(image: np.ndarray, instance: int = 3) -> bytes:
    ds = dataset(image, instance)
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.PixelData = image.astype(">i2").tobytes()
    return encode(ds, implicit_vr=False, little_endian=False)


def without_file_meta(image: np.ndarray, instance: int = 3) -> bytes:
    """No preamble, no 'DICM', no group 0002: a raw implicit-VR dataset, as old exports are."""
    ds = dataset(image, instance)
    ds.file_meta = FileMetaDataset()
    ds.preamble = None
    return encode(ds, implicit_vr=True, little_endian=True)


def compressed(image: np.ndarray, syntax, instance: int = 3) -> bytes:
    ds = copy.deepcopy(dataset(image, instance))
    ds.compress(syntax)
    return encode(ds, enforce_file_format=True)


def with_syntax_and_payload(syntax, payload: bytes, instance: int = 3) -> bytes:
    """A file claiming ``syntax`` with an arbitrary encapsulated frame (e.g. garbage)."""
    ds = dataset(instance=instance)
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = pydicom.encaps.encapsulate([payload])
    return encode(ds, enforce_file_format=True)


def colour(rows: int = 32, columns: int = 32, instance: int = 3) -> bytes:
    ds = dataset(pixels(rows, columns), instance)
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.zeros((rows, columns, 3), np.uint8).tobytes()
    return encode(ds, enforce_file_format=True)


def multiframe(frames: int = 3, instance: int = 3) -> bytes:
    image = pixels(16, 16)
    ds = dataset(image, instance)
    ds.NumberOfFrames = frames
    ds.PixelData = np.stack([image] * frames).tobytes()
    return encode(ds, enforce_file_format=True)


def huge_header(rows: int = 60000, columns: int = 60000, instance: int = 3) -> bytes:
    """Claims rows x columns pixels but carries almost none."""
    ds = dataset(pixels(8, 8), instance)
    ds.Rows, ds.Columns = rows, columns
    return encode(ds, enforce_file_format=True)
