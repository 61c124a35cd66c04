"""Targets: masks, o-contour masks and labels, served for exactly the samples that have them,
transformed, cached, pooled and resumed like the images."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loader_helpers import build_dataset, dihedral

import loader.cache
from loader import BatchLoader, DatasetIndexError, SampleFileError
from loader.sample_file import encode_sample
from loader.targets import labels_from_masks

property_settings = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def expected_labels(mask: np.ndarray, omask: np.ndarray) -> np.ndarray:
    """Labels written out pixel by pixel from the contract: 1 in the mask, else 2 in the omask."""
    labels = np.zeros(mask.shape, dtype=np.uint8)
    for position in np.ndindex(mask.shape):
        if mask[position]:
            labels[position] = 1
        elif omask[position]:
            labels[position] = 2
    return labels


@pytest.fixture(scope="module")
def crossing(tmp_path_factory):
    """14 samples, every other one with an o-contour that some mask pixels lie outside of."""
    return build_dataset(
        tmp_path_factory.mktemp("crossing"), study_sizes=(3, 4, 2, 5), nested=False
    )


def test_labels_give_the_blood_pool_1_the_myocardium_2_and_the_rest_0():
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)
    omask = np.array([[1, 0, 1, 0], [1, 1, 1, 0]], dtype=bool)  # (0, 1) is i outside o
    labels = labels_from_masks(mask, omask)
    assert labels.dtype == np.uint8
    assert labels.tolist() == [[1, 1, 2, 0], [1, 2, 2, 0]]


def test_the_default_targets_serve_images_and_masks_as_before(crossing):
    default = BatchLoader(crossing.root, batch_size=4, seed=3)
    explicit = BatchLoader(crossing.root, batch_size=4, seed=3, targets="mask")
    assert default.num_samples == explicit.num_samples == 14
    for batch, same, rows in zip(default, explicit, default.sample_indices(0), strict=True):
        assert len(batch) == len(same) == 2
        images, masks = batch
        assert images.tobytes() == same[0].tobytes() and masks.tobytes() == same[1].tobytes()
        assert masks.dtype == np.bool_
        np.testing.assert_array_equal(masks, np.stack([crossing.masks[r] for r in rows]))


def test_mask_and_omask_serve_both_stored_masks_of_the_samples_with_an_omask(crossing):
    batches = BatchLoader(crossing.root, batch_size=3, seed=1, targets=("mask", "omask"))
    served = []
    for images, masks, omasks in batches:
        assert masks.dtype == omasks.dtype == np.bool_
        for image, mask, omask in zip(images, masks, omasks, strict=True):
            row = crossing.row_of(image)
            served.append(row)
            np.testing.assert_array_equal(mask, crossing.masks[row])
            np.testing.assert_array_equal(omask, crossing.omasks[row])
    assert sorted(served) == crossing.rows_with_omask() == [0, 2, 4, 6, 8, 10, 12]


def test_labels_hold_the_stored_mask_as_class_1_even_outside_the_omask(crossing):
    batches = BatchLoader(crossing.root, batch_size=7, targets="labels", shuffle=False)
    ((images, labels),) = list(batches)
    assert labels.dtype == np.uint8 and labels.shape == (7, 8, 8)
    crossings = 0
    for image, label in zip(images, labels, strict=True):
        row = crossing.row_of(image)
        mask, omask = crossing.masks[row], crossing.omasks[row]
        np.testing.assert_array_equal(label, expected_labels(mask, omask))
        np.testing.assert_array_equal(label == 1, mask)
        crossings += int((mask & ~omask).sum())
    assert crossings > 0  # the data has i-pixels outside the o-contour, and they are 1


def test_len_num_samples_and_repr_count_the_samples_that_have_an_omask(crossing):
    batches = BatchLoader(crossing.root, batch_size=3, targets="labels", split="train")
    # train: studies 0 and 1, rows 0..6; o-contours on rows 0, 2, 4, 6
    assert (batches.num_selected, batches.num_samples, len(batches)) == (7, 4, 2)
    assert "samples=4 (of 7 selected; 3 samples without an o-contour left out)" in repr(batches)
    assert "targets='labels'" in repr(batches)
    plain = BatchLoader(crossing.root, batch_size=3, split="train")
    assert "samples=7," in repr(plain) and "left out" not in repr(plain)


def test_a_sample_the_index_says_has_an_omask_but_whose_file_has_none_is_named(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3,), omask_every=1)
    path = data.root / data.npz[1]
    path.write_bytes(encode_sample({"image": data.images[1], "mask": data.masks[1]}))
    batches = BatchLoader(data.root, batch_size=3, targets="labels", verify="none")
    with pytest.raises(SampleFileError, match=re.escape(data.npz[1]) + r".*'omask'"):
        list(batches)


def test_omask_targets_are_refused_when_the_index_cannot_say_which_samples_have_one(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3,))
    table = pq.read_table(data.root / "index.parquet")
    pq.write_table(table.drop_columns(["has_omask"]), data.root / "index.parquet")
    with pytest.raises(DatasetIndexError, match="no 'has_omask' column"):
        BatchLoader(data.root, batch_size=2, targets="omask", verify="none")
    BatchLoader(data.root, batch_size=2, verify="none")  # masks need no such column


def test_omask_targets_are_refused_when_no_selected_sample_has_one(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3, 2), omask_rows={3})
    with pytest.raises(ValueError, match=r"none of the 3 selected samples .* has an o-contour"):
        BatchLoader(data.root, batch_size=2, targets=("mask", "omask"), studies=["SCD0000000"])
    assert BatchLoader(data.root, batch_size=2, targets="labels").num_samples == 1


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ("labelz", "unknown target.*'labelz'"),
        (("mask", "mask"), "names a target twice"),
        ((), "targets is empty"),
    ],
)
def test_bad_targets_are_refused(crossing, targets, message):
    with pytest.raises(ValueError, match=message):
        BatchLoader(crossing.root, batch_size=2, targets=targets)


@pytest.mark.parametrize(
    "options",
    [dict(prefetch=0), dict(prefetch=2), dict(cache=True), dict(cache=True, augment=True)],
)
def test_every_target_stays_right_when_the_caller_drops_each_batch_before_the_next(
    crossing, options
):
    batches = BatchLoader(
        crossing.root,
        batch_size=2,
        seed=8,
        targets=("omask", "labels", "mask"),
        with_rows=True,
        **options,
    )
    for _ in range(3):
        for images, omasks, labels, masks, rows in batches:
            for slot, row in enumerate(rows.tolist()):
                transforms = dihedral(crossing.images[row])
                code = next(k for k, t in enumerate(transforms) if np.array_equal(t, images[slot]))
                assert code == 0 or options.get("augment")
                want = expected_labels(crossing.masks[row], crossing.omasks[row])
                np.testing.assert_array_equal(masks[slot], dihedral(crossing.masks[row])[code])
                np.testing.assert_array_equal(omasks[slot], dihedral(crossing.omasks[row])[code])
                np.testing.assert_array_equal(labels[slot], dihedral(want)[code])
            del images, omasks, labels, masks, rows  # as a training loop does: arrays get reused


def test_cached_epochs_serve_the_targets_from_memory(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(3, 4), nested=False)
    batches = BatchLoader(data.root, batch_size=2, seed=6, cache=True, targets=("labels", "omask"))
    first = [tuple(a.copy() for a in batch) for batch in batches]
    assert batches.cached
    for path in data.root.glob("slices/*/*.npz"):
        path.unlink()  # the second epoch can only come from memory
    rows = batches.sample_indices()
    for (images, labels, omasks), batch_rows in zip(batches, rows, strict=True):
        for image, label, omask, row in zip(images, labels, omasks, batch_rows, strict=True):
            np.testing.assert_array_equal(image, data.images[row])
            np.testing.assert_array_equal(omask, data.omasks[row])
            np.testing.assert_array_equal(label, expected_labels(data.masks[row], data.omasks[row]))
    assert sum(len(batch[0]) for batch in first) == 4  # rows 0, 2, 4, 6


def test_the_cache_memory_check_counts_every_target(crossing, monkeypatch):
    # 7 samples with an o-contour x 64 pixels x (2 B int16 + 1 B labels + 1 B omask) = 1792 B
    monkeypatch.setattr(loader.cache, "available_memory", lambda: 2000)
    with pytest.raises(MemoryError, match=r"needs 1\.8 KiB .*int16 image \+ uint8 labels \+ bool"):
        BatchLoader(crossing.root, batch_size=2, cache=True, targets=("labels", "omask"))
    # the same samples with labels only: 7 x 64 x 3 B = 1344 B, under 80% of 2000 B
    BatchLoader(crossing.root, batch_size=2, cache=True, targets="labels")


def test_a_state_is_refused_by_a_loader_with_other_targets(crossing):
    state = BatchLoader(crossing.root, batch_size=2, targets="omask").state_dict()
    with pytest.raises(ValueError, match=r"targets: saved \['omask'\], this loader \['labels'\]"):
        BatchLoader(crossing.root, batch_size=2, targets="labels").load_state_dict(state)


def test_a_state_saved_before_targets_and_selections_existed_resumes_a_default_loader(crossing):
    batches = BatchLoader(crossing.root, batch_size=4, seed=2)
    next(iter(batches))
    state = batches.state_dict()
    for key in ("targets", "studies", "exclude_flags"):
        del state["fingerprint"][key]  # as saved by the loader before these options
    resumed = BatchLoader(crossing.root, batch_size=4, seed=2)
    resumed.load_state_dict(state)
    assert (resumed.epoch, resumed.state_dict()["batches_served"]) == (0, 1)
    with pytest.raises(ValueError, match="targets"):
        BatchLoader(crossing.root, batch_size=4, seed=2, targets="labels").load_state_dict(state)


# --------------------------------------------------------------------------------- properties


@pytest.fixture(scope="module")
def random_datasets(tmp_path_factory):
    """Datasets by (size, rows with an o-contour), built on first use, with crossing contours."""
    made = {}

    def get(n: int, omask_rows: frozenset[int]):
        key = (n, omask_rows)
        if key not in made:
            sizes = [4] * (n // 4) + ([n % 4] if n % 4 else [])
            made[key] = build_dataset(
                tmp_path_factory.mktemp("t"), study_sizes=sizes, omask_rows=omask_rows, nested=False
            )
        return made[key]

    return get


@st.composite
def datasets_with_omasks(draw):
    n = draw(st.integers(1, 24))
    rows = draw(st.sets(st.integers(0, n - 1), min_size=1))
    return n, frozenset(rows)


@property_settings
@given(
    shape=datasets_with_omasks(),
    batch_size=st.integers(1, 6),
    seed=st.integers(0, 2**32),
    targets=st.sampled_from(["labels", ("mask", "omask"), ("omask", "labels")]),
)
def test_an_epoch_serves_every_sample_with_an_omask_exactly_once_with_its_targets(
    random_datasets, shape, batch_size, seed, targets
):
    data = random_datasets(*shape)
    batches = BatchLoader(data.root, batch_size=batch_size, seed=seed, targets=targets)
    names = (targets,) if isinstance(targets, str) else targets
    for epoch in range(2):
        served = []
        for images, *arrays in batches:
            for slot, image in enumerate(images):
                row = data.row_of(image)
                served.append(row)
                stored = {
                    "mask": data.masks[row],
                    "omask": data.omasks[row],
                    "labels": expected_labels(data.masks[row], data.omasks[row]),
                }
                for name, array in zip(names, arrays, strict=True):
                    np.testing.assert_array_equal(array[slot], stored[name])
        assert sorted(served) == sorted(shape[1]), f"epoch {epoch}"


@property_settings
@given(shape=datasets_with_omasks(), seed=st.integers(0, 2**32), epoch=st.integers(0, 50))
def test_augmentation_transforms_every_target_with_its_image(random_datasets, shape, seed, epoch):
    data = random_datasets(*shape)
    batches = BatchLoader(
        data.root, batch_size=3, seed=seed, augment=True, targets=("mask", "omask", "labels")
    )
    batches.set_epoch(epoch)
    for rows, (images, masks, omasks, labels) in zip(
        batches.sample_indices(), batches, strict=True
    ):
        for slot, row in enumerate(rows.tolist()):
            candidates = dihedral(data.images[row].astype(np.float32))
            codes = [k for k, c in enumerate(candidates) if np.array_equal(c, images[slot])]
            assert codes, "the image is none of the 8 transforms of its stored image"
            want = expected_labels(data.masks[row], data.omasks[row])
            # equal images (a symmetric slice) may match several codes: one fits every target
            assert any(
                np.array_equal(masks[slot], dihedral(data.masks[row])[k])
                and np.array_equal(omasks[slot], dihedral(data.omasks[row])[k])
                and np.array_equal(labels[slot], dihedral(want)[k])
                for k in codes
            )


@property_settings
@given(
    shape=datasets_with_omasks(),
    batch_size=st.integers(1, 5),
    world_size=st.integers(1, 3),
    taken=st.integers(0, 20),
    prefetch=st.sampled_from([0, 2]),
    seed=st.integers(0, 2**32),
)
def test_resuming_a_labels_loader_serves_exactly_the_batches_not_yet_served(
    random_datasets, shape, batch_size, world_size, taken, prefetch, seed
):
    data = random_datasets(*shape)
    if len(shape[1]) < world_size:
        world_size = 1
    options = dict(
        batch_size=batch_size,
        seed=seed,
        rank=seed % world_size,
        world_size=world_size,
        targets="labels",
        with_rows=True,
    )
    reference = BatchLoader(data.root, **options)
    stream = [row for _ in range(2) for *_, rows in reference for row in rows.tolist()]

    first = BatchLoader(data.root, prefetch=prefetch, **options)
    taken = min(taken, 2 * len(first) - 1)
    consumed = []
    batches = first.repeat()
    for _ in range(taken):
        images, labels, rows = next(batches)
        for image, label, row in zip(images, labels, rows.tolist(), strict=True):
            assert data.row_of(image) == row
            np.testing.assert_array_equal(label, expected_labels(data.masks[row], data.omasks[row]))
        consumed += rows.tolist()
    state = json.loads(json.dumps(first.state_dict()))
    batches.close()

    resumed = BatchLoader(data.root, prefetch=prefetch, **options)
    resumed.load_state_dict(state)
    remaining = []
    for _ in range(2 - taken // len(first)):
        remaining += [row for *_, rows in resumed for row in rows.tolist()]
    assert consumed + remaining == stream
