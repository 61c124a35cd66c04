"""The PyTorch ``IterableDataset`` behind ``loader.torch_dataset`` (see its documentation).

Imports torch: import this module only through ``loader.torch_dataset``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch.utils import data

from loader.batch_loader import BatchLoader

__all__ = ["MAX_WORKERS", "TorchBatches"]

#: Worker processes one dataset can count passes for (one int64 each, in shared memory).
MAX_WORKERS = 256


class TorchBatches(data.IterableDataset):
    """One epoch of a BatchLoader per pass, as tensors; split between DataLoader workers.

    Args:
        batches: the BatchLoader to serve.
    """

    def __init__(self, batches: BatchLoader):
        super().__init__()
        self.batches = batches
        # [0]: the epoch of the first pass; [1 + w]: passes worker w started since then. In
        # shared memory, so that worker processes (copies of this object) count in it and the
        # count outlives them.
        self._passes = torch.zeros(1 + MAX_WORKERS, dtype=torch.int64).share_memory_()
        self._passes[0] = batches.epoch

    def __len__(self) -> int:
        """Batches per epoch (of this rank), whatever the number of workers."""
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass serve ``epoch``, with workers or without."""
        self.batches.set_epoch(epoch)
        self._passes[0] = epoch
        self._passes[1:] = 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        worker = data.get_worker_info()
        if worker is None:
            return _tensors(iter(self.batches))
        if worker.num_workers > MAX_WORKERS:
            raise RuntimeError(
                f"torch_dataset supports up to {MAX_WORKERS} DataLoader workers, got "
                f"num_workers={worker.num_workers}"
            )
        # Counted here, not in a generator: DataLoader calls iter() once per pass in every
        # worker, but a generator's body would not run for a worker that is stopped early.
        slot = 1 + worker.id
        epoch = int(self._passes[0] + self._passes[slot])
        self._passes[slot] += 1
        numbers = range(worker.id, len(self.batches), worker.num_workers)
        return _tensors(self.batches.iter_batches(epoch, numbers))


def _tensors(source: Iterable[tuple]) -> Iterator[tuple[torch.Tensor, ...]]:
    for batch in source:
        yield tuple(torch.from_numpy(array) for array in batch)
