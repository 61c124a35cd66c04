"""Opening a dataset version: manifest checks and validation of index.parquet."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from loader_helpers import build_dataset, write_test_manifest

from loader import (
    BatchLoader,
    DatasetIndex,
    DatasetIndexError,
    DatasetNotFinishedError,
    DatasetVerificationError,
)


def rewrite_index(root, **changes):
    """Replace columns of index.parquet (name -> list of values, or None to drop it)."""
    table = pq.read_table(root / "index.parquet")
    for name, values in changes.items():
        position = table.schema.get_field_index(name)
        if values is None:
            table = table.remove_column(position)
        else:
            table = table.set_column(position, name, pa.array(values))
    pq.write_table(table, root / "index.parquet")


def test_index_columns_are_read_in_row_order(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2, 3))
    index = DatasetIndex(data.root)
    assert len(index) == 5
    assert index.npz == data.npz
    assert index.study_id.tolist() == data.study_ids
    assert index.slice.tolist() == data.slices
    assert index.split.tolist() == data.splits
    assert index.version == "1.0.0"
    assert index.path(3) == data.root / data.npz[3]
    assert index.split_counts() == {"train": 5}


@pytest.mark.parametrize(
    "bad_path",
    ["/etc/passwd.npz", "../other/1.0.0/slices/a.npz", "slices/../../x.npz", "slices\\a.npz", ""],
)
def test_paths_that_escape_the_version_folder_are_refused(tmp_path, bad_path):
    data = build_dataset(tmp_path, study_sizes=(2,))
    rewrite_index(data.root, npz=[data.npz[0], bad_path])
    with pytest.raises(DatasetIndexError, match="row 1: npz path"):
        DatasetIndex(data.root, verify="none")


def test_missing_required_columns_are_named(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2,))
    rewrite_index(data.root, split=None, height=None)
    with pytest.raises(DatasetIndexError, match="missing column"):
        DatasetIndex(data.root, verify="none")
    try:
        DatasetIndex(data.root, verify="none")
    except DatasetIndexError as error:
        assert "split" in str(error) and "height" in str(error)


def test_empty_values_are_refused_naming_column_and_row(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3,))
    rewrite_index(data.root, split=["train", None, "train"])
    with pytest.raises(DatasetIndexError, match="column 'split' is empty \\(null\\) at row 1"):
        DatasetIndex(data.root, verify="none")


def test_two_rows_naming_one_file_are_refused(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3,))
    rewrite_index(data.root, npz=[data.npz[0], data.npz[1], data.npz[0]])
    with pytest.raises(DatasetIndexError, match="rows 0 and 2 name the same file"):
        DatasetIndex(data.root, verify="none")


def test_an_unknown_image_dtype_is_refused(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2,))
    rewrite_index(data.root, image_dtype=["int16", "object"])
    with pytest.raises(DatasetIndexError, match="row 1: image_dtype 'object'"):
        DatasetIndex(data.root, verify="none")


def test_an_npz_the_manifest_does_not_list_is_refused_when_verifying(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2,))
    extra = data.root / "slices" / "extra.npz"
    extra.write_bytes((data.root / data.npz[0]).read_bytes())
    rewrite_index(data.root, npz=[data.npz[0], "slices/extra.npz"])
    # the manifest is rewritten for the new index.parquet, without the extra file
    extra.rename(tmp_path / "extra.tmp")
    write_test_manifest(data.root, "1.0.0", "2026-01-01T00:00:00Z", studies=1, samples=2)
    (tmp_path / "extra.tmp").rename(extra)
    with pytest.raises(
        DatasetVerificationError, match=r"slices/extra\.npz: named in index\.parquet"
    ):
        DatasetIndex(data.root, verify="full")
    # the fast open checks index.parquet's sha256, not its paths against the manifest's (the
    # workflow writes both from one build: docs/versions.md, What each check guarantees)
    assert len(DatasetIndex(data.root, verify="fast")) == 2
    assert len(DatasetIndex(data.root, verify="none")) == 2


def test_a_missing_index_is_named(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2,))
    (data.root / "index.parquet").unlink()
    with pytest.raises(DatasetVerificationError, match=r"index\.parquet: missing"):
        DatasetIndex(data.root)
    with pytest.raises(DatasetIndexError, match=r"no index\.parquet"):
        DatasetIndex(data.root, verify="none")


def test_an_unfinished_or_absent_folder_is_refused(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2,), manifest=False)
    with pytest.raises(DatasetNotFinishedError, match="not a finished dataset"):
        DatasetIndex(data.root)
    with pytest.raises(FileNotFoundError, match="no such dataset folder"):
        DatasetIndex(tmp_path / "2.0.0")


def test_one_open_index_can_serve_several_loaders(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2, 2, 3, 1))
    index = DatasetIndex(data.root)
    train = BatchLoader(index, batch_size=2, split="train")
    val = BatchLoader(index, batch_size=2, split="val")
    assert (train.num_samples, val.num_samples) == (4, 3)
    assert train.index is val.index


# ----------------------------------------------------------------------------------- geometry


def test_geometry_columns_are_read_with_nan_where_unknown(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2, 1, 1), spacings=[(1.25, 1.5), None, (0.7, 0.7)])
    index = DatasetIndex(data.root)
    nan = float("nan")
    np.testing.assert_array_equal(index.pixel_spacing_row, [1.25, 1.25, nan, 0.7])
    np.testing.assert_array_equal(index.pixel_spacing_col, [1.5, 1.5, nan, 0.7])
    assert index.pixel_spacing_row.dtype == np.float64
    np.testing.assert_array_equal(index.slice_thickness, [8.0] * 4)
    np.testing.assert_array_equal(index.slice_location, [100.0, 110.0, 100.0, 100.0])
    assert index.image_position.shape == (4, 3) and index.image_orientation.shape == (4, 6)
    np.testing.assert_array_equal(index.image_position[1], [-150.0, -140.0, 110.0])
    np.testing.assert_array_equal(index.image_orientation[3], [1, 0, 0, 0, 1, 0])
    assert index.spacings() == {(1.25, 1.5): 2, None: 1, (0.7, 0.7): 1}
    assert index.spacings(np.array([0, 2])) == {(1.25, 1.5): 1, None: 1}


def test_an_index_built_before_the_geometry_columns_reads_them_as_unknown(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3,))
    index = DatasetIndex(data.root)
    for values in (index.pixel_spacing_row, index.pixel_spacing_col, index.slice_location):
        assert values.shape == (3,) and np.isnan(values).all()
    assert index.image_position.shape == (3, 3) and np.isnan(index.image_position).all()
    assert index.spacings() == {None: 3}


def test_null_vectors_read_as_nan_rows(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2,), spacings=[(1.0, 1.0)])
    rewrite_index(
        data.root,
        image_position=pa.array([None, [1.0, 2.0, 3.0]], type=pa.list_(pa.float64(), 3)),
    )
    position = DatasetIndex(data.root, verify="none").image_position
    assert np.isnan(position[0]).all()
    np.testing.assert_array_equal(position[1], [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("pixel_spacing_row", pa.array([1.0, 0.0]), r"row 1: pixel_spacing_row 0\.0 is not a pos"),
        ("pixel_spacing_col", pa.array([-2.0, 1.0]), r"row 0: pixel_spacing_col -2\.0 is not a p"),
        ("slice_location", pa.array([1.0, float("inf")]), "row 1: slice_location inf is not a f"),
        ("pixel_spacing_col", pa.array(["1.0", "1.0"]), "'pixel_spacing_col' must hold numbers"),
        (
            "image_orientation",
            pa.array([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0], [1.0, 0.0]]),
            r"row 1: image_orientation \[1\.0, 0\.0\] is not 6 finite numbers",
        ),
    ],
)
def test_bad_geometry_values_are_refused_naming_column_and_row(tmp_path, column, values, message):
    data = build_dataset(tmp_path, study_sizes=(2,), spacings=[(1.0, 1.0)])
    rewrite_index(data.root, **{column: values})
    with pytest.raises(DatasetIndexError, match=message):
        DatasetIndex(data.root, verify="none")


def test_dicom_geometry_is_kept_as_the_dicom_gives_it(tmp_path):
    # SliceThickness 0 and negative locations occur in real files; only spacings must be > 0
    data = build_dataset(tmp_path, study_sizes=(2,), spacings=[(1.0, 1.0)])
    rewrite_index(data.root, slice_thickness=[0.0, 5.0], slice_location=[-12.5, 0.0])
    index = DatasetIndex(data.root, verify="none")
    np.testing.assert_array_equal(index.slice_thickness, [0.0, 5.0])
    np.testing.assert_array_equal(index.slice_location, [-12.5, 0.0])


# ------------------------------------------------------------------------------------ the cine


def test_the_cine_columns_are_read_with_nan_and_empty_where_unknown(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3,), spacings=[(1.0, 1.0)])
    table = pq.read_table(data.root / "index.parquet")
    cine = {
        "position": pa.array([0, 1, None], pa.int32()),
        "position_mm": pa.array([0.0, 10.0, None]),
        "phase": pa.array([19, 6, None], pa.int32()),
        "trigger_time": pa.array([720.8, 292.2, None]),
        "cardiac_phase": pa.array(["ED", "ES", None]),
    }
    for name, values in cine.items():
        table = table.append_column(name, values)
    pq.write_table(table, data.root / "index.parquet")
    index = DatasetIndex(data.root, verify="none")
    np.testing.assert_array_equal(index.position, [0.0, 1.0, np.nan])
    np.testing.assert_array_equal(index.position_mm, [0.0, 10.0, np.nan])
    np.testing.assert_array_equal(index.phase, [19.0, 6.0, np.nan])
    np.testing.assert_array_equal(index.trigger_time, [720.8, 292.2, np.nan])
    assert index.cardiac_phase.tolist() == ["ED", "ES", ""]


def test_an_index_built_before_the_cine_columns_reads_them_as_unknown(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2,))
    index = DatasetIndex(data.root)
    for values in (index.position, index.position_mm, index.phase, index.trigger_time):
        assert values.shape == (2,) and np.isnan(values).all()
    assert index.cardiac_phase.tolist() == ["", ""]


def test_the_docs_list_the_index_columns_from_their_one_source():
    from conftest import REPO
    from loader.index_columns import index_columns_markdown

    page = (REPO / "docs" / "index-columns.md").read_text(encoding="utf-8")
    assert page.endswith(index_columns_markdown())
