"""The on-disk format of one sample: an uncompressed ``.npz`` written byte-for-byte reproducibly.

A sample file is a zip archive of ``.npy`` members, exactly what ``numpy.load`` reads:

- ``image``: 2D array (rows, columns), the DICOM pixels; the stored integer dtype (int16 for the
  Sunnybrook data) or float32 when the DICOM carries a non-identity RescaleSlope/Intercept.
- ``mask``: 2D bool array of the same shape, the i-contour (blood pool).
- ``omask`` (optional): 2D bool array, the o-contour (outer heart-muscle border).

The writer fixes everything ``numpy.savez`` leaves to chance (the members' timestamps), so the same
arrays always give the same bytes, and it stores members uncompressed, so that the reader can map
them straight into arrays. The reader is the loader's hot path: it parses the zip directory and the
``.npy`` headers itself (``numpy.load`` spends about 90% of a 200 kB sample's read time in
``zipfile``), refuses anything it cannot read as plain arrays (``allow_pickle`` is never on), and
names the file in every error.
"""

from __future__ import annotations

import ast
import functools
import io
import math
import os
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["SampleFileError", "decode_sample", "encode_sample", "read_sample"]

# Zip cannot store dates before 1980; a fixed stamp keeps the bytes reproducible.
_FIXED_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_CDIR = struct.Struct("<4s6H3L5H2L")  # central directory file header
_LOCAL = struct.Struct("<4s5H3L2H")  # local file header
_EOCD_SIG, _CDIR_SIG, _LOCAL_SIG = b"PK\x05\x06", b"PK\x01\x02", b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"


class SampleFileError(ValueError):
    """A sample file is missing, truncated, or not the plain-array npz this project writes."""


def encode_sample(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Return the npz bytes for ``arrays`` (member name -> array), in the mapping's order.

    Deterministic: the same names, dtypes, shapes and values always give the same bytes.
    Object arrays are refused, as they would need pickling to read back.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            if array.dtype.hasobject:
                raise TypeError(
                    f"array {name!r} has dtype {array.dtype}; sample files hold no objects"
                )
            member = io.BytesIO()
            np.lib.format.write_array(member, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_ZIP_DATE)
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue(), compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def read_sample(path: str | Path) -> dict[str, np.ndarray]:
    """Read a sample file into a dict of member name (without ``.npy``) -> array.

    Raises SampleFileError naming ``path`` when the file is missing or malformed. The arrays are
    views of one bytes buffer and are read-only; copy before writing into them.
    """
    return decode_sample(_read_bytes(path), source=str(path))


def decode_sample(data: bytes, source: str = "<bytes>") -> dict[str, np.ndarray]:
    """Decode npz bytes as written by :func:`encode_sample` (or uncompressed ``np.savez``)."""
    try:
        return {name: _decode_npy(data, offset, size) for name, offset, size in _members(data)}
    except SampleFileError as exc:
        raise SampleFileError(f"{source}: {exc}") from None
    except (struct.error, ValueError, SyntaxError, UnicodeDecodeError) as exc:
        raise SampleFileError(f"{source}: malformed sample file ({exc})") from None


def _read_bytes(path: str | Path) -> bytes:
    """The whole file, through ``os.open``/``os.read`` (a third cheaper than ``open().read()``)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            data = os.read(fd, size)
            if len(data) < size:  # never seen on regular files, but read(2) may return less
                parts = [data]
                while chunk := os.read(fd, size):
                    parts.append(chunk)
                data = b"".join(parts)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SampleFileError(f"{path}: cannot read sample file: {exc.strerror or exc}") from exc
    return data


def _members(data: bytes):
    """Yield (name, data offset, data size) for each stored member, from the central directory."""
    eocd_at = data.rfind(_EOCD_SIG, max(0, len(data) - 65_557))
    if eocd_at < 0:
        raise SampleFileError("not a zip archive (no end-of-directory record; truncated?)")
    _, _, _, _, count, _, cdir_at, _ = _EOCD.unpack_from(data, eocd_at)
    if count == 0:
        raise SampleFileError("the archive holds no arrays")
    position = cdir_at
    for _ in range(count):
        fields = _CDIR.unpack_from(data, position)
        if fields[0] != _CDIR_SIG:
            raise SampleFileError("corrupt zip directory")
        method, size, name_len, extra_len, comment_len, local_at = (
            fields[4],
            fields[9],
            fields[10],
            fields[11],
            fields[12],
            fields[16],
        )
        name = data[position + _CDIR.size : position + _CDIR.size + name_len].decode()
        position += _CDIR.size + name_len + extra_len + comment_len
        if method != zipfile.ZIP_STORED:
            raise SampleFileError(f"member {name!r} is compressed; sample files are stored")
        if size == 0xFFFFFFFF or local_at == 0xFFFFFFFF:
            size, local_at = _zip64_sizes(data, local_at, name)
        local = _LOCAL.unpack_from(data, local_at)
        if local[0] != _LOCAL_SIG:
            raise SampleFileError(f"member {name!r}: corrupt local header")
        start = local_at + _LOCAL.size + local[9] + local[10]
        if start + size > len(data):
            raise SampleFileError(f"member {name!r} runs past the end of the file (truncated?)")
        if not name.endswith(".npy"):
            raise SampleFileError(f"member {name!r} is not an .npy array")
        yield name[:-4], start, size


def _zip64_sizes(data: bytes, local_at: int, name: str) -> tuple[int, int]:
    """Sizes of members written with zip64 extras (``np.savez`` forces them); rare here."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(name)
    local = _LOCAL.unpack_from(data, info.header_offset)
    return info.file_size, info.header_offset if local[0] == _LOCAL_SIG else local_at


@functools.lru_cache(maxsize=256)
def _parse_npy_header(header: bytes) -> tuple[np.dtype, tuple[int, ...], str]:
    """(dtype, shape, order) from the text of an ``.npy`` header.

    Cached on the header's bytes: all the slices of a dataset share a handful of headers, and
    parsing one (``ast.literal_eval``) costs more than the rest of a sample's decoding.
    Invalid headers raise and are therefore never cached.
    """
    fields = ast.literal_eval(header.decode("latin1"))
    if not isinstance(fields, dict) or fields.keys() != {"descr", "fortran_order", "shape"}:
        raise SampleFileError(f"malformed .npy header {header[:80]!r}")
    dtype = np.dtype(fields["descr"])
    if dtype.hasobject:
        raise SampleFileError("member holds Python objects; refusing to unpickle")
    shape = fields["shape"]
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise SampleFileError(f"malformed .npy shape {shape!r}")
    return dtype, shape, "F" if fields["fortran_order"] else "C"


def _decode_npy(data: bytes, offset: int, size: int) -> np.ndarray:
    if data[offset : offset + 6] != _NPY_MAGIC:
        raise SampleFileError("member is not an .npy array")
    major = data[offset + 6]
    if major == 1:
        (header_len,) = struct.unpack_from("<H", data, offset + 8)
        header_at = offset + 10
    elif major in (2, 3):
        (header_len,) = struct.unpack_from("<I", data, offset + 8)
        header_at = offset + 12
    else:
        raise SampleFileError(f"unsupported .npy version {major}")
    dtype, shape, order = _parse_npy_header(data[header_at : header_at + header_len])
    body_at = header_at + header_len
    count = math.prod(shape)
    if body_at + count * dtype.itemsize > offset + size:
        raise SampleFileError(f"array of shape {shape} {dtype} is larger than its member")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=body_at)
    return array.reshape(shape, order=order)
