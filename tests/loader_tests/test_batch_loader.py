"""BatchLoader over real files: contents, epochs, splits, shards, resume, and opening."""

from __future__ import annotations

import json
import math
import re
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loader_helpers import build_dataset, collect, datasets_by_size, rows_served

from loader import (
    BatchLoader,
    DatasetIndex,
    DatasetNotFinishedError,
    DatasetVerificationError,
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
    return datasets_by_size(tmp_path_factory)


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
