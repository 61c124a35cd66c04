"""BatchLoader over real files: contents, epochs, splits, shards, resume, errors."""

from __future__ import annotations

import json
import math
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loader_helpers import build_dataset

import loader.batch_reader
import loader.cache
from loader import (
    BatchLoader,
    DatasetIndex,
    DatasetIndexError,
    DatasetNotFinishedError,
    DatasetVerificationError,
    SampleFileError,
)

property_settings = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """14 samples in 4 studies: train 7 (studies 0, 1), val 2, test 5."""
    return build_dataset(tmp_path_factory.mktemp("ds"), study_sizes=(3, 4, 2, 5))


@pytest.fixture(scope="module")
def sized(tmp_path_factory):
    """Datasets of any size from 1 to 40 samples, built on first use."""
    made = {}

    def get(n: int):
        if n not in made:
            sizes = [5] * (n // 5) + ([n % 5] if n % 5 else [])
            made[n] = build_dataset(tmp_path_factory.mktemp(f"n{n}"), study_sizes=sizes)
        return made[n]

    return get


def collect(batches, limit=None):
    """(images, masks) of a pass, as lists; stops after ``limit`` batches."""
    out = []
    if limit == 0:
        return out
    for batch in batches:
        out.append(batch)
        if len(out) == limit:
            break
    return out


def rows_served(built, batches) -> list[int]:
    """Identify each served image by content (the stored images are all distinct)."""
    return [built.row_of(image) for images, _ in batches for image in images]


# ----------------------------------------------------------------------------------- contents


@pytest.mark.parametrize("prefetch", [0, 2])
def test_batches_hold_the_stored_arrays_of_the_listed_samples(built, prefetch):
    batches = BatchLoader(built.root, batch_size=4, seed=5, prefetch=prefetch)
    expected_rows = batches.sample_indices(0)
    served = collect(batches)
    assert len(served) == len(batches) == math.ceil(14 / 4)
    for (images, masks), rows in zip(served, expected_rows, strict=True):
        assert images.shape == (len(rows), 8, 8) and images.dtype == np.float32
        assert masks.shape == (len(rows), 8, 8) and masks.dtype == np.bool_
        for image, mask, row in zip(images, masks, rows.tolist(), strict=True):
            np.testing.assert_array_equal(image, built.images[row].astype(np.float32))
            np.testing.assert_array_equal(mask, built.masks[row])


@pytest.mark.parametrize(
    "options",
    [dict(prefetch=0), dict(prefetch=2), dict(cache=True), dict(cache=True, dtype="int16")],
)
def test_batches_stay_right_when_the_caller_drops_each_one_before_the_next(built, options):
    batches = BatchLoader(built.root, batch_size=4, seed=8, drop_last=True, **options)
    for epoch in range(3):
        expected = batches.sample_indices(epoch)
        for (images, masks), rows in zip(batches, expected, strict=True):
            np.testing.assert_array_equal(images, np.stack([built.images[r] for r in rows]))
            np.testing.assert_array_equal(masks, np.stack([built.masks[r] for r in rows]))
            del images, masks  # as a training loop does: the arrays may be reused


def test_one_pass_serves_every_sample_once_then_the_next_pass_reshuffles(built):
    batches = BatchLoader(built.root, batch_size=3, seed=0)
    first, second = rows_served(built, collect(batches)), rows_served(built, collect(batches))
    assert sorted(first) == sorted(second) == list(range(14))
    assert first != second
    assert batches.epoch == 2


def test_same_seed_gives_same_batches_and_set_epoch_pins_the_epoch(built):
    one = BatchLoader(built.root, batch_size=5, seed=11)
    two = BatchLoader(built.root, batch_size=5, seed=11)
    for _ in range(3):
        collect(one)
    two.set_epoch(3)
    assert rows_served(built, collect(one)) == rows_served(built, collect(two))
    two.set_epoch(0)
    fresh = BatchLoader(built.root, batch_size=5, seed=11)
    assert rows_served(built, collect(two)) == rows_served(built, collect(fresh))


def test_shuffle_false_serves_rows_in_index_order(built):
    batches = BatchLoader(built.root, batch_size=4, shuffle=False)
    assert rows_served(built, collect(batches)) == list(range(14))
    assert rows_served(built, collect(batches)) == list(range(14))


def test_drop_last_leaves_out_the_short_batch(built):
    batches = BatchLoader(built.root, batch_size=4, drop_last=True)
    served = collect(batches)
    assert len(batches) == len(served) == 3
    assert [len(images) for images, _ in served] == [4, 4, 4]


@pytest.mark.parametrize(("dtype", "expected"), [(np.int16, np.int16), ("float64", np.float64)])
def test_dtype_option_sets_the_image_dtype_exactly(built, dtype, expected):
    images, _ = next(iter(BatchLoader(built.root, batch_size=14, shuffle=False, dtype=dtype)))
    assert images.dtype == expected
    np.testing.assert_array_equal(images, np.stack(built.images))


def test_float_images_cannot_be_served_as_integers(tmp_path):
    floats = build_dataset(tmp_path, study_sizes=(2,), image_dtype="float32")
    with pytest.raises(ValueError, match="cannot hold the stored float32 images exactly"):
        BatchLoader(floats.root, batch_size=2, dtype=np.int16)
    BatchLoader(floats.root, batch_size=2, dtype=np.float16)  # a float may narrow to a float
    images, _ = next(iter(BatchLoader(floats.root, batch_size=2, shuffle=False)))
    np.testing.assert_array_equal(images, np.stack(floats.images))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.float16])
