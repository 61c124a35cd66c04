"""Batch arrays are reused only when nothing refers to them any more."""

from __future__ import annotations

import numpy as np

from loader.buffers import ArrayPool


def test_an_array_the_caller_holds_is_never_handed_out_again():
    pool = ArrayPool((2, 3), np.float32, capacity=4)
    held = [pool.take() for _ in range(6)]  # more than the capacity
    assert len({id(array) for array in held}) == 6
    assert all(array.shape == (2, 3) and array.dtype == np.float32 for array in held)


def test_a_dropped_array_is_reused():
    pool = ArrayPool((2, 3), np.int16, capacity=2)
    first = pool.take()
    first_id = id(first)
    del first
    assert id(pool.take()) == first_id


def test_a_view_of_an_array_keeps_it_from_reuse():
    pool = ArrayPool((2, 3), np.int16, capacity=2)
    array = pool.take()
    array[:] = 7
    row = array[0]  # a view holds a reference to its base
    del array
    again = pool.take()
    again[:] = 0
    assert row.tolist() == [7, 7, 7]
