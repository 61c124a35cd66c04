"""The in-memory cache's memory check."""

from __future__ import annotations

import numpy as np
import pytest

from loader.cache import CacheTooLargeError, SampleCache, available_memory, format_bytes


def test_available_memory_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  24684092 kB\nMemFree:  100 kB\nMemAvailable:  2048 kB\n")
    assert available_memory(meminfo) == 2048 * 1024


def test_available_memory_on_this_machine_is_positive():
    assert available_memory() > 0


def test_a_cache_larger_than_the_limit_is_refused_with_both_sizes():
    # 10 samples x 100 x 100 pixels x (4 bytes float32 + 1 byte mask) = 500,000 B = 488.3 KiB
    with pytest.raises(CacheTooLargeError, match=r"needs 488\.3 KiB .* only 390\.6 KiB"):
        SampleCache(10, (100, 100), np.float32, {"mask": np.dtype(bool)}, memory_limit=400_000)
    SampleCache(10, (100, 100), np.float32, {"mask": np.dtype(bool)}, memory_limit=500_000)


def test_a_slot_counts_as_filled_once_written():
    cache = SampleCache(3, (2, 2), np.int16, {"mask": np.dtype(bool)}, memory_limit=10**6)
    assert not cache.complete and not cache.filled.any()
    for position in range(3):
        image, mask = cache.sample(position)
        image[...], mask[...] = np.full((2, 2), position), np.eye(2, dtype=bool)
        assert not cache.filled[position]
        cache.mark_filled(position)
    assert cache.complete and cache.filled.all()
    image, mask = cache.sample(2)
    np.testing.assert_array_equal(image, np.full((2, 2), 2))
    np.testing.assert_array_equal(mask, np.eye(2, dtype=bool))


@pytest.mark.parametrize(
    ("count", "text"), [(512, "512 B"), (1536, "1.5 KiB"), (3 * 2**30, "3.0 GiB")]
)
def test_format_bytes(count, text):
    assert format_bytes(count) == text