def test_integer_images_are_not_served_in_a_type_that_would_change_their_values(built, dtype):
    with pytest.raises(ValueError, match="cannot hold the stored int16 images exactly"):
        BatchLoader(built.root, batch_size=2, dtype=dtype)


def test_mixed_slice_shapes_are_refused_naming_the_shapes(tmp_path):
    mixed = build_dataset(tmp_path, study_sizes=(2, 3), shapes={1: (8, 6)})
    with pytest.raises(DatasetIndexError, match="2 different slice shapes") as error:
        BatchLoader(mixed.root, batch_size=2)
    assert "8x8 (2 samples, e.g. slices/SCD0000000/0010.npz)" in str(error.value)
    assert "8x6 (3 samples, e.g. slices/SCD0000001/0010.npz)" in str(error.value)


def test_a_split_with_one_shape_of_a_mixed_dataset_is_served(tmp_path):
    mixed = build_dataset(tmp_path, study_sizes=(2, 3), shapes={1: (8, 6)}, splits=("train", "val"))
    images, _ = next(iter(BatchLoader(mixed.root, batch_size=3, split="val")))
    assert images.shape == (3, 8, 6)


# ------------------------------------------------------------------------------------- splits


def test_split_serves_only_the_samples_of_that_split(built):
    for split in ("train", "val", "test"):
        batches = BatchLoader(built.root, batch_size=2, split=split)
        assert sorted(rows_served(built, collect(batches))) == built.rows_of_split(split)


def test_unknown_split_is_refused_listing_the_splits_present(built):
    with pytest.raises(ValueError, match=r"'training' has no samples.*'train' \(7\)"):
        BatchLoader(built.root, batch_size=2, split="training")


