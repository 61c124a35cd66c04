"""Thin adapters from a BatchLoader to PyTorch and Keras.

Neither framework is a dependency of this package: each adapter imports its framework when it is
called, so ``import loader`` costs nothing extra, and calling one without the framework installed
raises ImportError saying what to install.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loader.batch_loader import BatchLoader

__all__ = ["keras_dataset", "torch_dataset"]


def _require(module: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed "
            f"(pip install {module.split('.')[0]})"
        ) from exc


def torch_dataset(batches: BatchLoader) -> Any:
    """A ``torch.utils.data.IterableDataset`` whose items are whole batches, as torch tensors.

    Each pass serves one epoch of ``batches`` (the loader advances its epoch, prefetches and keeps
    its state as usual); images and masks become tensors without a copy (``torch.from_numpy``).

    Args:
        batches: the BatchLoader to serve.

    Notes:
        Use it with ``DataLoader(dataset, batch_size=None, num_workers=0)`` or iterate it
        directly: the batches are already made, and the loader prefetches in a thread itself.
        In DataLoader worker processes it raises RuntimeError, because each worker would serve
        the whole epoch again.

    Example:
        >>> from torch.utils.data import DataLoader  # doctest: +SKIP
        >>> data = DataLoader(torch_dataset(batches), batch_size=None)  # doctest: +SKIP
        >>> for images, masks in data:  # doctest: +SKIP
        ...     loss = model(images[:, None]), masks[:, None]  # (B, 1, H, W)
    """
    return _torch_class()(batches)


@functools.cache
def _torch_class() -> type:
    torch = _require("torch", "loader.torch_dataset")
    data = _require("torch.utils.data", "loader.torch_dataset")

    class TorchBatches(data.IterableDataset):
        """One epoch of a BatchLoader per pass, as (images, masks) tensors."""

        def __init__(self, batches: BatchLoader):
            super().__init__()
            self.batches = batches

        def __len__(self) -> int:
            return len(self.batches)

        def __iter__(self):
            if data.get_worker_info() is not None:
                raise RuntimeError(
                    "torch_dataset serves ready batches and prefetches itself: use "
                    "DataLoader(dataset, batch_size=None, num_workers=0)"
                )
            for images, masks in self.batches:
                yield torch.from_numpy(images), torch.from_numpy(masks)

    return TorchBatches


def keras_dataset(
    batches: BatchLoader,
    channel_axis: bool = True,
    mask_dtype: Any = "float32",
    **pydataset_options: Any,
) -> Any:
    """A ``keras.utils.PyDataset`` serving the batches of ``batches`` by number.

    Keras asks for batch ``i`` of the current epoch (possibly from several threads) and calls
    ``on_epoch_end`` after each epoch, which moves the adapter and the loader to the next epoch.

    Args:
        batches: the BatchLoader to serve. Its prefetch thread is not used: Keras's own
            ``workers`` option reads ahead.
        channel_axis: add a trailing channel axis, giving ``(B, H, W, 1)`` as Keras's
            channels-last layers expect. Default True.
        mask_dtype: dtype of the mask targets (Keras losses want numbers). Default float32;
            None keeps bool.
        **pydataset_options: passed to ``PyDataset`` (``workers``, ``use_multiprocessing``,
            ``max_queue_size``).

    Example:
        >>> model.fit(keras_dataset(batches, workers=1), epochs=10)  # doctest: +SKIP
    """
    return _keras_class()(batches, channel_axis, mask_dtype, **pydataset_options)


@functools.cache
def _keras_class() -> type:
    keras = _require("keras", "loader.keras_dataset")

    class KerasBatches(keras.utils.PyDataset):
        """Batch ``i`` of the current epoch of a BatchLoader; a new epoch after each one."""

        def __init__(self, batches, channel_axis, mask_dtype, **options):
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
            images, masks = self.batches.batch(number, epoch=self.epoch)
            if self.mask_dtype is not None:
                masks = masks.astype(self.mask_dtype)
            if self.channel_axis:
                images, masks = images[..., None], masks[..., None]
            return images, masks

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.batches.set_epoch(self.epoch)

    return KerasBatches
