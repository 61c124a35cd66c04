"""``python -m loader``: info, peek, verify, versions, and their exit codes."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest
from loader_helpers import build_dataset

from conftest import REPO
from loader.cli import main


@pytest.fixture
def data(tmp_path):
    """10 samples: studies of 3 (train), 4 (train), 2 (val), 1 (test)."""
    return build_dataset(tmp_path / "results", study_sizes=(3, 4, 2, 1))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_reports_samples_studies_shapes_dtypes_and_mask_coverage(data, capsys):
    code, out, _ = run(capsys, "info", data.root)
    assert code == 0
    assert "samples    10 from 4 studies" in out
    assert "train    7 samples from 2 studies" in out
    assert "8x8 (10)" in out
    assert "int16 (10)" in out
    coverage = [mask.mean() for mask in data.masks]
    assert f"mean {np.mean(coverage):.2%}, min {min(coverage):.2%}" in out


def test_peek_prints_each_epochs_batches_of_sample_indices(data, capsys):
    code, out, _ = run(capsys, "peek", data.root, "--epochs", 2, "--batch-size", 4)
    assert code == 0
    epochs = re.split(r"^epoch \d+$", out, flags=re.M)[1:]
    assert len(epochs) == 2
    orders = []
    for text in epochs:
        batches = [line.split(":")[1].split() for line in text.strip().splitlines()]
        assert len(batches) == math.ceil(10 / 4)
        order = [int(row) for batch in batches for row in batch]
        assert sorted(order) == list(range(10))
        orders.append(order)
    assert orders[0] != orders[1]


def test_peek_of_a_split_shows_only_its_rows_in_index_order_without_shuffle(data, capsys):
    code, out, _ = run(capsys, "peek", data.root, "--split", "val", "--no-shuffle", "--epochs", 1)
    assert code == 0
    assert "batch 0: 7 8" in out


def test_verify_reports_all_is_well_with_exit_0(data, capsys):
    code, out, _ = run(capsys, "verify", data.root)
    assert code == 0
    assert "ok" in out


def test_verify_names_missing_and_changed_files_with_exit_1(data, capsys):
    (data.root / data.npz[0]).unlink()
    changed = data.root / data.npz[1]
    raw = bytearray(changed.read_bytes())
    raw[-100] ^= 1
    changed.write_bytes(bytes(raw))
    code, out, _ = run(capsys, "verify", data.root)
    assert code == 1
    assert f"{data.npz[0]}: missing" in out
    assert data.npz[1] not in out  # the fast check compares sizes only
    code, out, _ = run(capsys, "verify", data.root, "--full")
    assert code == 1
    assert f"{data.npz[1]}: content changed" in out


def test_verify_of_an_unfinished_folder_exits_2(tmp_path, capsys):
    unfinished = build_dataset(tmp_path, study_sizes=(1,), manifest=False)
    code, _, err = run(capsys, "verify", unfinished.root)
    assert code == 2
    assert "not a finished dataset" in err
    code, _, err = run(capsys, "verify", tmp_path / "nowhere")
    assert code == 2


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["verify"])
    assert exit_.value.code == 2


def test_versions_lists_finished_versions_with_counts_and_build_times(tmp_path, capsys):
    build_dataset(tmp_path, study_sizes=(2, 2), version="1.0.0", built_at="2026-01-01T00:00:00Z")
    build_dataset(tmp_path, study_sizes=(3,), version="1.1.0", built_at="2026-02-01T00:00:00Z")
    build_dataset(tmp_path, study_sizes=(1,), version="2.0.0", manifest=False)
    (tmp_path / "logs").mkdir()
    code, out, _ = run(capsys, "versions", tmp_path)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split()[:4] == ["1.0.0", "2026-01-01T00:00:00Z", "4", "2"]
    assert lines[2].split()[:4] == ["1.1.0", "2026-02-01T00:00:00Z", "3", "1"]
    assert "ignored: 2.0.0 (no manifest.json: not finished)" in out
    assert "logs" not in out


def test_module_runs_as_a_command(data):
    result = subprocess.run(
        [sys.executable, "-m", "loader", "verify", str(data.root)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr


def test_refused_option_values_and_unfinished_folders_exit_2(data, tmp_path, capsys):
    code, _, err = run(capsys, "peek", data.root, "--rank", 2, "--world-size", 2)
    assert code == 2
    assert "rank=2" in err
    code, _, err = run(capsys, "peek", data.root, "--split", "training")
    assert code == 2
    unfinished = build_dataset(tmp_path / "other", study_sizes=(1,), manifest=False)
    code, _, err = run(capsys, "info", unfinished.root)
    assert code == 2
    assert "not a finished dataset" in err
