"""Augmentation (``loader.augment``, and how ``loader.batch_reader`` and ``loader.cache`` apply
it): every served sample is exactly its stored image and targets turned by ``code % 4`` quarter
turns counter-clockwise, then flipped left-right for codes 4 to 7, with the code drawn from
SplitMix64(seed, epoch, row); whatever the cache, prefetch, shard, resume or slice shape.

The expected arrays are made here with ``np.rot90`` and ``np.fliplr`` and the expected codes with
a pure-Python SplitMix64, independently of the loader's row-copy orientations and inverse views.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from loader_helpers import build_dataset

import loader.augment
import loader.cache
from loader import BatchLoader
from loader.augment import transform_codes, transform_into, transformed_view
from loader.sampler import STREAM_AUGMENT

TARGETS = ("mask", "omask", "labels")
GOLDEN, MIX1, MIX2, MASK = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 2**64 - 1


def mix(z: int) -> int:
    """SplitMix64's output function on a Python int (the published constants)."""
    z = ((z ^ (z >> 30)) * MIX1) & MASK
    z = ((z ^ (z >> 27)) * MIX2) & MASK
    return z ^ (z >> 31)


def expected_code(seed: int, epoch: int, row: int, square: bool) -> int:
    """The code of ``row`` in ``epoch``, from the documented draw: the key (stream, seed, epoch)
    folded into a state, SplitMix64 at counter ``row``, top 3 bits (square) or the top 2 bits
    picking one of the shape-keeping codes 0, 2, 4, 6."""
    state = 0
    for key in (STREAM_AUGMENT, seed, epoch):
        state = (mix(state ^ key) + GOLDEN) & MASK
    draw = mix((state + (int(row) + 1) * GOLDEN) & MASK)
    return draw >> 61 if square else (0, 2, 4, 6)[draw >> 62]


def reference(array: np.ndarray, code: int) -> np.ndarray:
    """``array`` transformed by ``code`` as the module docstring says: np.rot90, then np.fliplr."""
    turned = np.rot90(array, code % 4)
    return np.fliplr(turned) if code >= 4 else turned


def expected_labels(mask: np.ndarray, omask: np.ndarray) -> np.ndarray:
    return np.where(mask, 1, np.where(omask, 2, 0)).astype(np.uint8)


# ------------------------------------------------------------------------------ the transforms


DTYPES = [np.int16, np.uint16, np.float32, np.float64, np.bool_, np.uint8, np.int64]


def distinct_values(shape, dtype) -> np.ndarray:
    """A read-only array of ``shape``: distinct values (any misplaced pixel shows), a pattern for
    bool; read-only as the arrays of a sample file are."""
    values = np.arange(np.prod(shape)).reshape(shape)
    array = (values % 7 > 2) if dtype == np.bool_ else values.astype(dtype)
    array.flags.writeable = False
    return array


