"""Selecting samples by split(s), studies and problem flags, and the row numbers of each batch."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loader_helpers import build_dataset, datasets_by_size

from loader import BatchLoader, DatasetIndex, DatasetIndexError

property_settings = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

FLAGS = {
    1: "mask_area_outlier",
    4: "icontour_outside_ocontour,mask_area_outlier",
    5: "mask_empty",
    9: "icontour_outside_ocontour",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """14 samples in 4 studies (train 0-6, val 7-8, test 9-13), four of them flagged."""
    return build_dataset(tmp_path_factory.mktemp("sel"), study_sizes=(3, 4, 2, 5), flags=FLAGS)


def served_rows(batches) -> list[int]:
    return [row for *_, rows in batches for row in rows.tolist()]


# ------------------------------------------------------------------------------------- splits


def test_several_splits_serve_their_union(data):
    batches = BatchLoader(data.root, batch_size=4, split=["val", "test"], with_rows=True)
    assert sorted(served_rows(batches)) == list(range(7, 14))
    assert batches.num_samples == 7 and len(batches) == 2
    assert "split=['test', 'val']" in repr(batches)


def test_a_split_without_samples_in_a_list_is_named(data):
    with pytest.raises(ValueError, match=r"split 'training' has no samples.*'train' \(7\)"):
        BatchLoader(data.root, batch_size=2, split=("val", "training"))


# ------------------------------------------------------------------------------------ studies


def test_studies_serve_only_the_samples_of_those_studies(data):
    batches = BatchLoader(
        data.root, batch_size=3, studies=["SCD0000003", "SCD0000001"], with_rows=True
    )
    expected = [r for r, s in enumerate(data.study_ids) if s in ("SCD0000001", "SCD0000003")]
    assert sorted(served_rows(batches)) == expected == [3, 4, 5, 6, 9, 10, 11, 12, 13]
    assert batches.num_samples == 9
    assert "studies=['SCD0000001', 'SCD0000003']" in repr(batches)
    one = BatchLoader(data.root, batch_size=3, studies="SCD0000002", with_rows=True)
    assert sorted(served_rows(one)) == [7, 8]


def test_unknown_study_ids_are_refused_naming_them(data):
    with pytest.raises(ValueError, match=r"studies not in .*index\.parquet: 'SCD9', 'nope'") as e:
        BatchLoader(data.root, batch_size=2, studies=["SCD0000001", "nope", "SCD9"])
    assert "it has 4 studies: SCD0000000, SCD0000001" in str(e.value)


def test_empty_selections_are_refused_saying_what_each_filter_left(data):
    with pytest.raises(ValueError, match="studies is empty"):
        BatchLoader(data.root, batch_size=2, studies=[])
    with pytest.raises(ValueError, match="no sample is selected") as error:
        BatchLoader(data.root, batch_size=2, split="val", studies=["SCD0000000"])
    assert "index.parquet has 14 samples; 2 in split 'val'; 0 of studies SCD0000000" in str(
        error.value
    )


# -------------------------------------------------------------------------------------- flags


def test_exclude_flags_leaves_out_the_samples_listing_any_of_the_codes(data):
    batches = BatchLoader(
        data.root, batch_size=4, exclude_flags=["mask_area_outlier", "mask_empty"], with_rows=True
    )
    assert sorted(served_rows(batches)) == [0, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13]
    one = BatchLoader(data.root, batch_size=4, exclude_flags="icontour_outside_ocontour")
    assert one.num_samples == 12 and "exclude_flags=['icontour_outside_ocontour']" in repr(one)


def test_a_code_matches_whole_codes_only(data):
    # "mask" is a prefix of "mask_area_outlier" and "mask_empty" but not a code of any sample
    with pytest.warns(UserWarning, match=r"exclude_flags 'mask' occur in no sample"):
        batches = BatchLoader(data.root, batch_size=4, exclude_flags=["mask"])
    assert batches.num_samples == 14


def test_a_code_that_no_sample_has_warns_and_leaves_nothing_out(data):
    with pytest.warns(UserWarning, match="flags present: icontour_outside_ocontour, mask_area"):
        batches = BatchLoader(
            data.root, batch_size=4, exclude_flags=["mask_empty", "dicom_too_large"]
        )
    assert batches.num_samples == 13
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # codes that occur do not warn
        BatchLoader(data.root, batch_size=4, exclude_flags=["mask_empty"])


def test_exclude_flags_is_refused_on_an_index_without_flags(tmp_path):
    old = build_dataset(tmp_path, study_sizes=(2,))
    table = pq.read_table(old.root / "index.parquet")
    pq.write_table(table.drop_columns(["flags"]), old.root / "index.parquet")
    with pytest.raises(DatasetIndexError, match="no 'flags' column"):
        BatchLoader(old.root, batch_size=2, exclude_flags=["mask_empty"], verify="none")
    assert BatchLoader(old.root, batch_size=2, verify="none").num_samples == 2


# -------------------------------------------------------------------------- state and repeats


def test_a_state_is_refused_by_a_loader_over_another_selection(data):
    state = BatchLoader(data.root, batch_size=2, studies=["SCD0000001"]).state_dict()
    with pytest.raises(ValueError, match=r"studies: saved \['SCD0000001'\], this loader None"):
        BatchLoader(data.root, batch_size=2).load_state_dict(state)
    state = BatchLoader(data.root, batch_size=2, exclude_flags="mask_empty").state_dict()
    with pytest.raises(ValueError, match=r"exclude_flags: saved \['mask_empty'\]"):
        BatchLoader(data.root, batch_size=2).load_state_dict(state)
    # the same selection, spelled in another order or as a list of one, is the same loader
    state = BatchLoader(data.root, batch_size=2, split=["val", "train"]).state_dict()
    BatchLoader(data.root, batch_size=2, split=("train", "val")).load_state_dict(state)
    state = BatchLoader(data.root, batch_size=2, split="val").state_dict()
    BatchLoader(data.root, batch_size=2, split=["val"]).load_state_dict(state)
    with pytest.raises(ValueError, match=r"split: saved 'val', this loader \['test', 'val'\]"):
        BatchLoader(data.root, batch_size=2, split=["val", "test"]).load_state_dict(state)


@property_settings
@given(
    split=st.none() | st.sets(st.sampled_from(["train", "val", "test"]), min_size=1),
    studies=st.none() | st.sets(st.sampled_from([f"SCD{i:07d}" for i in range(4)]), min_size=1),
    codes=st.none()
    | st.sets(st.sampled_from(["mask_area_outlier", "mask_empty", "icontour_outside_ocontour"])),
    batch_size=st.integers(1, 5),
    seed=st.integers(0, 2**32),
)
def test_a_selection_serves_exactly_the_rows_matching_every_filter_once(
    data, split, studies, codes, batch_size, seed
):
    expected = [
        row
        for row in range(len(data))
        if (split is None or data.splits[row] in split)
        and (studies is None or data.study_ids[row] in studies)
        and (not codes or not set(data.flags[row].split(",")) & codes)
    ]
    options = dict(split=split, studies=studies, exclude_flags=codes or None)
    if not expected:
        with pytest.raises(ValueError, match="no sample is selected"):
            DatasetIndex(data.root).rows(**options)
        return
    batches = BatchLoader(data.root, batch_size=batch_size, seed=seed, with_rows=True, **options)
    for _ in range(2):
        served = served_rows(batches)
        assert sorted(served) == expected  # each selected row exactly once per epoch
    assert batches.num_samples == len(expected)


# --------------------------------------------------------------------------------- with_rows


def test_the_default_batch_has_no_rows_and_with_rows_appends_them(data):
    plain = BatchLoader(data.root, batch_size=4, seed=1)
    with_rows = BatchLoader(data.root, batch_size=4, seed=1, with_rows=True)
    for batch, extended, rows in zip(plain, with_rows, plain.sample_indices(0), strict=True):
        assert len(batch) == 2 and len(extended) == 3
        assert extended[2].dtype == np.int64
        assert extended[2].tolist() == rows.tolist()
        for image, row in zip(extended[0], extended[2].tolist(), strict=True):
            np.testing.assert_array_equal(image, data.images[row])
        assert extended[0].tobytes() == batch[0].tobytes()


@pytest.fixture(scope="module")
def sized(tmp_path_factory):
    return datasets_by_size(tmp_path_factory)


@property_settings
@given(
    n=st.integers(1, 30),
    batch_size=st.integers(1, 6),
    world_size=st.integers(1, 4),
    prefetch=st.sampled_from([0, 2]),
    cache=st.booleans(),
    augment=st.booleans(),
    taken=st.integers(0, 12),
    seed=st.integers(0, 2**32),
)
def test_rows_name_the_samples_of_each_batch_under_shards_prefetch_cache_and_resume(
    sized, n, batch_size, world_size, prefetch, cache, augment, taken, seed
):
    data = sized(n)
    options = dict(batch_size=batch_size, seed=seed, world_size=world_size, with_rows=True)
    options.update(prefetch=prefetch, cache=cache, augment=augment)
    for rank in range(world_size):
        first = BatchLoader(data.root, rank=rank, **options)
        stream = first.repeat()
        taken_here = min(taken, 2 * len(first) - 1)
        for _ in range(taken_here):
            check_rows(data, next(stream), augment)
        state = json.loads(json.dumps(first.state_dict()))
        stream.close()
        resumed = BatchLoader(data.root, rank=rank, **options)
        resumed.load_state_dict(state)
        for batch in resumed:
            check_rows(data, batch, augment)


def check_rows(data, batch, augment: bool) -> None:
    images, masks, rows = batch
    for image, mask, row in zip(images, masks, rows.tolist(), strict=True):
        if augment:  # the image is one of the transforms of the stored image of its row
            turns = [np.rot90(data.images[row], k) for k in range(4)]
            assert any(np.array_equal(t, image) or np.array_equal(t[:, ::-1], image) for t in turns)
        else:
            np.testing.assert_array_equal(image, data.images[row])
            np.testing.assert_array_equal(mask, data.masks[row])