@property_settings
@given(
    assignment=st.lists(st.sampled_from(["train", "val", "test"]), min_size=1, max_size=6),
    batch_size=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_split_loaders_are_disjoint_and_together_serve_every_sample(
    tmp_path_factory, assignment, batch_size, seed
):
    data = build_dataset(
        tmp_path_factory.mktemp("splits"), study_sizes=[2] * len(assignment), splits=assignment
    )
    index = DatasetIndex(data.root)
    seen: dict[str, set[int]] = {}
    for split in set(assignment):
        batches = BatchLoader(index, batch_size=batch_size, seed=seed, split=split)
        rows = [row for rows in batches.sample_indices(0) for row in rows.tolist()]
        seen[split] = set(rows)
        assert len(rows) == len(seen[split])  # once each
        studies = {data.study_ids[row] for row in rows}
        assert all(data.splits[data.study_ids.index(s)] == split for s in studies)
    assert sum(len(rows) for rows in seen.values()) == len(data)
    assert set().union(*seen.values()) == set(range(len(data)))


# ------------------------------------------------------------------------------------- shards


@property_settings
@given(
    n=st.integers(1, 40),
    batch_size=st.integers(1, 8),
    world_size=st.integers(1, 5),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_ranks_serve_equal_batch_counts_whose_union_is_the_epoch(
    sized, n, batch_size, world_size, drop_last, seed
):
    data = sized(n)
    if drop_last and n < batch_size * world_size:
        with pytest.raises(ValueError, match="leaves no batch"):
            BatchLoader(data.root, batch_size, drop_last=True, world_size=world_size)
        return
    index = DatasetIndex(data.root)
    shards = [
        BatchLoader(
            index, batch_size, seed=seed, drop_last=drop_last, rank=r, world_size=world_size
        )
        for r in range(world_size)
    ]
    served = [rows_served(data, collect(shard)) for shard in shards]
    assert len({len(shard) for shard in shards}) == 1
    assert len({len(rows) for rows in served}) == 1
    everything = [row for rows in served for row in rows]
    if drop_last:
        assert (
            len(everything)
            == len(set(everything))
            == n // (batch_size * world_size) * (batch_size * world_size)
        )
    else:
        assert set(everything) == set(range(n))
        assert len(everything) == math.ceil(n / world_size) * world_size  # padded < world_size
        assert len(everything) - n < world_size


# ------------------------------------------------------------------------------------- resume


@property_settings
@given(
    n=st.integers(1, 40),
    batch_size=st.integers(1, 8),
    world_size=st.integers(1, 3),
    taken=st.integers(0, 30),
    prefetch=st.sampled_from([0, 2]),
    seed=st.integers(0, 2**32),
)
def test_resuming_from_a_saved_state_serves_exactly_the_batches_not_yet_served(
    sized, n, batch_size, world_size, taken, prefetch, seed
):
    data = sized(n)
    rank = seed % world_size
    settings_ = dict(batch_size=batch_size, seed=seed, rank=rank, world_size=world_size)
    reference = BatchLoader(data.root, **settings_)
    # Two epochs without interruption, as rows.
    expected = [rows_served(data, collect(reference)), rows_served(data, collect(reference))]
    stream = [row for epoch in expected for row in epoch]

    first = BatchLoader(data.root, prefetch=prefetch, **settings_)
    taken = min(taken, 2 * len(first) - 1)
    consumed = []
    batches = first.repeat()
    for _ in range(taken):
        consumed += [data.row_of(image) for image in next(batches)[0]]
    state = json.loads(json.dumps(first.state_dict()))  # survives JSON
    batches.close()

    resumed = BatchLoader(data.root, prefetch=prefetch, **settings_)
    resumed.load_state_dict(state)
    remaining = []
    for _ in range(2 - taken // len(first)):
        remaining += rows_served(data, collect(resumed))
    assert consumed + remaining == stream


def test_state_taken_inside_the_loop_counts_the_current_batch_as_served(built):
    batches = BatchLoader(built.root, batch_size=4, seed=2)
    states = []
    for _ in batches:
        states.append(batches.state_dict())
    assert [(s["epoch"], s["batches_served"]) for s in states] == [(0, 1), (0, 2), (0, 3), (1, 0)]


def test_leaving_a_pass_early_and_iterating_again_continues_the_epoch(built):
    batches = BatchLoader(built.root, batch_size=4, seed=3)
    reference = rows_served(built, collect(BatchLoader(built.root, batch_size=4, seed=3)))
    head = rows_served(built, collect(batches, limit=2))
    tail = rows_served(built, collect(batches))
    assert head + tail == reference
    assert batches.epoch == 1


def test_state_from_a_loader_with_other_settings_is_refused_naming_them(built):
    saved = BatchLoader(built.root, batch_size=4, seed=1).state_dict()
    with pytest.raises(ValueError, match="other settings") as error:
        BatchLoader(built.root, batch_size=5, seed=2).load_state_dict(saved)
    assert "batch_size: saved 4, this loader 5" in str(error.value)
    assert "seed: saved 1, this loader 2" in str(error.value)
    with pytest.raises(ValueError, match="split: saved None, this loader 'train'"):
        BatchLoader(built.root, batch_size=4, seed=1, split="train").load_state_dict(saved)


def test_malformed_states_are_refused(built):
    batches = BatchLoader(built.root, batch_size=4)
    good = batches.state_dict()
    with pytest.raises(ValueError, match="not a BatchLoader state"):
        batches.load_state_dict({"epoch": 1})
    with pytest.raises(ValueError, match=r"batches_served must be an integer in \[0, 4\)"):
        batches.load_state_dict({**good, "batches_served": 4})
    with pytest.raises(ValueError, match="epoch must be an integer"):
        batches.load_state_dict({**good, "epoch": -1})


def test_a_new_pass_ends_the_previous_iterator(built):
    batches = BatchLoader(built.root, batch_size=4)
    old = iter(batches)
    next(old)
    new = iter(batches)
    next(new)
    with pytest.raises(RuntimeError, match="ended by a newer pass"):
        next(old)


def test_repeat_cycles_epochs_endlessly_or_for_a_count(built):
    reference = BatchLoader(built.root, batch_size=5, seed=4)
    expected = [rows_served(built, collect(reference)) for _ in range(3)]
    endless = BatchLoader(built.root, batch_size=5, seed=4).repeat()
    got = rows_served(built, [next(endless) for _ in range(3 * 3)])
    assert got == [row for epoch in expected for row in epoch]
    counted = BatchLoader(built.root, batch_size=5, seed=4)
    assert len(list(counted.repeat(epochs=2))) == 6
    assert counted.epoch == 2


def test_prefetch_thread_stops_when_a_pass_is_left(built):
    before = threading.active_count()
    batches = BatchLoader(built.root, batch_size=1, prefetch=2)
    iterator = iter(batches)
    next(iterator)
    assert threading.active_count() == before + 1
    iterator.close()
    assert threading.active_count() == before


# --------------------------------------------------------------------------------- augmentation


def dihedral(array: np.ndarray) -> list[np.ndarray]:
    """The 8 symmetries of a square array, written out independently of loader.augment."""
    turns = [array, array.T[::-1], array[::-1, ::-1], array.T[:, ::-1]]  # 0, 90, 180, 270 ccw
    return turns + [t[:, ::-1] for t in turns]


def augmented_by_row(built, batches) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for rows, (images, masks) in zip(batches.sample_indices(), collect(batches), strict=True):
        for row, image, mask in zip(rows.tolist(), images, masks, strict=True):
            out[row] = (image, mask)
    return out


def test_augmentation_transforms_image_and_mask_alike_with_a_flip_or_rotation(built):
    batches = BatchLoader(built.root, batch_size=4, seed=9, augment=True)
    codes = []
    for _ in range(4):
        for row, (image, mask) in augmented_by_row(built, batches).items():
            candidates = dihedral(built.images[row].astype(np.float32))
            matches = [k for k, c in enumerate(candidates) if np.array_equal(c, image)]
            assert len(matches) == 1
            np.testing.assert_array_equal(mask, dihedral(built.masks[row])[matches[0]])
            codes.append(matches[0])
    assert set(codes) == set(range(8))  # 56 draws reach all eight


def test_augmentation_depends_on_seed_epoch_and_sample_only(built):
    def run(**kwargs):
        batches = BatchLoader(built.root, seed=9, augment=True, **kwargs)
        batches.set_epoch(2)
        return augmented_by_row(built, batches)

    reference = run(batch_size=4, prefetch=0)
    for kwargs in (
        dict(batch_size=3, prefetch=2),
        dict(batch_size=14, shuffle=False),
        dict(batch_size=2, cache=True),
    ):
        other = run(**kwargs)
        for row, (image, mask) in reference.items():
            np.testing.assert_array_equal(other[row][0], image)
            np.testing.assert_array_equal(other[row][1], mask)
    shard = BatchLoader(built.root, batch_size=2, seed=9, augment=True, rank=1, world_size=2)
    shard.set_epoch(2)
    for row, (image, _) in augmented_by_row(built, shard).items():
        np.testing.assert_array_equal(image, reference[row][0])


def test_augmentation_changes_between_epochs(built):
    batches = BatchLoader(built.root, batch_size=14, seed=9, augment=True, shuffle=False)
    first, second = next(iter(batches))[0], next(iter(batches))[0]
    assert not np.array_equal(first, second)


def test_augmentation_keeps_the_shape_of_non_square_slices(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(6,), shape=(8, 5))
    batches = BatchLoader(data.root, batch_size=6, augment=True, seed=1)
    for _ in range(5):
        for images, masks in batches:
            assert images.shape == masks.shape == (6, 8, 5)


# ---------------------------------------------------------------------------------------- cache


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_cached_epochs_serve_the_same_arrays_from_memory(tmp_path, dtype):
    data = build_dataset(tmp_path, study_sizes=(3, 4))
    cached = BatchLoader(data.root, batch_size=3, seed=6, cache=True, dtype=dtype)
    rows_by_epoch = [cached.sample_indices(0), cached.sample_indices(1)]
    first = collect(cached)
    assert cached.cached
    for path in data.root.glob("slices/*/*.npz"):
        path.unlink()  # the second epoch can only come from memory
    second = collect(cached)
    for epoch_batches, rows_of_epoch in zip((first, second), rows_by_epoch, strict=True):
        for (images, masks), rows in zip(epoch_batches, rows_of_epoch, strict=True):
            assert images.dtype == dtype
            np.testing.assert_array_equal(images, np.stack([data.images[r] for r in rows]))
            np.testing.assert_array_equal(masks, np.stack([data.masks[r] for r in rows]))


def test_cache_that_does_not_fit_is_refused_with_sizes(built, monkeypatch):
    # 14 samples x 64 pixels x (2 bytes int16 + 1 byte mask) = 2688 B; 80% of 1000 B allowed
    monkeypatch.setattr(loader.cache, "available_memory", lambda: 1000)
    with pytest.raises(MemoryError, match=r"needs 2.6 KiB \(14 samples of 8x8.*only 800 B"):
        BatchLoader(built.root, batch_size=2, cache=True)


# --------------------------------------------------------------------------------------- errors


def test_a_missing_sample_file_is_named(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3,))
    (data.root / data.npz[1]).unlink()
    with pytest.raises(DatasetVerificationError, match=re.escape(f"{data.npz[1]}: missing")):
        BatchLoader(data.root, batch_size=3)
    for prefetch in (0, 2):
        batches = BatchLoader(data.root, batch_size=3, verify="none", prefetch=prefetch)
        with pytest.raises(SampleFileError, match=re.escape(f"{data.npz[1]}: cannot read")):
            collect(batches)


def test_a_corrupt_sample_file_is_named(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3,))
    path = data.root / data.npz[2]
    path.write_bytes(path.read_bytes()[:-30])
    batches = BatchLoader(data.root, batch_size=1, verify="none", shuffle=False)
    with pytest.raises(SampleFileError, match=re.escape(data.npz[2])):
        collect(batches)


def test_a_pickled_array_is_refused_not_unpickled(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(1,))
    path = data.root / data.npz[0]
    with open(path, "wb") as handle:
        np.savez(handle, image=np.array([{"x": 1}], dtype=object), mask=np.zeros((8, 8), bool))
    batches = BatchLoader(data.root, batch_size=1, verify="none")
    with pytest.raises(SampleFileError, match="refusing to unpickle"):
        collect(batches)


def test_a_file_disagreeing_with_the_index_is_named(tmp_path):
    from loader.sample_file import encode_sample

    data = build_dataset(tmp_path, study_sizes=(2,))
    path = data.root / data.npz[1]
    path.write_bytes(encode_sample({"image": np.zeros((8, 7), np.int16), "mask": np.zeros((8, 7))}))
    batches = BatchLoader(data.root, batch_size=2, verify="none")
    with pytest.raises(
        SampleFileError, match=re.escape(data.npz[1]) + ": image is 8x7 int16.*8x8 int16"
    ):
        collect(batches)


def test_only_files_named_in_the_index_are_read(tmp_path, monkeypatch):
    data = build_dataset(tmp_path, study_sizes=(3, 2))
    (data.root / "slices" / "stray.npz").write_bytes(b"not read")
    read = []
    real = loader.batch_reader.read_sample
    monkeypatch.setattr(loader.batch_reader, "read_sample", lambda p: read.append(p) or real(p))
    collect(BatchLoader(data.root, batch_size=2, verify="none"))
    assert sorted(Path(p) for p in read) == sorted(data.root / p for p in data.npz)


def test_a_folder_without_manifest_is_not_a_finished_dataset(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2,), manifest=False)
    with pytest.raises(DatasetNotFinishedError, match="not a finished dataset"):
        BatchLoader(data.root, batch_size=2)
    with pytest.raises(DatasetNotFinishedError):
        BatchLoader(data.root, batch_size=2, verify="none")


def test_full_verification_catches_a_same_size_change_that_fast_misses(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(2,))
    path = data.root / data.npz[0]
    raw = bytearray(path.read_bytes())
    raw[-200] ^= 0xFF  # a pixel byte, same size
    path.write_bytes(bytes(raw))
    BatchLoader(data.root, batch_size=2)  # fast: sizes match
    with pytest.raises(
        DatasetVerificationError, match=re.escape(f"{data.npz[0]}: content changed")
    ):
        BatchLoader(data.root, batch_size=2, verify="full")


def test_invalid_options_are_refused(built):
    with pytest.raises(ValueError, match="verify must be one of"):
        BatchLoader(built.root, batch_size=2, verify="quick")
    with pytest.raises(ValueError, match="prefetch must be >= 0"):
        BatchLoader(built.root, batch_size=2, prefetch=-1)
    with pytest.raises(ValueError, match="dtype must be an integer or float"):
        BatchLoader(built.root, batch_size=2, dtype=bool)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        BatchLoader(built.root, batch_size=0)
