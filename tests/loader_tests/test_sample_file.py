"""The sample file reader: same arrays as numpy.load, refuses what it must, names the file."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from loader.sample_file import SampleFileError, decode_sample, encode_sample, read_sample


def npz_bytes(save, **arrays) -> bytes:
    buffer = io.BytesIO()
    save(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "arrays",
    [
        {"image": np.arange(12, dtype=np.int16).reshape(3, 4), "mask": np.eye(3, 4, dtype=bool)},
        {"image": np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)},
        {"image": np.zeros((0, 3), np.uint8), "scalar": np.array(7, dtype=">i4")},
        {"image": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))},
    ],
)
def test_reader_returns_what_numpy_load_returns(arrays):
    for data in (encode_sample(arrays), npz_bytes(np.savez, **arrays)):
        with np.load(io.BytesIO(data), allow_pickle=False) as expected:
            decoded = decode_sample(data)
            assert sorted(decoded) == sorted(expected.files)
            for name in expected.files:
                assert decoded[name].dtype == expected[name].dtype
                np.testing.assert_array_equal(decoded[name], expected[name])


def test_two_files_with_different_shapes_each_decode_to_their_own_shape():
    small = encode_sample({"image": np.ones((2, 3), np.int16)})
    large = encode_sample({"image": np.ones((5, 7), np.int16)})
    assert decode_sample(small)["image"].shape == (2, 3)
    assert decode_sample(large)["image"].shape == (5, 7)
    assert decode_sample(small)["image"].shape == (2, 3)


def test_writer_is_deterministic_stored_and_dated_1980():
    arrays = {"image": np.arange(16, dtype=np.int16).reshape(4, 4), "mask": np.eye(4, dtype=bool)}
    data = encode_sample(arrays)
    assert data == encode_sample({name: a.copy() for name, a in arrays.items()})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.date_time == (1980, 1, 1, 0, 0, 0)


def test_read_sample_names_a_missing_file(tmp_path):
    with pytest.raises(SampleFileError, match=r"absent\.npz: cannot read sample file"):
        read_sample(tmp_path / "absent.npz")


def test_read_sample_names_a_truncated_file(tmp_path):
    path = tmp_path / "cut.npz"
    path.write_bytes(encode_sample({"image": np.ones((4, 4), np.int16)})[:-10])
    with pytest.raises(SampleFileError, match=r"cut\.npz: "):
        read_sample(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a zip archive"),
        (b"PK\x03\x04 not really a zip", "not a zip archive"),
        (npz_bytes(np.savez_compressed, image=np.ones((4, 4))), "compressed"),
        (npz_bytes(np.savez, image=np.array([{"a": 1}], dtype=object)), "refusing to unpickle"),
    ],
)
def test_malformed_or_unsafe_contents_are_refused(data, message):
    with pytest.raises(SampleFileError, match=f"where.npz: .*{message}"):
        decode_sample(data, source="where.npz")


def test_a_member_longer_than_the_file_is_refused():
    data = bytearray(encode_sample({"image": np.ones((4, 4), np.int16)}))
    header_end = data.index(b"}") + 1
    patched = data[:header_end].replace(b"(4, 4)", b"(9, 4)") + data[header_end:]
    with pytest.raises(SampleFileError, match="larger than its member"):
        decode_sample(bytes(patched))


def test_arrays_are_read_only_views():
    decoded = decode_sample(encode_sample({"image": np.ones((2, 2), np.int16)}))
    with pytest.raises(ValueError, match="read-only"):
        decoded["image"][0, 0] = 5
