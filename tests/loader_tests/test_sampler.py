"""The serving order as a pure function: exactly-once epochs, reshuffling, determinism, shards."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loader.sampler import EpochSampler, splitmix64

sizes = st.integers(min_value=1, max_value=300)
batch_sizes = st.integers(min_value=1, max_value=40)
world_sizes = st.integers(min_value=1, max_value=9)
seeds = st.integers(min_value=0, max_value=2**64 - 1)
epochs = st.integers(min_value=0, max_value=10_000)
fast = settings(max_examples=150, deadline=None)


def served(sampler: EpochSampler, epoch: int) -> list[int]:
    return np.concatenate(sampler.batches(epoch)).tolist()


@fast
@given(n=sizes, batch_size=batch_sizes, seed=seeds, epoch=epochs, shuffle=st.booleans())
def test_one_rank_epoch_serves_every_sample_exactly_once(n, batch_size, seed, epoch, shuffle):
    sampler = EpochSampler(n, batch_size, shuffle=shuffle, seed=seed)
    assert sorted(served(sampler, epoch)) == list(range(n))


@fast
@given(n=sizes, batch_size=batch_sizes, seed=seeds, epoch=epochs)
def test_batches_are_full_except_a_short_last_one(n, batch_size, seed, epoch):
    sampler = EpochSampler(n, batch_size, seed=seed)
    lengths = [len(batch) for batch in sampler.batches(epoch)]
    assert len(sampler) == len(lengths) == math.ceil(n / batch_size)
    assert lengths[:-1] == [batch_size] * (len(lengths) - 1)
    assert lengths[-1] == n - batch_size * (len(lengths) - 1)


@fast
@given(n=sizes, batch_size=batch_sizes, world_size=world_sizes, seed=seeds, epoch=epochs)
def test_drop_last_serves_only_full_batches_and_leaves_out_the_tail(
    n, batch_size, world_size, seed, epoch
):
    step = batch_size * world_size
    if n < step:
        with pytest.raises(ValueError, match="leaves no batch"):
            EpochSampler(n, batch_size, seed=seed, drop_last=True, world_size=world_size)
        return
    shards = [
        EpochSampler(n, batch_size, seed=seed, drop_last=True, rank=r, world_size=world_size)
        for r in range(world_size)
    ]
    everything = []
    for sampler in shards:
        batches = sampler.batches(epoch)
        assert len(batches) == len(sampler) == n // step
        assert all(len(batch) == batch_size for batch in batches)
        everything += np.concatenate(batches).tolist()
    kept = n // step * step
    assert len(everything) == len(set(everything)) == kept
    # what is left out is the end of the epoch's order
    assert set(everything) == set(shards[0].order(epoch)[:kept].tolist())


@fast
@given(n=sizes, batch_size=batch_sizes, world_size=world_sizes, seed=seeds, epoch=epochs)
def test_shards_cover_the_epoch_with_equal_batch_counts_padding_from_the_start(
    n, batch_size, world_size, seed, epoch
):
    shards = [
        EpochSampler(n, batch_size, seed=seed, rank=r, world_size=world_size)
        for r in range(world_size)
    ]
    per_rank = math.ceil(n / world_size)
    served_by = [served(sampler, epoch) for sampler in shards]
    assert {len(sampler) for sampler in shards} == {math.ceil(per_rank / batch_size)}
    assert all(len(s) == per_rank for s in served_by)
    # Interleaving the shards back gives the epoch's order followed by its start, repeated as
    # often as needed to reach per_rank * world_size (torch DistributedSampler's rule).
    merged = [served_by[k % world_size][k // world_size] for k in range(per_rank * world_size)]
    order = shards[0].order(epoch).tolist()
    assert merged == [order[k % n] for k in range(per_rank * world_size)]
    counts = Counter(merged)
    assert set(counts) == set(range(n))
    padding = per_rank * world_size - n
    assert sum(c - 1 for c in counts.values()) == padding
    if padding == 0:
        for a in range(world_size):
            for b in range(a + 1, world_size):
                assert not set(served_by[a]) & set(served_by[b])


@fast
@given(n=st.integers(10, 300), batch_size=batch_sizes, seed=seeds, epoch=epochs)
def test_consecutive_epochs_have_different_orders(n, batch_size, seed, epoch):
    sampler = EpochSampler(n, batch_size, seed=seed)
    assert served(sampler, epoch) != served(sampler, epoch + 1)


@fast
@given(n=sizes, batch_size=batch_sizes, world_size=world_sizes, seed=seeds, epoch=epochs)
def test_order_is_a_pure_function_of_the_settings_and_epoch(n, batch_size, world_size, seed, epoch):
    rank = seed % world_size
    first = EpochSampler(n, batch_size, seed=seed, rank=rank, world_size=world_size)
    second = EpochSampler(n, batch_size, seed=seed, rank=rank, world_size=world_size)
    second.batches(epoch + 1)  # computing other epochs first changes nothing
    assert served(first, epoch) == served(second, epoch)


@fast
@given(n=st.integers(10, 300), seed=seeds, epoch=epochs)
def test_different_seeds_give_different_orders(n, seed, epoch):
    other = (seed + 1) % 2**64
    assert served(EpochSampler(n, 4, seed=seed), epoch) != served(
        EpochSampler(n, 4, seed=other), epoch
    )


@fast
@given(n=sizes, batch_size=batch_sizes, epoch=epochs)
def test_shuffle_false_serves_index_order_every_epoch(n, batch_size, epoch):
    sampler = EpochSampler(n, batch_size, shuffle=False, seed=7)
    assert served(sampler, epoch) == list(range(n))


def _splitmix64_reference(state: int, count: int) -> list[int]:
    """SplitMix64 (Steele, Lea, Flood 2014), written out in plain Python integers."""
    mask = (1 << 64) - 1
    out = []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append(z ^ (z >> 31))
    return out


def test_hash_is_splitmix64_so_orders_do_not_depend_on_numpy_random():
    # With an empty key the state is 0: the outputs are SplitMix64's stream from seed 0, whose
    # first value 0xE220A8397B1DCDAF is the published test vector.
    assert splitmix64((), np.arange(3)).tolist() == _splitmix64_reference(0, 3)
    assert splitmix64((), np.arange(1)).tolist() == [0xE220A8397B1DCDAF]


def test_shuffled_order_is_the_argsort_of_the_per_position_hash():
    mask = (1 << 64) - 1
    seed, epoch, n = 12345, 3, 50

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    state = 0
    for key in (1, seed, epoch):  # stream tag 1 is the order's
        state = (mix(state ^ key) + 0x9E3779B97F4A7C15) & mask
    keys = _splitmix64_reference(state, n)
    expected = sorted(range(n), key=lambda i: (keys[i], i))
    assert EpochSampler(n, 8, seed=seed).order(epoch).tolist() == expected


def test_every_sample_is_equally_likely_to_come_first():
    n, trials = 5, 5000
    firsts = Counter(EpochSampler(n, 1, seed=3).order(epoch)[0] for epoch in range(trials))
    # each count is Binomial(5000, 0.2): mean 1000, sd ~28; 6 sd either side
    assert all(830 < firsts[i] < 1170 for i in range(n)), firsts


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_samples": 0, "batch_size": 1}, "num_samples must be >= 1, got 0"),
        ({"num_samples": 3, "batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"num_samples": 3, "batch_size": 1, "seed": -1}, "seed must be >= 0, got -1"),
        ({"num_samples": 3, "batch_size": 1, "rank": 2, "world_size": 2}, "rank=2"),
        ({"num_samples": 3, "batch_size": 4, "drop_last": True}, "3 sample"),
    ],
)
def test_invalid_settings_are_refused_with_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EpochSampler(**kwargs)


def test_non_integer_settings_are_refused():
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        EpochSampler(3, 2.5)