@pytest.mark.parametrize("shape", [(6, 6), (5, 7), (4, 9)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_views_give_the_documented_transform_for_every_code(shape, dtype):
    array = distinct_values(shape, dtype)
    for code in range(8):
        np.testing.assert_array_equal(transformed_view(array, code), reference(array, code))


@pytest.mark.parametrize("shape", [(6, 6), (5, 7), (4, 9)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_dtype", ["same", np.float32, np.float64, np.int32])
@pytest.mark.parametrize("scratch", ["none", "fit", "unfit"])
def test_transform_into_writes_the_documented_transform_cast_into_any_slot(
    shape, dtype, out_dtype, scratch
):
    """How uncached samples are transformed: into a slot of a batch array (C-contiguous, same
    dtype: straight from OpenCV; another dtype: through the scratch buffer, then cast), with a
    fitting buffer, an unfit one (wrong dtype) or none."""
    array = distinct_values(shape, dtype)
    out_dtype = array.dtype if out_dtype == "same" else np.dtype(out_dtype)
    for code in range(8):
        want = reference(array, code).astype(out_dtype)  # the cast as numpy makes it
        batch = np.full((3, *want.shape), 99, dtype=out_dtype)  # the middle slot is written
        buffer = {
            "none": None,
            "fit": np.full(want.shape, 7, dtype=array.dtype),
            "unfit": np.zeros(want.shape, dtype=np.int8 if dtype != np.int8 else np.int16),
        }[scratch]
        slot = batch[1]
        assert transform_into(array, code, slot, buffer) is slot
        np.testing.assert_array_equal(slot, want)
        assert (batch[[0, 2]] == np.asarray(99).astype(out_dtype)).all()  # neighbours untouched


@pytest.mark.parametrize("dtype", [np.int16, np.bool_, np.float32])
def test_transform_into_a_strided_destination(dtype):
    """A destination that is not C-contiguous (a column-major view) cannot take OpenCV's result
    directly: the transform goes through the buffer and lands right."""
    array = distinct_values((6, 6), dtype)
    for code in range(8):
        out = np.zeros((6, 6), dtype=dtype, order="F")
        transform_into(array, code, out)
        np.testing.assert_array_equal(out, reference(array, code))


def test_transform_into_refuses_a_destination_of_another_shape():
    array = distinct_values((4, 9), np.int16)
    with pytest.raises(ValueError, match=r"code 1 turns \(4, 9\) into \(9, 4\)"):
        transform_into(array, 1, np.empty((4, 9), dtype=np.float32))
    with pytest.raises(ValueError, match="code 4"):
        transform_into(array, 4, np.empty((9, 4), dtype=np.int16))


def test_transform_into_copies_what_opencv_returns_when_it_does_not_write_the_destination(
    monkeypatch,
):
    """OpenCV allocates its own result when a ``dst`` does not fit it; the result is then copied
    in. Simulated by an OpenCV whose calls drop ``dst`` (passed last, by position)."""
    import cv2

    class IgnoresDestination:
        def __getattr__(self, name):
            attribute = getattr(cv2, name)
            if not callable(attribute):
                return attribute
            return lambda *args: attribute(*args[:-1])

    monkeypatch.setitem(sys.modules, "cv2", IgnoresDestination())
    monkeypatch.setattr(loader.augment, "_opencv_calls", None)  # made again, from the stand-in
    for dtype in (np.int16, np.bool_):
        array = distinct_values((6, 6), dtype)
        for code in range(8):
            for out_dtype in (dtype, np.float32):
                out = np.zeros((6, 6), dtype=out_dtype)
                transform_into(array, code, out, np.zeros((6, 6), dtype=dtype))
                np.testing.assert_array_equal(out, reference(array, code).astype(out_dtype))


def test_the_codes_are_the_documented_splitmix64_draw_as_before():
    rows = np.arange(0, 4000, 7)
    for seed, epoch in [(0, 0), (3, 2), (12345, 99)]:
        for square in (True, False):
            codes = transform_codes(seed, epoch, rows, square=square)
            assert codes.tolist() == [expected_code(seed, epoch, r, square) for r in rows.tolist()]
    # what the loader drew before the orientations existed (main at 5fe20e6), pinned
    assert transform_codes(7, 3, np.arange(16)).tolist() == [
        6, 0, 0, 4, 3, 2, 1, 7, 0, 6, 6, 6, 6, 5, 6, 4
    ]  # fmt: skip
    assert transform_codes(7, 3, np.arange(16), square=False).tolist() == [
        6, 0, 0, 4, 2, 2, 0, 6, 0, 6, 6, 6, 6, 4, 6, 4
    ]  # fmt: skip
    assert set(transform_codes(0, 0, np.arange(200)).tolist()) == set(range(8))


# ------------------------------------------------------------------------- served end to end


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    """17 samples of 6x6, every one with an o-contour that some mask pixels lie outside of."""
    return build_dataset(
        tmp_path_factory.mktemp("square"), (4, 6, 2, 5), shape=(6, 6), omask_every=1, nested=False
    )


@pytest.fixture(scope="module")
def oblong(tmp_path_factory):
    """13 samples of 5x8 (non-square), every one with an o-contour."""
    return build_dataset(
        tmp_path_factory.mktemp("oblong"), (6, 7), shape=(5, 8), omask_every=1, nested=False
    )


def check_batch(data, batch, epoch: int, seed: int, square: bool) -> list[int]:
    """Assert every slot of ``batch`` (images, mask, omask, labels, rows) is its stored sample
    transformed by its expected code; returns the rows."""
    images, masks, omasks, labels, rows = batch
    for slot, row in enumerate(rows.tolist()):
        code = expected_code(seed, epoch, row, square)
        stored_labels = expected_labels(data.masks[row], data.omasks[row])
        np.testing.assert_array_equal(images[slot], reference(data.images[row], code))
        np.testing.assert_array_equal(masks[slot], reference(data.masks[row], code))
        np.testing.assert_array_equal(omasks[slot], reference(data.omasks[row], code))
        np.testing.assert_array_equal(labels[slot], reference(stored_labels, code))
    return rows.tolist()


OPTIONS = [
    dict(cache=False, prefetch=0),
    dict(cache=False, prefetch=2),
    dict(cache=True, prefetch=0),
    dict(cache=True, prefetch=2),
    dict(cache=True, prefetch=2, dtype=np.int16),
    dict(cache=False, prefetch=0, dtype=np.float64),
    dict(cache=False, prefetch=2, dtype=np.int16),  # the images straight into their slots
]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("which", ["square", "oblong"])
def test_every_sample_of_every_epoch_is_its_stored_arrays_transformed_by_its_code(
    request, which, options
):
    data = request.getfixturevalue(which)
    seed = 11
    batches = BatchLoader(
        data.root, batch_size=3, seed=seed, augment=True, targets=TARGETS, with_rows=True, **options
    )
    codes = set()
    for epoch in range(4):  # the first epoch fills the cache, the next ones read it
        served = []
        for batch in batches:
            assert batch[0].dtype == options.get("dtype", np.float32)
            served += check_batch(data, batch, epoch, seed, which == "square")
            codes.update(expected_code(seed, epoch, row, which == "square") for row in batch[-1])
            del batch  # as a training loop does: the batch arrays get reused
        assert sorted(served) == list(range(len(data)))  # exactly once
    assert codes == (set(range(8)) if which == "square" else {0, 2, 4, 6})


@pytest.fixture(scope="module")
def rescaled(tmp_path_factory):
    """11 samples of 7x7 stored as float32 (as rescaled DICOMs are), every one with an
    o-contour."""
    return build_dataset(
        tmp_path_factory.mktemp("rescaled"),
        (5, 6),
        shape=(7, 7),
        image_dtype="float32",
        omask_every=1,
        nested=False,
    )


@pytest.mark.parametrize("cache", [False, True])
@pytest.mark.parametrize("targets", [("labels",), ("mask",), ("omask", "mask")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_targets_and_stored_dtype_are_transformed_alike(rescaled, cache, targets, dtype):
    """float32 images into float32 batches (the uncached transform lands straight in the slot)
    or float64 ones (through the buffer); labels alone (made, then transformed once), a mask
    alone, targets in another order; batches of 4 of 11 samples, so the last one is short."""
    seed = 5
    batches = BatchLoader(
        rescaled.root, batch_size=4, seed=seed, augment=True, targets=targets, with_rows=True,
        cache=cache, dtype=dtype, prefetch=0,
    )  # fmt: skip
    for epoch in range(3):
        served = []
        for images, *served_targets, rows in batches:
            assert images.dtype == dtype
            for slot, row in enumerate(rows.tolist()):
                code = expected_code(seed, epoch, row, True)
                stored = {
                    "mask": rescaled.masks[row],
                    "omask": rescaled.omasks[row],
                    "labels": expected_labels(rescaled.masks[row], rescaled.omasks[row]),
                }
                np.testing.assert_array_equal(images[slot], reference(rescaled.images[row], code))
                for name, batch in zip(targets, served_targets, strict=True):
                    np.testing.assert_array_equal(batch[slot], reference(stored[name], code))
            served += rows.tolist()
        assert sorted(served) == list(range(len(rescaled)))


@pytest.mark.parametrize("cache", [False, True])
def test_shards_and_resume_serve_the_same_transformed_samples(square, cache):
    seed = 4
    options = dict(batch_size=2, seed=seed, augment=True, targets=TARGETS, with_rows=True)
    per_epoch: dict[int, list[int]] = {1: [], 2: []}
    for rank in (0, 1):
        shard = BatchLoader(square.root, rank=rank, world_size=2, cache=cache, **options)
        shard.set_epoch(1)
        for batch in shard:
            per_epoch[1] += check_batch(square, batch, 1, seed, True)
        # leave epoch 2 after two batches, then resume in a new loader from the saved state
        stream = iter(shard)
        for _ in range(2):
            per_epoch[2] += check_batch(square, next(stream), 2, seed, True)
        state = shard.state_dict()
        resumed = BatchLoader(square.root, rank=rank, world_size=2, cache=cache, **options)
        resumed.load_state_dict(state)
        for batch in resumed:
            per_epoch[2] += check_batch(square, batch, 2, seed, True)
    for served in per_epoch.values():
        # 17 samples on 2 ranks: one padded from the start of the order, served twice
        assert len(served) == 18 and set(served) == set(range(17))


def test_the_cache_keeps_the_orientations_the_codes_need(square, oblong):
    def orientations(data, **options):
        batches = BatchLoader(data.root, batch_size=4, cache=True, **options)
        return batches._reader._cache.orientations

    assert orientations(square, augment=True) == 4  # every code, one row copy each
    assert orientations(oblong, augment=True) == 2  # the shape-keeping codes
    assert orientations(square) == orientations(oblong) == 1  # without augmentation: as before


def test_a_cache_whose_orientations_do_not_fit_keeps_one_warns_and_serves_the_same(
    square, monkeypatch
):
    # one orientation of 17 6x6 samples (int16 image + 3 one-byte targets) is 3,060 bytes
    monkeypatch.setattr(loader.cache, "available_memory", lambda: 6_000)
    options = dict(batch_size=3, seed=2, augment=True, targets=TARGETS, with_rows=True)
    with pytest.warns(UserWarning, match="4 orientations .* keeping one"):
        cached = BatchLoader(square.root, cache=True, **options)
    assert cached._reader._cache.orientations == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for epoch in range(3):
            served = [row for batch in cached for row in check_batch(square, batch, epoch, 2, True)]
            assert sorted(served) == list(range(17))
    monkeypatch.setattr(loader.cache, "available_memory", lambda: 3_000)
    with pytest.raises(loader.cache.CacheTooLargeError):
        BatchLoader(square.root, cache=True, **options)
