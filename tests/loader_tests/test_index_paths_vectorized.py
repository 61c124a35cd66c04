"""The npz column is checked vectorized (one regular expression over the column): it must
refuse exactly what the row-by-row check (``check_relative_path``) refuses, with its message."""

from __future__ import annotations

import pyarrow as pa
import pytest

from loader.index_columns import DatasetIndexError, _relative_paths, check_relative_path

PATHS = [
    "slices/S1/0001.npz",
    "a/..b/c.npz",
    "a/b..",
    "./x.npz",
    "/abs.npz",
    "a\\b.npz",
    "C:/x.npz",
    "c:x",
    "a/../b",
    "..",
    "a/..",
    "",
]


@pytest.mark.parametrize("relpath", PATHS)
def test_the_vectorized_check_refuses_what_the_row_check_refuses(relpath):
    values = ["slices/ok/1.npz", relpath]
    try:
        check_relative_path(relpath, 1)
    except DatasetIndexError as error:
        with pytest.raises(DatasetIndexError, match="row 1") as raised:
            _relative_paths(pa.chunked_array([values]))
        assert str(raised.value) == str(error)
    else:
        assert _relative_paths(pa.chunked_array([values])) == values
