"""Batches of images and their targets (masks, o-contour masks or labels) for training, read from
a built, versioned dataset.

>>> from loader import BatchLoader
>>> batches = BatchLoader("results/1.0.0", batch_size=8, seed=0, split="train")  # doctest: +SKIP
>>> for images, masks in batches:  # one pass = one epoch  # doctest: +SKIP
...     ...

Public names: :class:`BatchLoader`, :class:`DatasetIndex` (an opened dataset version), the errors
they raise, the framework adapters :func:`torch_dataset` and :func:`keras_dataset` (which
import their framework only when called), :func:`monai_transforms` (the MONAI transforms
that load the samples of an exported datalist; ``loader.export``, ``docs/exports.md``), and
:func:`load_cine`, a study's every frame from a version built with ``frames: all``
(``docs/frames.md``), and :func:`save_prediction`, which writes a model's prediction for one
sample into a predictions folder that ``python -m loader evaluate`` scores
(:mod:`loader.evaluation`).
``python -m loader --help`` lists the commands.
"""

from loader.adapters import keras_dataset, torch_dataset
from loader.batch_loader import BatchLoader
from loader.cache import CacheTooLargeError
from loader.cine import CineError, load_cine
from loader.evaluation.predictions import PredictionError, save_prediction
from loader.export.monai import monai_transforms
from loader.index import DatasetIndex
from loader.index_columns import DatasetIndexError
from loader.manifest import DatasetNotFinishedError, DatasetVerificationError
from loader.sample_file import SampleFileError

__all__ = [
    "BatchLoader",
    "CacheTooLargeError",
    "CineError",
    "DatasetIndex",
    "DatasetIndexError",
    "DatasetNotFinishedError",
    "DatasetVerificationError",
    "PredictionError",
    "SampleFileError",
    "keras_dataset",
    "load_cine",
    "monai_transforms",
    "save_prediction",
    "torch_dataset",
]
