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


# ------------------------------------------------------------------ counts, kinds of folders


def test_info_says_1_study_and_1_sample_in_the_singular(tmp_path, capsys):
    one = build_dataset(tmp_path, study_sizes=(1,))
    code, out, _ = run(capsys, "info", one.root)
    assert code == 0
    assert "samples    1 from 1 study\n" in out
    assert "  train    1 sample from 1 study, 1 with an o-contour" in out
    assert "omasks     1 of 1 sample has an o-contour" in out
    assert not re.search(r"\b1 (studies|samples)\b", out)


def test_info_lists_spacings_o_contours_and_flags_with_counts(tmp_path, capsys):
    data = build_dataset(
        tmp_path,
        study_sizes=(3, 4, 2, 1),
        spacings=[(1.3672, 1.3672), (1.2891, 1.2891), None, (1.3672, 1.3672)],
        flags={1: "mask_area_outlier", 3: "mask_empty,mask_area_outlier"},
    )
    code, out, _ = run(capsys, "info", data.root)
    assert code == 0
    assert "spacing    1.3672x1.3672 mm (4), 1.2891x1.2891 mm (4), unknown (2)\n" in out
    # o-contours on every other row: train rows 0-6 -> 0, 2, 4, 6; val rows 7-8 -> 8
    assert "  train    7 samples from 2 studies, 4 with an o-contour" in out
    assert "omasks     5 of 10 samples have an o-contour" in out
    assert "flags      2 samples flagged: mask_area_outlier (2), mask_empty (1)" in out


@pytest.mark.parametrize("command", ["info", "peek", "verify"])
def test_a_folder_of_versions_is_refused_listing_the_versions_to_pass(tmp_path, capsys, command):
    build_dataset(tmp_path, study_sizes=(2,), version="1.0.0", built_at="2026-01-01T00:00:00Z")
    build_dataset(tmp_path, study_sizes=(2,), version="1.1.0", built_at="2026-02-01T00:00:00Z")
    code, out, err = run(capsys, command, tmp_path)
    assert code == 2 and out == ""
    assert "is a folder of dataset versions, not a version" in err
    assert "2 finished versions (1.0.0, 1.1.0)" in err
    assert f"python -m loader {command} {tmp_path / '1.1.0'}" in err
    assert "Run the workflow" not in err


def test_versions_of_a_version_folder_says_to_pass_its_parent(data, capsys):
    code, out, err = run(capsys, "versions", data.root)
    assert code == 2 and out == ""
    assert "is a dataset version folder (version 1.0.0)" in err
    assert f"python -m loader versions {data.root.parent}" in err


def test_versions_of_a_folder_without_finished_versions_exits_2(tmp_path, capsys):
    build_dataset(tmp_path, study_sizes=(1,), version="2.0.0", manifest=False)
    code, out, _ = run(capsys, "versions", tmp_path)
    assert code == 2
    assert "no finished dataset versions" in out
    assert "ignored: 2.0.0 (no manifest.json: not finished)" in out


def test_verify_counts_problems_in_the_singular(data, capsys):
    (data.root / data.npz[0]).unlink()
    code, out, _ = run(capsys, "verify", data.root)
    assert code == 1
    assert f"{data.root}: 1 problem (sizes checked)" in out


def test_peek_piped_into_a_reader_that_stops_early_exits_quietly(tmp_path):
    data = build_dataset(tmp_path, study_sizes=(5, 5))
    # about 3 MB of output, far more than a pipe holds, so writing must meet the closed pipe
    command = [sys.executable, "-m", "loader", "peek", str(data.root), "--batch-size", "1"]
    process = subprocess.Popen(
        [*command, "--epochs", "20000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    first = process.stdout.readline()
    process.stdout.close()  # as `| head -1` does
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141
    assert first.startswith(b"BatchLoader(")
    assert stderr == ""


# ------------------------------------------------------------------------------ peek options


def test_peek_selects_studies_flags_splits_and_targets_as_the_loader_does(tmp_path, capsys):
    data = build_dataset(tmp_path, study_sizes=(3, 4, 2, 1), flags={4: "mask_area_outlier"})
    code, out, _ = run(
        capsys,
        "peek",
        data.root,
        "--no-shuffle",
        "--epochs",
        1,
        "--batch-size",
        20,
        "--studies",
        "SCD0000001,SCD0000002",
        "--exclude-flags",
        "mask_area_outlier",
        "--targets",
        "labels",
        "--split",
        "train,val",
    )
    assert code == 0
    # studies 1 and 2 are rows 3-8; row 4 is flagged; o-contours on even rows
    assert "batch 0: 6 8\n" in out
    assert "1 batch per epoch" in out
    assert "samples=2 (of 5 selected; 3 samples without an o-contour left out)" in out
