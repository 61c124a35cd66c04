"""The PyTorch adapter: whole batches as tensors, in the main process or split between
DataLoader worker processes (every sample of the epoch exactly once, in the loader's order)."""

from __future__ import annotations

import pickle
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest
from loader_helpers import build_dataset

from loader import BatchLoader, torch_dataset

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """17 samples: 5 batches of 4 (an odd count: the two workers' shares differ)."""
    return build_dataset(tmp_path_factory.mktemp("ds"), study_sizes=(3, 4, 2, 5, 3), nested=False)


def rows_per_batch(batches) -> list[list[int]]:
    return [rows.tolist() for *_, rows in batches]


def check_content(data, batch) -> None:
    images, masks, rows = batch
    for image, mask, row in zip(images.numpy(), masks.numpy(), rows.tolist(), strict=True):
        np.testing.assert_array_equal(image, data.images[row])
        np.testing.assert_array_equal(mask, data.masks[row])


def test_torch_dataset_serves_the_loaders_batches_as_tensors(built):
    expected = BatchLoader(built.root, batch_size=4, seed=1)
    dataset = torch_dataset(BatchLoader(built.root, batch_size=4, seed=1))
    assert len(dataset) == 5
    for _ in range(2):  # two epochs, each reshuffled like the loader's
        pairs = zip(DataLoader(dataset, batch_size=None), expected, strict=True)
        for (images, masks), (want_images, want_masks) in pairs:
            assert images.dtype == torch.float32 and masks.dtype == torch.bool
            np.testing.assert_array_equal(images.numpy(), want_images)
            np.testing.assert_array_equal(masks.numpy(), want_masks)


@pytest.mark.parametrize("persistent", [False, True])
def test_two_workers_serve_each_epoch_once_in_the_loaders_order_and_reshuffle(built, persistent):
    reference = BatchLoader(built.root, batch_size=4, seed=4)
    dataset = torch_dataset(BatchLoader(built.root, batch_size=4, seed=4, with_rows=True))
    data = DataLoader(dataset, batch_size=None, num_workers=2, persistent_workers=persistent)
    orders = []
    for epoch in range(3):
        batches = list(data)
        served = rows_per_batch(batches)
        assert served == [rows.tolist() for rows in reference.sample_indices(epoch)]
        flat = [row for rows in served for row in rows]
        assert sorted(flat) == list(range(17))  # every sample once
        for batch in batches:
            check_content(built, batch)
        orders.append(flat)
    assert orders[0] != orders[1] and orders[1] != orders[2]


def test_set_epoch_pins_the_epoch_that_workers_serve_next(built):
    reference = BatchLoader(built.root, batch_size=4, seed=2)
    dataset = torch_dataset(BatchLoader(built.root, batch_size=4, seed=2, with_rows=True))
    data = DataLoader(dataset, batch_size=None, num_workers=2, persistent_workers=True)
    list(data)  # epoch 0
    dataset.set_epoch(7)
    assert rows_per_batch(data) == [r.tolist() for r in reference.sample_indices(7)]
    assert rows_per_batch(data) == [r.tolist() for r in reference.sample_indices(8)]


@pytest.mark.parametrize("persistent", [False, True])
def test_a_pass_left_early_counts_as_an_epoch(built, persistent):
    reference = BatchLoader(built.root, batch_size=4, seed=3)
    dataset = torch_dataset(BatchLoader(built.root, batch_size=4, seed=3, with_rows=True))
    data = DataLoader(dataset, batch_size=None, num_workers=2, persistent_workers=persistent)
    for _ in data:
        break
    assert rows_per_batch(data) == [r.tolist() for r in reference.sample_indices(1)]


def test_the_workers_of_a_rank_serve_that_ranks_shard_with_its_targets(built):
    options = dict(batch_size=3, seed=5, rank=1, world_size=2, augment=True)
    reference = BatchLoader(built.root, targets=("mask", "labels"), **options)
    dataset = torch_dataset(BatchLoader(built.root, targets=("mask", "labels"), **options))
    data = DataLoader(dataset, batch_size=None, num_workers=2)
    for _ in range(2):
        served = list(data)
        expected = list(reference)
        # 9 samples have an o-contour: padded to 10, 5 per rank, in batches of 3
        assert len(served) == len(expected) == 2
        for batch, want in zip(served, expected, strict=True):
            assert [t.dtype for t in batch] == [torch.float32, torch.bool, torch.uint8]
            for tensor, array in zip(batch, want, strict=True):
                np.testing.assert_array_equal(tensor.numpy(), array)


def test_a_pickled_loader_serves_the_same_batches(built):
    # what spawned or forkserver DataLoader workers receive
    batches = BatchLoader(built.root, batch_size=4, seed=6, cache=True, with_rows=True)
    list(batches)  # fills the cache and the array pools
    copy = pickle.loads(pickle.dumps(batches))
    for mine, theirs in zip(batches.iter_batches(3), copy.iter_batches(3), strict=True):
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(a, b)


def test_the_dataset_pickles_for_spawned_workers_sharing_its_pass_counts(built):
    # What DataLoader hands to workers started with spawn or forkserver (the default start
    # method from Python 3.14 on), without the seconds it takes to start such processes.
    dataset = torch_dataset(BatchLoader(built.root, batch_size=4, seed=4, with_rows=True))
    copy = pickle.loads(ForkingPickler.dumps(dataset))
    assert type(copy) is type(dataset)
    copy._passes[1] += 5  # a worker counting a pass is seen by the main process's object
    assert int(dataset._passes[1]) == 5
    expected = [r.tolist() for r in BatchLoader(built.root, batch_size=4, seed=4).sample_indices(2)]
    assert [rows.tolist() for *_, rows in copy.batches.iter_batches(2)] == expected
