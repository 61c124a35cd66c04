"""Making batches: image dtypes and shapes, augmentation of image and mask alike, the cache, and
the errors that name a bad sample file (``loader.batch_reader``, through BatchLoader)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from loader_helpers import build_dataset, collect, dihedral

import loader.batch_reader
import loader.cache
from loader import BatchLoader, DatasetIndexError, DatasetVerificationError, SampleFileError


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """14 samples in 4 studies: train 7 (studies 0, 1), val 2, test 5."""
    return build_dataset(tmp_path_factory.mktemp("ds"), study_sizes=(3, 4, 2, 5))


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


# --------------------------------------------------------------------------------- augmentation


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
        BatchLoader(data.root, batch_size=3, verify="full")
    # the fast open lists no sample folder (docs/versions.md): reading the file names it
    for verify, prefetch in (("fast", 0), ("none", 0), ("none", 2)):
        batches = BatchLoader(data.root, batch_size=3, verify=verify, prefetch=prefetch)
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
