"""Opening at 100,000 studies (issue 22): index.parquet read without a Python object per
sample (SamplePaths, shared strings, arrow_numpy), and the fast open's check (index.parquet's
sha256 as manifest.json records it, the top files' sizes, no listing of sample folders)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from loader_helpers import build_dataset

from loader import DatasetIndex, DatasetIndexError, DatasetVerificationError
from loader.index_columns import SamplePaths, arrow_numpy
from loader.manifest import MANIFEST_TABLES, manifest_files, read_whole_manifest

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------ SamplePaths

PATHS = ["slices/A/0001.npz", "slices/A/0002.npz", "slices/Bé/0010.npz", "x.npz", "slices/C/9.npz"]


def test_sample_paths_behave_as_the_list_of_str():
    paths = SamplePaths.of(PATHS)
    assert len(paths) == len(PATHS)
    assert [paths[row] for row in range(len(PATHS))] == PATHS
    assert paths[-1] == PATHS[-1] and paths[np.int64(2)] == PATHS[2]
    assert paths[1:4] == PATHS[1:4] and paths[::-2] == PATHS[::-2]
    assert list(paths) == PATHS
    assert paths == PATHS and paths == SamplePaths.of(PATHS)
    assert paths != PATHS[:-1] and paths != [*PATHS[:-1], "other"]
    for row in (len(PATHS), -len(PATHS) - 1):
        with pytest.raises(IndexError):
            paths[row]
    assert all(type(path) is str for path in paths)


def test_sample_paths_of_a_sliced_chunked_column_keep_its_rows():
    # an Arrow slice starts at an offset into its buffers; chunks are combined
    column = pa.chunked_array([pa.array(PATHS)[2:], pa.array(PATHS[:2])])
    paths = SamplePaths(column)
    assert list(paths) == PATHS[2:] + PATHS[:2]
    assert paths.arrow().to_pylist() == PATHS[2:] + PATHS[:2]
    assert SamplePaths.of([]) == [] and len(SamplePaths.of([])) == 0


# ------------------------------------------------------------------------------ arrow_numpy


@pytest.mark.parametrize(
    "kind", [pa.int8(), pa.int32(), pa.int64(), pa.uint16(), pa.float32(), pa.float64()]
)
def test_arrow_numpy_gives_the_values_python_gives(kind):
    values = [3, None, 0, 7, None, 1, 2, 5, 4, 6, 1]
    array = pa.array(values, kind)
    for part in (array, array[3:], pa.chunked_array([array[1:4], array[6:]])):
        python = part.to_pylist()
        fill = -1 if pa.types.is_integer(kind) else np.nan
        filled = arrow_numpy(part, null=fill)
        expected = [fill if v is None else v for v in python]
        np.testing.assert_array_equal(filled, np.array(expected, dtype=filled.dtype))
    assert arrow_numpy(array[5:]).tolist() == values[5:]
    with pytest.raises(ValueError, match="nulls"):
        arrow_numpy(array)


def test_arrow_numpy_unpacks_bools_at_any_offset():
    values = [True, False, True, True, False, False, True, False, True, True, False]
    array = pa.array(values)
    for start in range(len(values)):
        got = arrow_numpy(array[start:])
        assert got.dtype == bool and got.tolist() == values[start:]
    with_null = pa.array([True, None, False])
    assert arrow_numpy(with_null, null=False).tolist() == [True, False, False]


def test_opening_reads_no_pandas(tmp_path):
    """pyarrow's to_numpy and Python scalars import pandas (~0.4 s); the open uses neither."""
    data = build_dataset(tmp_path, study_sizes=(3, 2), spacings=[(1.0, 1.0), None])
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); from loader.index import DatasetIndex; "
        f"[DatasetIndex({str(data.root)!r}, verify=v) for v in ('none', 'fast')]; "
        "print('pandas' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# ------------------------------------------------------------------- the columns, vectorized


def test_strings_are_shared_per_distinct_value(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3, 2))
    index = DatasetIndex(data.root)
    assert index.study_id.tolist() == data.study_ids and index.split.tolist() == data.splits
    assert index.study_id[0] is index.study_id[2]  # one str object per distinct value
    assert index.flags.tolist() == [""] * 5 and index.image_dtype.tolist() == ["int16"] * 5


def rewrite(root: Path, name: str, values: pa.Array) -> None:
    table = pq.read_table(root / "index.parquet")
    table = table.set_column(table.schema.get_field_index(name), name, values)
    pq.write_table(table, root / "index.parquet")


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("slice", pa.array([1.0, 2.0]), "column 'slice' must hold integers"),
        ("has_omask", pa.array([1, 0]), "column 'has_omask' must hold booleans"),
        ("split", pa.array([1, 2]), "column 'split' must hold strings"),
        ("flags", pa.array([1, 2]), "column 'flags' must hold strings"),
        ("npz", pa.array([1, 2]), "row 0: npz path 1 is not a path"),
        ("height", pa.array([8, 0], pa.int32()), "row 1: height 0 is not positive"),
        ("study_id", pa.array(["a", None]), r"column 'study_id' is empty \(null\) at row 1"),
    ],
)
def test_a_column_of_the_wrong_type_is_refused_naming_it(tmp_path, column, values, message):
    data = build_dataset(tmp_path, study_sizes=(2,))
    rewrite(data.root, column, values)
    with pytest.raises(DatasetIndexError, match=message):
        DatasetIndex(data.root, verify="none")


def test_null_flags_read_as_no_flag(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3,))
    rewrite(data.root, "flags", pa.array([None, "a,b", None]))
    assert DatasetIndex(data.root, verify="none").flags.tolist() == ["", "a,b", ""]
    rewrite(data.root, "flags", pa.nulls(3))  # a column of nulls only (type null)
    assert DatasetIndex(data.root, verify="none").flags.tolist() == ["", "", ""]


