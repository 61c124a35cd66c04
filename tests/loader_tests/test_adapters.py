"""Framework adapters: free when the framework is absent, correct when it is present."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest
from loader_helpers import build_dataset

import loader.adapters
from conftest import REPO
from loader import BatchLoader, keras_dataset, torch_dataset


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_dataset(tmp_path_factory.mktemp("ds"), study_sizes=(3, 4))


def test_importing_loader_imports_no_framework_and_no_pandas():
    code = (
        "import sys, loader; "
        "print(sorted(m for m in ('torch', 'keras', 'tensorflow', 'pandas', 'pyarrow') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_missing_framework_gives_an_import_error_saying_what_to_install(built, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # makes "import keras" fail
    loader.adapters._keras_class.cache_clear()
    with pytest.raises(ImportError, match="pip install keras"):
        keras_dataset(BatchLoader(built.root, batch_size=2))
    loader.adapters._keras_class.cache_clear()


def test_torch_dataset_serves_the_loaders_batches_as_tensors(built):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    expected = BatchLoader(built.root, batch_size=3, seed=1)
    dataset = torch_dataset(BatchLoader(built.root, batch_size=3, seed=1))
    assert len(dataset) == 3
    for _ in range(2):  # two epochs, each reshuffled like the loader's
        pairs = zip(DataLoader(dataset, batch_size=None), expected, strict=True)
        for (images, masks), (want_images, want_masks) in pairs:
            assert images.dtype == torch.float32 and masks.dtype == torch.bool
            np.testing.assert_array_equal(images.numpy(), want_images)
            np.testing.assert_array_equal(masks.numpy(), want_masks)


def test_torch_dataset_refuses_worker_processes(built):
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    data = DataLoader(
        torch_dataset(BatchLoader(built.root, batch_size=3)), batch_size=None, num_workers=1
    )
    with pytest.raises(RuntimeError, match="num_workers=0"):
        list(data)


@pytest.fixture
def fake_keras(monkeypatch):
    """A stand-in for keras with just ``keras.utils.PyDataset`` (Keras 3's base class)."""

    class PyDataset:
        def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
            self.workers = workers

    keras = types.ModuleType("keras")
    keras.utils = types.SimpleNamespace(PyDataset=PyDataset)
    monkeypatch.setitem(sys.modules, "keras", keras)
    loader.adapters._keras_class.cache_clear()
    yield keras
    loader.adapters._keras_class.cache_clear()


def test_keras_dataset_serves_batches_by_number_and_moves_on_after_each_epoch(built, fake_keras):
    expected = BatchLoader(built.root, batch_size=3, seed=2)
    batches = BatchLoader(built.root, batch_size=3, seed=2)
    dataset = keras_dataset(batches, workers=2)
    assert isinstance(dataset, fake_keras.utils.PyDataset) and dataset.workers == 2
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


def test_keras_dataset_can_keep_the_loaders_shapes_and_bool_masks(built, fake_keras):
    dataset = keras_dataset(
        BatchLoader(built.root, batch_size=7), channel_axis=False, mask_dtype=None
    )
    images, masks = dataset[0]
    assert images.shape == masks.shape == (7, 8, 8)
    assert masks.dtype == np.bool_
