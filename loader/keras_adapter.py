"""The Keras 3 ``PyDataset`` behind ``loader.keras_dataset`` (see its documentation).

Imports keras: import this module only through ``loader.keras_dataset``.
"""

from __future__ import annotations

from typing import Any

import keras

from loader.batch_loader import BatchLoader

__all__ = ["KerasBatches"]


class KerasBatches(keras.utils.PyDataset):
    """Batch ``i`` of the current epoch of a BatchLoader; a new epoch after each one.

    Args:
        batches: the BatchLoader to serve (without ``with_rows``).
        channel_axis: add a trailing channel axis to images and targets.
        mask_dtype: dtype of bool targets; None keeps bool.
        **options: passed to ``keras.utils.PyDataset``.
    """

    def __init__(self, batches: BatchLoader, channel_axis: bool, mask_dtype: Any, **options):
        super().__init__(**options)
        self.batches = batches
        self.channel_axis = channel_axis
        self.mask_dtype = mask_dtype
        self.epoch = batches.epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, number: int):
        if not 0 <= number < len(self.batches):
            raise IndexError(f"batch {number} out of range ({len(self.batches)} batches)")
        images, *targets = self.batches.batch(number, epoch=self.epoch)
        if self.mask_dtype is not None:
            targets = [t.astype(self.mask_dtype) if t.dtype == bool else t for t in targets]
        if self.channel_axis:
            images, targets = images[..., None], [t[..., None] for t in targets]
        return images, targets[0] if len(targets) == 1 else tuple(targets)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.batches.set_epoch(self.epoch)
