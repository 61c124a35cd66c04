"""The order in which a loader serves samples: a pure function of (seed, epoch, rank, world size).

Nothing about the order is stored. The permutation of an epoch is computed from a counter-based
hash (SplitMix64) of ``(seed, epoch, position)``, so it is the same on every machine and numpy
version, and a loader's progress is two integers: the epoch and the number of batches served.

Sharding for data-parallel training follows ``torch.utils.data.DistributedSampler``: the epoch's
order is cut into ``world_size`` interleaved shards (rank ``r`` takes positions ``r, r + W, ...``).
Every rank gets the same number of samples, and so the same number of batches:

- ``drop_last=False`` (default): when ``W`` does not divide ``N``, the order is padded by repeating
  it from its start (``N = 10, W = 4`` serves 12 samples; the epoch's first two samples are served
  twice, on different ranks). Each rank's last batch may be short; it is equally short on every
  rank. With ``W = 1`` nothing is padded: every sample exactly once.
- ``drop_last=True``: the last ``N mod (W * batch_size)`` samples of the epoch's order are left out,
  so that every rank serves only full batches. With shuffling, a different set is left out each
  epoch.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

__all__ = ["EpochSampler", "splitmix64"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1

# Stream tags keep the hashes drawn for different purposes independent of each other.
STREAM_ORDER = 1
STREAM_AUGMENT = 2


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def splitmix64(keys: tuple[int, ...], counters: np.ndarray) -> np.ndarray:
    """Hash each counter under a key of non-negative integers; returns uint64, one per counter.

    The key is folded into one 64-bit state (each element mixed in turn), then counter ``i`` gets
    SplitMix64's output for state ``+ (i + 1) * golden``: a counter-based generator, so any
    element can be computed without the others, independently of threads or batch boundaries.
    """
    state = np.zeros(1, dtype=np.uint64)
    for key in keys:
        state = _mix(state ^ np.array([key & _MASK64], dtype=np.uint64)) + _GOLDEN
    counters = np.asarray(counters, dtype=np.uint64)
    return _mix(state + (counters + np.uint64(1)) * _GOLDEN)


def _check_int(name: str, value: object, minimum: int) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


@dataclass(frozen=True)
class EpochSampler:
    """The batches of sample positions ``0 .. num_samples-1`` that one rank serves in an epoch.

    Args:
        num_samples: samples in the collection being served (> 0).
        batch_size: samples per batch (> 0).
        shuffle: a new random order each epoch (True) or positions in order (False).
        seed: non-negative integer; with ``epoch`` it fixes the order. Default 0.
        drop_last: leave out the tail so that every batch is full (see the module docstring).
        rank: this process's shard, ``0 <= rank < world_size``. Default 0.
        world_size: number of shards. Default 1.

    Notes:
        All methods are pure functions of the fields and ``epoch``: two samplers with equal fields
        give equal batches on any machine.

    Example:
        >>> sampler = EpochSampler(10, batch_size=4, seed=0)
        >>> len(sampler)
        3
        >>> sorted(np.concatenate(sampler.batches(epoch=0)).tolist()) == list(range(10))
        True
    """

    num_samples: int
    batch_size: int
    shuffle: bool = True
    seed: int = 0
    drop_last: bool = False
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        _check_int("num_samples", self.num_samples, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("seed", self.seed, 0)
        _check_int("world_size", self.world_size, 1)
        _check_int("rank", self.rank, 0)
        if self.seed > _MASK64:
            raise ValueError(f"seed must be < 2**64, got {self.seed}")
        if self.rank >= self.world_size:
            raise ValueError(
                f"rank must be in [0, world_size), got rank={self.rank} with "
                f"world_size={self.world_size}"
            )
        if self.drop_last and self.samples_per_rank == 0:
            raise ValueError(
                f"drop_last=True leaves no batch: {self.num_samples} sample(s) is fewer than "
                f"batch_size {self.batch_size} x world_size {self.world_size}"
            )

    @property
    def samples_per_rank(self) -> int:
        """Samples this rank serves per epoch (the same on every rank)."""
        if self.drop_last:
            per_step = self.world_size * self.batch_size
            return self.num_samples // per_step * self.batch_size
        return -(-self.num_samples // self.world_size)

    def __len__(self) -> int:
        """Batches per epoch (the same on every rank)."""
        if self.drop_last:
            return self.samples_per_rank // self.batch_size
        return -(-self.samples_per_rank // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's order of all positions (int64), before sharding."""
        epoch = _check_int("epoch", epoch, 0)
        positions = np.arange(self.num_samples, dtype=np.int64)
        if not self.shuffle:
            return positions
        keys = splitmix64((STREAM_ORDER, self.seed, epoch), positions)
        return np.argsort(keys, kind="stable").astype(np.int64, copy=False)

    def shard(self, epoch: int) -> np.ndarray:
        """The positions this rank serves in the epoch, in serving order."""
        order = self.order(epoch)
        used = self.samples_per_rank * self.world_size
        # np.resize repeats the order from its start to pad, or cuts it to drop the tail.
        return np.resize(order, used)[self.rank :: self.world_size]

    def batches(self, epoch: int) -> list[np.ndarray]:
        """The epoch's batches of positions for this rank."""
        shard = self.shard(epoch)
        return [shard[start : start + self.batch_size] for start in self._starts()]

    def _starts(self) -> range:
        return range(0, len(self) * self.batch_size, self.batch_size)