def test_a_repeated_path_in_sorted_order_is_refused(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3,))
    rewrite(data.root, "npz", pa.array([data.npz[0], data.npz[0], data.npz[2]]))
    with pytest.raises(DatasetIndexError, match="rows 0 and 1 name the same file"):
        DatasetIndex(data.root, verify="none")


# --------------------------------------------------------------------------- the fast check


def as_format_2(root: Path, top_outputs: bool = True) -> dict:
    """Rewrite a version's manifest in format 2 (what the workflow writes); without
    ``top_outputs`` as format 2 was written before manifest.json recorded them."""
    whole = read_whole_manifest(root)
    for name, data in manifest_files({k: v for k, v in whole.items() if k != "format"}):
        (root / name).write_bytes(data)
    manifest = json.loads((root / "manifest.json").read_text())
    if not top_outputs:
        del manifest["top_outputs"]
        (root / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_manifest_json_records_the_digests_of_the_files_directly_in_the_version(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2, 1))
    (data.root / "validation.parquet").write_bytes(b"made up")
    (data.root / "manifest.json").unlink()
    from loader_helpers import write_test_manifest

    write_test_manifest(data.root, "1.0.0", "2026-01-01T00:00:00Z", studies=2, samples=3)
    manifest = as_format_2(data.root)
    own = {"manifest.json", *MANIFEST_TABLES.values()}
    expected = {
        path.name: {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size": len(b)}
        for path in data.root.iterdir()
        if path.is_file() and path.name not in own
        for b in [path.read_bytes()]
    }
    assert set(expected) == {"index.parquet", "validation.parquet"}
    assert manifest["top_outputs"] == expected
    # read whole (format 1's shape) it is not a section of its own, but derived when written
    whole = read_whole_manifest(data.root)
    assert "top_outputs" not in whole
    written = dict(manifest_files({k: v for k, v in whole.items() if k != "format"}))
    assert json.loads(written["manifest.json"])["top_outputs"] == expected


@pytest.mark.parametrize("recorded", [True, False], ids=["top_outputs", "before_top_outputs"])
def test_the_fast_open_refuses_an_index_changed_at_the_same_size(tmp_path, recorded):
    data = build_dataset(tmp_path, study_sizes=(2, 2))
    as_format_2(data.root, top_outputs=recorded)
    assert DatasetIndex(data.root).npz == data.npz
    flip_a_byte(data.root / "index.parquet")
    with pytest.raises(DatasetVerificationError, match=r"index\.parquet: content changed"):
        DatasetIndex(data.root)


def test_the_fast_open_checks_the_sizes_of_the_top_files_and_lists_no_sample(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2, 2))
    (data.root / "validation.parquet").write_bytes(b"12345")
    (data.root / "manifest.json").unlink()
    from loader_helpers import write_test_manifest

    write_test_manifest(data.root, "1.0.0", "2026-01-01T00:00:00Z", studies=2, samples=4)
    as_format_2(data.root)
    (data.root / "validation.parquet").write_bytes(b"1234")
    with pytest.raises(DatasetVerificationError, match=r"validation\.parquet: size 4 bytes, .* 5"):
        DatasetIndex(data.root)
    (data.root / "validation.parquet").unlink()
    with pytest.raises(DatasetVerificationError, match=r"validation\.parquet: missing"):
        DatasetIndex(data.root)
    (data.root / "validation.parquet").write_bytes(b"12345")
    (data.root / data.npz[1]).unlink()
    index = DatasetIndex(data.root)  # the sample files are not listed at open
    assert index.missing_sample_files() == [f"{data.npz[1]}: missing"]
    with pytest.raises(DatasetVerificationError, match=f"{data.npz[1]}: missing"):
        DatasetIndex(data.root, verify="full")


def test_the_selection_digest_is_the_sha256_of_the_paths_joined_by_newlines(tmp_path):
    """Saved loader states compare it: it must stay what it was (a str per row joined)."""
    data = build_dataset(tmp_path, study_sizes=(3, 2, 4))
    index = DatasetIndex(data.root)
    for rows in ([0, 1, 2, 3, 4, 5, 6, 7, 8], [8, 0, 3], [4], [], [2, 2]):
        text = "\n".join(data.npz[row] for row in rows)
        expected = hashlib.sha256(text.encode()).hexdigest()[:16]
        assert index.digest(np.array(rows, dtype=np.int64)) == expected
    joined = SamplePaths.of(PATHS).joined(np.array([4, 2, 0]), separator=b"|")
    assert joined == "|".join([PATHS[4], PATHS[2], PATHS[0]]).encode()
    with pytest.raises(IndexError):
        SamplePaths.of(PATHS).joined(np.array([len(PATHS)]))


def test_shapes_are_counted_in_the_order_they_first_occur(tmp_path):
    from collections import Counter

    data = build_dataset(tmp_path, study_sizes=(2, 1, 3, 2), shapes={1: (6, 8), 2: (8, 7)})
    index = DatasetIndex(data.root)
    pairs = [(int(h), int(w)) for h, w in zip(index.height, index.width, strict=True)]
    assert pairs[:3] == [(8, 8), (8, 8), (6, 8)]
    for rows in (np.arange(len(index)), np.array([6, 2, 0, 3, 3])):
        expected = Counter(pairs[row] for row in rows.tolist())
        got = index.shapes(rows)
        assert got == expected and list(got.most_common()) == list(expected.most_common())
        assert all(type(h) is int and type(w) is int for h, w in got)
