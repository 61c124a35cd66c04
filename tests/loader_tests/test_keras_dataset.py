"""The Keras 3 adapter: batches by number, a new epoch after each one, and ``model.fit`` on them.

The behaviour tests run twice: against a stand-in for ``keras.utils.PyDataset`` (so they run
where Keras is not installed) and against Keras 3 itself, with the torch backend (skipped
cleanly where keras or torch is absent).
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest
from loader_helpers import build_dataset

from loader import BatchLoader, keras_dataset


def real_keras():
    pytest.importorskip("torch")  # the backend these tests use; no JAX or TensorFlow needed
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def stand_in_keras(monkeypatch):
    """A stand-in for keras with just ``keras.utils.PyDataset`` (Keras 3's base class)."""

    class PyDataset:
        def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
            self.workers = workers

    keras = types.ModuleType("keras")
    keras.utils = types.SimpleNamespace(PyDataset=PyDataset)
    monkeypatch.setitem(sys.modules, "keras", keras)
    return keras


@pytest.fixture(params=["stand-in", "keras 3"])
def keras(request, monkeypatch):
    if request.param == "keras 3":
        yield real_keras()
        return
    # The adapter's module subclasses keras.utils.PyDataset: it is imported anew over the
    # stand-in, and dropped afterwards so that Keras itself gets a module of its own.
    sys.modules.pop("loader.keras_adapter", None)
    yield stand_in_keras(monkeypatch)
    sys.modules.pop("loader.keras_adapter", None)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """7 samples (3 train, 4 train), o-contours on rows 0, 2, 4, 6."""
    return build_dataset(tmp_path_factory.mktemp("ds"), study_sizes=(3, 4))


def test_keras_dataset_serves_batches_by_number_and_moves_on_after_each_epoch(built, keras):
    expected = BatchLoader(built.root, batch_size=3, seed=2)
    batches = BatchLoader(built.root, batch_size=3, seed=2)
    dataset = keras_dataset(batches, workers=2)
    assert isinstance(dataset, keras.utils.PyDataset) and dataset.workers == 2
    assert len(dataset) == 3
    for epoch in range(2):
        for number, (want_images, want_masks) in enumerate(expected):
            images, masks = dataset[number]
            assert images.shape == (len(want_images), 8, 8, 1)
            assert masks.dtype == np.float32
            np.testing.assert_array_equal(images[..., 0], want_images)
            np.testing.assert_array_equal(masks[..., 0], want_masks)
        dataset.on_epoch_end()
        assert batches.epoch == epoch + 1
    with pytest.raises(IndexError):
        dataset[3]


def test_keras_dataset_can_keep_the_loaders_shapes_and_bool_masks(built, keras):
    dataset = keras_dataset(
        BatchLoader(built.root, batch_size=7), channel_axis=False, mask_dtype=None
    )
    images, masks = dataset[0]
    assert images.shape == masks.shape == (7, 8, 8)
    assert masks.dtype == np.bool_


def test_several_targets_are_one_tuple_and_labels_stay_uint8(built, keras):
    batches = BatchLoader(built.root, batch_size=4, shuffle=False, targets=("mask", "labels"))
    images, (masks, labels) = keras_dataset(batches)[0]
    assert images.shape == masks.shape == labels.shape == (4, 8, 8, 1)
    assert masks.dtype == np.float32 and labels.dtype == np.uint8
    rows = [0, 2, 4, 6]
    np.testing.assert_array_equal(masks[..., 0], np.stack([built.masks[r] for r in rows]))
    want = [np.where(built.masks[r], 1, np.where(built.omasks[r], 2, 0)) for r in rows]
    np.testing.assert_array_equal(labels[..., 0], np.stack(want))


def test_a_loader_with_rows_is_refused(built, keras):
    with pytest.raises(ValueError, match="sample weights"):
        keras_dataset(BatchLoader(built.root, batch_size=4, with_rows=True))


# ------------------------------------------------------------------------- model.fit, Keras 3


def record_batches(batches: BatchLoader) -> list[tuple[int, int]]:
    """Make ``batches.batch`` record the (epoch, number) of each batch Keras asks for."""
    asked: list[tuple[int, int]] = []
    read = batches.batch

    def batch(number, epoch=None):
        asked.append((epoch, number))
        return read(number, epoch)

    batches.batch = batch
    return asked


def test_model_fit_trains_two_epochs_on_the_loaders_masks(tmp_path):
    keras = real_keras()
    data = build_dataset(tmp_path, study_sizes=(3, 4, 2))
    batches = BatchLoader(data.root, batch_size=4, seed=0)
    asked = record_batches(batches)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Rescaling(1 / 1000),
            keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(keras_dataset(batches), epochs=2, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    # Two epochs of the loader were served whole, in order, each batch once. (Keras 3 peeks at
    # a batch to build an unbuilt model and then ends that "epoch" with on_epoch_end, so the
    # first trained epoch may be the loader's epoch 1.)
    whole = [
        e for e in sorted({e for e, _ in asked}) if {n for f, n in asked if f == e} == {0, 1, 2}
    ]
    assert len(whole) == 2 and whole[1] == whole[0] + 1
    for epoch in whole:
        assert [n for f, n in asked if f == epoch] == [0, 1, 2]
    assert all(e < whole[0] for e, _ in asked if e not in whole)  # only a peek before them
    assert batches.epoch == whole[1] + 1


def test_model_fit_trains_on_labels_with_a_sparse_categorical_loss(tmp_path):
    keras = real_keras()
    data = build_dataset(tmp_path, study_sizes=(3, 4, 2), omask_every=1, nested=False)
    batches = BatchLoader(data.root, batch_size=4, seed=1, targets="labels")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Rescaling(1 / 1000),
            keras.layers.Conv2D(3, 3, padding="same"),  # logits of the 3 classes
        ]
    )
    # from_logits: with softmax outputs, Keras 3.15's torch backend fails in backward
    # ("grad_input must be contiguous") on any (B, H, W, 3) output, whatever the labels' layout.
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss=loss)
    history = model.fit(keras_dataset(batches), epochs=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 2 and all(np.isfinite(history.history["loss"]))
    assert batches.epoch >= 2
