"""The loader on datasets the workflow built: the phantom, the real studies, damaged copies."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REAL_DATA, real_data_missing, run_workflow
from loader import (
    BatchLoader,
    DatasetNotFinishedError,
    DatasetVerificationError,
    SampleFileError,
)

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def phantom_version(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("phantom_for_loader")
    run_workflow(workdir, "--config", "out_dir=out", "contours=[i,o]")
    return workdir / "out" / "1.0.0"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loader", *args], capture_output=True, text=True)


def test_verify_in_fresh_processes_always_exits_cleanly(phantom_version):
    """Reading the manifest's tables leaves no pyarrow thread behind: through ``read_table``'s
    dataset scanner, about one process in three aborted at exit on this version ("terminate
    called without an active exception", exit -6) after printing its verdict. Ten runs catch
    that with ~97%."""
    for _ in range(10):
        done = cli("verify", "--full", str(phantom_version))
        assert (done.returncode, done.stderr) == (0, ""), done.stderr


def check_one_epoch(version_dir, split=None):
    index = pd.read_parquet(version_dir / "index.parquet")
    expected = int((index["split"] == split).sum()) if split else len(index)
    batches = BatchLoader(version_dir, batch_size=8, seed=3, split=split)
    seen = 0
    for images, masks in batches:
        assert images.dtype == np.float32 and masks.dtype == bool
        assert images.shape == masks.shape and images.shape[1:] == (256, 256)
        assert 0 < images.shape[0] <= 8
        seen += images.shape[0]
    assert seen == expected
    assert len(batches) == -(-expected // 8)


def test_loader_serves_the_phantom_build(phantom_version):
    check_one_epoch(phantom_version)
    index = pd.read_parquet(phantom_version / "index.parquet")
    for split in sorted(set(index["split"])):
        check_one_epoch(phantom_version, split)


@pytest.fixture(scope="module")
def real_version(tmp_path_factory):
    """The real studies built with o-contours (``contours=[i,o]``)."""
    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(real_data_missing())
    workdir = tmp_path_factory.mktemp("real_for_loader")
    run_workflow(workdir, "--config", f"data_dir={REAL_DATA}", "out_dir=out", "contours=[i,o]")
    return workdir / "out" / "1.0.0"


@pytest.mark.realdata
def test_loader_serves_the_real_build(real_version):
    check_one_epoch(real_version)
    # the batches hold the very pixels of the samples, in the order the loader reports
    batches = BatchLoader(real_version, batch_size=4, shuffle=False)
    images, masks = next(iter(batches))
    index = pd.read_parquet(real_version / "index.parquet")
    first = np.load(real_version / index["npz"][0], allow_pickle=False)
    np.testing.assert_array_equal(images[0], first["image"].astype(np.float32))
    np.testing.assert_array_equal(masks[0], first["mask"])


@pytest.mark.realdata
def test_real_labels_are_the_stored_mask_and_omask_of_every_sample_with_both(real_version):
    index = pd.read_parquet(real_version / "index.parquet")
    with_omask = sorted(np.flatnonzero(index["has_omask"].to_numpy()).tolist())
    assert with_omask  # the real studies have o-contours
    batches = BatchLoader(real_version, batch_size=8, seed=1, targets="labels", with_rows=True)
    assert batches.num_samples == len(with_omask) < len(index)
    served, nested = [], 0
    for images, labels, rows in batches:
        assert labels.dtype == np.uint8
        for image, label, row in zip(images, labels, rows.tolist(), strict=True):
            served.append(row)
            with np.load(real_version / index["npz"][row], allow_pickle=False) as stored:
                np.testing.assert_array_equal(image, stored["image"].astype(np.float32))
                mask, omask = stored["mask"], stored["omask"]  # the sample has an o-contour
            assert set(np.unique(label).tolist()) <= {0, 1, 2}
            np.testing.assert_array_equal(label == 1, mask)  # class 1 is the stored mask
            np.testing.assert_array_equal(label == 2, omask & ~mask)
            if not (mask & ~omask).any():  # the contours nest: classes 1 and 2 are the omask
                nested += 1
                np.testing.assert_array_equal(label > 0, omask)
    assert sorted(served) == with_omask  # each sample with an o-contour once, no other
    assert nested > 0


@pytest.mark.realdata
@pytest.mark.parametrize("cache", [False, True])
def test_real_augmented_samples_are_the_stored_ones_turned_by_their_codes(real_version, cache):
    """Augmented, every real sample (256x256 int16, masks of real contours) is its stored image,
    mask, omask and labels turned by ``np.rot90`` then ``np.fliplr`` with the code of the test's
    own SplitMix64, read back with ``np.load``; uncached (OpenCV into the batch slots) and
    cached (the kept orientations), two epochs."""
    from test_augment import expected_code, expected_labels, reference

    index = pd.read_parquet(real_version / "index.parquet")
    targets = ("mask", "omask", "labels")
    batches = BatchLoader(
        real_version, batch_size=8, seed=9, augment=True, targets=targets, with_rows=True,
        cache=cache,
    )  # fmt: skip
    for epoch in range(2):
        served, codes = [], set()
        for images, masks, omasks, labels, rows in batches:
            for slot, row in enumerate(rows.tolist()):
                code = expected_code(9, epoch, row, square=True)
                codes.add(code)
                with np.load(real_version / index["npz"][row], allow_pickle=False) as stored:
                    image, mask, omask = stored["image"], stored["mask"], stored["omask"]
                want_image = reference(image, code).astype(np.float32)
                np.testing.assert_array_equal(images[slot], want_image)
                np.testing.assert_array_equal(masks[slot], reference(mask, code))
                np.testing.assert_array_equal(omasks[slot], reference(omask, code))
                want_labels = reference(expected_labels(mask, omask), code)
                np.testing.assert_array_equal(labels[slot], want_labels)
            served += rows.tolist()
        assert sorted(served) == sorted(np.flatnonzero(index["has_omask"].to_numpy()).tolist())
        assert codes == set(range(8))


@pytest.fixture
def damaged_copy(phantom_version, tmp_path):
    copy = tmp_path / "1.0.0"
    shutil.copytree(phantom_version, copy)
    return copy


def test_deleted_sample_is_caught_by_verify_and_by_the_loader(damaged_copy):
    victim = sorted((damaged_copy / "slices").rglob("*.npz"))[3]
    victim.unlink()
    name = victim.relative_to(damaged_copy).as_posix()
    result = cli("verify", str(damaged_copy))
    assert result.returncode == 1 and name in result.stdout + result.stderr
    with pytest.raises(DatasetVerificationError, match=name):
        BatchLoader(damaged_copy, batch_size=8, verify="full")
    # the default (fast) open lists no sample folder: reading the file names it
    with pytest.raises(SampleFileError, match=name):
        for _ in BatchLoader(damaged_copy, batch_size=8):
            pass


def test_changed_bytes_are_caught_by_the_full_check(damaged_copy):
    victim = sorted((damaged_copy / "slices").rglob("*.npz"))[5]
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0xFF  # same size: only the sha256 check can tell
    victim.write_bytes(bytes(data))
    name = victim.relative_to(damaged_copy).as_posix()
    assert cli("verify", str(damaged_copy)).returncode == 0
    result = cli("verify", str(damaged_copy), "--full")
    assert result.returncode == 1 and name in result.stdout + result.stderr
    with pytest.raises(DatasetVerificationError, match=name):
        BatchLoader(damaged_copy, batch_size=8, verify="full")


def test_truncated_index_file_is_caught_by_the_fast_check(damaged_copy):
    path = damaged_copy / "validation.parquet"
    path.write_bytes(path.read_bytes()[:-10])
    result = cli("verify", str(damaged_copy))
    assert result.returncode == 1 and "validation.parquet" in result.stdout + result.stderr


def test_unfinished_version_is_refused(damaged_copy):
    (damaged_copy / "manifest.json").unlink()
    with pytest.raises(DatasetNotFinishedError, match="not a finished dataset"):
        BatchLoader(damaged_copy, batch_size=8)
    assert cli("verify", str(damaged_copy)).returncode == 2


def test_versions_lists_finished_versions_only(phantom_version, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(phantom_version, out / "1.0.0")
    shutil.copytree(phantom_version, out / "2.0.0")
    (out / "2.0.0" / "manifest.json").unlink()
    result = cli("versions", str(out))
    assert result.returncode == 0
    rows = [line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()]
    assert "1.0.0" in rows and "2.0.0" not in rows
    assert "2.0.0 (no manifest.json: not finished)" in result.stdout


def test_readme_training_example_runs(phantom_version):
    from conftest import REPO

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Training with the loader", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    code = code.replace('"results/1.0.0"', repr(str(phantom_version)))

    class Model:
        def fit(self, batches, steps_per_epoch, epochs):
            for _ in range(steps_per_epoch * epochs):
                images, masks = next(batches)
                assert images.shape == masks.shape

    served = []
    namespace = {
        "step": lambda images, masks: served.append(len(images)),
        "evaluate": lambda loader: sum(len(images) for images, _ in loader),
        "model": Model(),
    }
    exec(compile(code, "README.md", "exec"), namespace)
    index = pd.read_parquet(phantom_version / "index.parquet")
    assert sum(served) == 10 * int((index["split"] == "train").sum())


def test_readme_evaluation_example_writes_predictions_the_command_scores(phantom_version, tmp_path):
    import json

    import loader
    from conftest import REPO
    from loader import DatasetIndex

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Evaluating a model", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    command = section.split("```bash", 1)[1].split("```", 1)[0].split()
    index = DatasetIndex(phantom_version)
    namespace = {
        "index": index,
        "BatchLoader": BatchLoader,
        "loader": loader,
        # a "model" that says the brightest pixels are the blood pool: scored, not perfect
        "model": lambda images: images / images.max(axis=(1, 2), keepdims=True),
    }
    predictions = tmp_path / "predictions"
    exec(compile(code.replace('"predictions"', repr(str(predictions))), "README.md", "exec"),
         namespace)  # fmt: skip
    test_rows = np.flatnonzero(index.split == "test")
    written = sorted(predictions.rglob("*.npz"))
    assert len(written) == len(test_rows) > 0
    assert command[:3] == ["python", "-m", "loader"]
    command = [sys.executable, *command[1:]]
    command[command.index("results/1.0.0")] = str(phantom_version)
    command[command.index("predictions")] = str(predictions)
    command[command.index("evaluation")] = str(tmp_path / "evaluation")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "evaluation" / "summary.json").read_text())
    contours = pd.read_parquet(tmp_path / "evaluation" / "contours.parquet")
    assert len(contours[contours["contour"] == "i"]) == len(test_rows)
    assert 0 <= summary["good_percent"] <= 100 and summary["detected_percent"] > 0
