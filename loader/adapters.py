"""Thin adapters from a BatchLoader to PyTorch (an ``IterableDataset`` that splits each epoch
between ``DataLoader`` worker processes) and to Keras 3 (a ``PyDataset``).

Neither framework is a dependency of this package: each adapter imports its framework (and the
module holding its classes, ``loader.torch_adapter`` or ``loader.keras_adapter``) when it is
called, so ``import loader`` costs nothing extra, and calling one without the framework installed
raises ImportError saying what to install. The classes live at module level so that worker
processes started with ``spawn`` or ``forkserver`` can unpickle them.
"""

from __future__ import annotations

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

    Each pass serves one epoch of ``batches``: the arrays of each batch (images, targets, and
    rows with ``with_rows``) become tensors without a copy (``torch.from_numpy``).

    Args:
        batches: the BatchLoader to serve.

    Returns:
        A dataset with ``len()`` (batches per epoch) and ``set_epoch(n)``, for
        ``DataLoader(dataset, batch_size=None, num_workers=W)``.

    Notes:
        - ``num_workers=0``: the passes are the loader's own: it prefetches in a thread, advances
          its epoch after each pass, and ``batches.state_dict()`` resumes mid-epoch.
        - ``num_workers=W > 0``: each worker process has a copy of the loader and reads every
          ``W``-th batch of the epoch (worker ``w`` reads batches ``w, w + W, ...``, with the
          loader's own prefetch thread), so the workers together serve every sample of the
          rank's epoch exactly once. ``DataLoader`` takes one batch from each worker in turn
          (its default ``in_order=True``), so the batches arrive in the loader's order: the same
          as with ``num_workers=0``, whatever ``W``. With ``in_order=False`` the order depends
          on timing; the epoch's content does not.
        - Epochs with workers: pass ``k`` of the ``DataLoader`` serves epoch ``e0 + k``, where
          ``e0`` is the loader's epoch when ``torch_dataset`` was called, or the epoch last given
          to ``dataset.set_epoch``. Each worker counts the passes it started in shared memory,
          which outlives worker processes, so this holds with ``persistent_workers=False`` (new
          workers each pass, copied from the main process) and with ``True`` alike. A pass left
          early still counts. Calling ``dataset.set_epoch(epoch)`` before each pass, as with
          ``DistributedSampler``, gives the same epochs; it is needed only to jump. Use one
          ``num_workers`` per dataset object (or ``set_epoch`` after changing it); at most
          ``loader.torch_adapter.MAX_WORKERS`` (256) workers.
        - Resuming mid-epoch is not available with workers (the main process's loader does not
          see their progress); resume at an epoch boundary with ``set_epoch``.
        - ``cache=True`` with workers: each worker process fills its own cache, so memory grows
          ``W``-fold, and with ``persistent_workers=False`` each cache is lost after its pass.
        - Worker processes started with ``spawn``/``forkserver`` receive a pickled copy of the
          loader (the batch-array pools start empty); with ``fork`` they share its memory.

    Example:
        >>> from torch.utils.data import DataLoader  # doctest: +SKIP
        >>> dataset = torch_dataset(batches)  # doctest: +SKIP
        >>> data = DataLoader(dataset, batch_size=None, num_workers=2)  # doctest: +SKIP
        >>> for epoch in range(10):  # doctest: +SKIP
        ...     for images, masks in data:  # each epoch freshly shuffled
        ...         loss = model(images[:, None]), masks[:, None]  # (B, 1, H, W)
    """
    _require("torch", "loader.torch_dataset")
    from loader.torch_adapter import TorchBatches

    return TorchBatches(batches)


def keras_dataset(
    batches: BatchLoader,
    channel_axis: bool = True,
    mask_dtype: Any = "float32",
    **pydataset_options: Any,
) -> Any:
    """A ``keras.utils.PyDataset`` serving the batches of ``batches`` by number.

    Keras asks for batch ``i`` of the current epoch (possibly from several threads) and calls
    ``on_epoch_end`` after each epoch, which moves the adapter and the loader to the next epoch.
    Each item is ``(images, y)``: ``y`` is the target array for one target (``"mask"``,
    ``"labels"``), a tuple of them for several (a model with as many outputs).

    Args:
        batches: the BatchLoader to serve; ``with_rows`` is refused (Keras would take the rows
            for sample weights). Its prefetch thread is not used: Keras's own ``workers`` option
            reads ahead.
        channel_axis: add a trailing channel axis to images and targets, giving ``(B, H, W, 1)``
            as Keras's channels-last layers expect (sparse categorical losses accept labels of
            that shape). Default True.
        mask_dtype: dtype of the ``mask``/``omask`` targets (Keras losses want numbers). Default
            float32; None keeps bool. ``labels`` stay uint8 (Keras's sparse losses cast them).
        **pydataset_options: passed to ``PyDataset`` (``workers``, ``use_multiprocessing``,
            ``max_queue_size``).

    Notes:
        - Pass ``shuffle=False`` to ``fit``: the loader already serves each epoch in a fresh,
          seeded order; Keras's own ``shuffle`` reorders whole batches with Python's global
          ``random``, which the loader's seed does not fix.
        - Keras 3 (3.15, measured) builds an unbuilt model on ``fit`` by reading one batch and
          then calling ``on_epoch_end``: that moves the loader on by one epoch before training,
          so the first trained epoch is the loader's epoch ``e0 + 1``. Every trained epoch is
          still one whole epoch, each batch once.

    Example:
        >>> model.fit(keras_dataset(batches), epochs=10, shuffle=False)  # doctest: +SKIP
    """
    if batches.with_rows:
        raise ValueError(
            "keras_dataset serves (images, targets); Keras would read a third array (the rows "
            "of with_rows=True) as sample weights: use a loader without with_rows"
        )
    _require("keras", "loader.keras_dataset")
    from loader.keras_adapter import KerasBatches

    return KerasBatches(batches, channel_axis, mask_dtype, **pydataset_options)
