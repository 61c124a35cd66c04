"""The end-to-end example (examples/train_and_evaluate.py) runs: a few training steps on the
loader, predictions written with save_prediction, the evaluation's tables and page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation_helpers import build_cine_version

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "train_and_evaluate.py"


def test_the_example_trains_predicts_and_evaluates(tmp_path):
    pytest.importorskip("torch")
    version = build_cine_version(tmp_path / "out", studies=3, positions=2)
    command = [
        sys.executable, str(EXAMPLE), str(version.root), "--steps", "5", "--split", "test",
        "--predictions", str(tmp_path / "pred"), "--out", str(tmp_path / "eval"),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's loader, wherever installed
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote 4 predictions" in result.stdout
    assert "good (APD < 5 mm)" in result.stdout
    assert sorted(p.name for p in (tmp_path / "pred" / "SCD0000003").iterdir()) == [
        "0008.npz", "0020.npz", "0028.npz", "0040.npz",
    ]  # fmt: skip
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["contours"] == 4
    assert (tmp_path / "eval" / "evaluation.html").is_file()
