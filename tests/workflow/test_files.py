"""Atomic writes, staged folders, stale staging, folder listings and reproducible Parquet."""

from __future__ import annotations

import os
import stat

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workflow_scripts.files import (
    folder_names,
    parquet_bytes,
    remove_stale_staging,
    staged_directory,
    write_bytes_atomic,
)


@pytest.fixture
def umask():
    """Set the process umask for one test, and restore it afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_creates_parent_folders_and_writes_the_bytes(tmp_path):
    path = tmp_path / "a" / "b" / "file.bin"
    write_bytes_atomic(path, b"\x00payload\xff")
    assert path.read_bytes() == b"\x00payload\xff"
    assert os.listdir(path.parent) == ["file.bin"]


def test_atomic_write_replaces_an_existing_file(tmp_path):
    path = tmp_path / "file.txt"
    path.write_bytes(b"old content, longer than the new one")
    write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["file.txt"]


def test_failed_atomic_write_leaves_no_temporary_and_the_old_file_intact(tmp_path):
    path = tmp_path / "file.txt"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_bytes_atomic(path, "text is not bytes")  # fails while writing the temporary
    assert os.listdir(tmp_path) == ["file.txt"]
    assert path.read_bytes() == b"old"


def test_interrupted_atomic_write_leaves_no_temporary(tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_bytes_atomic(tmp_path / "file.txt", b"data")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_gives_the_mode_the_umask_allows(tmp_path, umask, mask, expected):
    umask(mask)
    write_bytes_atomic(tmp_path / "file.txt", b"x")
    assert mode(tmp_path / "file.txt") == expected


def test_staged_folder_replaces_the_old_one_on_success(tmp_path):
    final = tmp_path / "study"
    final.mkdir()
    (final / "old.npz").write_bytes(b"old")
    with staged_directory(final) as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".staging-study.")
        assert list(staging.iterdir()) == []
        assert (final / "old.npz").is_file()  # untouched while the new one is filled
        (staging / "new.npz").write_bytes(b"new")
    assert sorted(os.listdir(final)) == ["new.npz"]
    assert (final / "new.npz").read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["study"]


def test_staged_folder_is_created_with_its_parents(tmp_path):
    final = tmp_path / "a" / "b" / "study"
    with staged_directory(final) as staging:
        (staging / "x").write_bytes(b"x")
    assert os.listdir(final) == ["x"]


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_staged_folder_rolls_back_on_an_exception(tmp_path, error):
    final = tmp_path / "study"
    final.mkdir()
    (final / "old.npz").write_bytes(b"old")
    with pytest.raises(error), staged_directory(final) as staging:
        (staging / "half.npz").write_bytes(b"half")
        raise error
    assert sorted(os.listdir(tmp_path)) == ["study"]
    assert os.listdir(final) == ["old.npz"]
    assert (final / "old.npz").read_bytes() == b"old"


def test_staged_folder_that_fails_leaves_no_final_when_there_was_none(tmp_path):
    with pytest.raises(RuntimeError), staged_directory(tmp_path / "study"):
        raise RuntimeError
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o755), (0o077, 0o700)])
def test_staged_folder_gets_the_mode_the_umask_allows(tmp_path, umask, mask, expected):
    umask(mask)
    with staged_directory(tmp_path / "study") as staging:
        (staging / "x").write_bytes(b"x")
    assert mode(tmp_path / "study") == expected


def test_stale_staging_of_the_study_is_removed_and_nothing_else(tmp_path):
    stale = [tmp_path / ".staging-S1.4242.0a1b2c3d", tmp_path / ".staging-S1.7.ffffffff"]
    for folder in stale:
        (folder / "deep").mkdir(parents=True)
        (folder / "deep" / "x.npz").write_bytes(b"x")
    kept = ["S1", ".staging-S2.4242.0a1b2c3d", ".staging-S10.1.0a1b2c3d", "other"]
    for name in kept:
        (tmp_path / name).mkdir()
    remove_stale_staging(tmp_path, "S1")
    assert sorted(os.listdir(tmp_path)) == sorted(kept)


@pytest.mark.parametrize("other", ["A.b", "A.1", "A.12.0a1b2c3d"])
def test_stale_staging_leaves_another_study_whose_id_extends_it_with_a_dot(tmp_path, other):
    # Study ids may hold dots (link.csv allows 'A' and 'A.b'): cleaning up after study 'A' must
    # not delete the folder study 'A.b' is filling at the same time in another job.
    with staged_directory(tmp_path / other) as staging:
        remove_stale_staging(tmp_path, "A")
        assert staging.is_dir()
        (staging / "x.npz").write_bytes(b"x")
    assert os.listdir(tmp_path / other) == ["x.npz"]


def test_folder_names_are_sorted_with_hidden_entries_and_empty_when_absent(tmp_path):
    for name in ("b", ".hidden", "A", "a"):
        (tmp_path / name).mkdir()
    (tmp_path / "file.txt").write_text("x")
    assert folder_names(tmp_path) == [".hidden", "A", "a", "b", "file.txt"]
    assert folder_names(tmp_path / "absent") == []
    assert folder_names(tmp_path / "file.txt") == []


def test_parquet_bytes_are_reproducible_and_read_back_as_the_table():
    table = pa.table({"study": ["S1", "S2", None], "slice": pa.array([1, 20, 3], pa.int32())})
    data = parquet_bytes(table)
    assert data == parquet_bytes(pa.table(table.to_pydict(), schema=table.schema))
    assert data[:4] == b"PAR1"
    assert pq.read_table(pa.BufferReader(data)).equals(table)
