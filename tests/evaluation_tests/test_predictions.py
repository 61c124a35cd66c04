"""save_prediction and the predictions folder: what is written, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation_helpers import build_cine_version
from loader import DatasetIndex, PredictionError, save_prediction
from loader.evaluation.predictions import find_predictions, read_prediction
from loader.sample_file import read_sample


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    return build_cine_version(tmp_path_factory.mktemp("v"), studies=2, positions=2)


def test_save_prediction_writes_the_sample_file_the_layout_names(version, tmp_path):
    index = DatasetIndex(version.root)
    mask = np.zeros((64, 64), bool)
    mask[10:20, 5:9] = True
    path = save_prediction(tmp_path, index, 3, mask=mask, omask=mask | np.roll(mask, 2))
    assert path == tmp_path / index.study_id[3] / f"{index.slice[3]:04d}.npz"
    arrays = read_sample(path)
    assert sorted(arrays) == ["mask", "omask"]
    assert np.array_equal(arrays["mask"], mask)
    # also by (study, slice), from the version folder's path
    again = save_prediction(
        tmp_path, version.root, (index.study_id[3], int(index.slice[3])), mask=mask
    )
    assert again == path and sorted(read_sample(path)) == ["mask"]


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.zeros((64, 64), np.float32), "dtype float32; predictions are bool"),
        (np.zeros((64, 64), np.uint8), "dtype uint8"),
        (np.zeros((64, 63), bool), "shape (64, 63), the sample is 64 x 64"),
        (np.zeros((1, 64, 64), bool), "shape (1, 64, 64)"),
    ],
)
def test_save_prediction_refuses_what_is_not_a_bool_mask_of_the_sample(
    version, tmp_path, mask, message
):
    with pytest.raises(PredictionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        save_prediction(tmp_path, version.root, 0, mask=mask)
    assert not any(tmp_path.iterdir())


def test_save_prediction_refuses_unknown_samples(version, tmp_path):
    mask = np.zeros((64, 64), bool)
    with pytest.raises(PredictionError, match="rows 0 to"):
        save_prediction(tmp_path, version.root, 10_000, mask=mask)
    with pytest.raises(PredictionError, match=r"\('SCD0000009', 20\) is not a sample"):
        save_prediction(tmp_path, version.root, ("SCD0000009", 20), mask=mask)
    with pytest.raises(PredictionError, match="row '3'"):
        save_prediction(tmp_path, version.root, "3", mask=mask)


def test_read_prediction_names_the_file_and_the_problem(tmp_path):
    path = tmp_path / "S" / "0001.npz"
    with pytest.raises(PredictionError, match="no prediction file"):
        read_prediction(path, (4, 4))
    path.parent.mkdir()
    path.write_bytes(b"not a zip")
    with pytest.raises(PredictionError, match=r"0001\.npz"):
        read_prediction(path, (4, 4))
    np.savez(path, mask=np.zeros((4, 4), bool), extra=np.zeros(2))
    with pytest.raises(PredictionError, match="unexpected array"):
        read_prediction(path, (4, 4))
    np.savez(path, omask=np.zeros((4, 4), bool))
    with pytest.raises(PredictionError, match="no 'mask'"):
        read_prediction(path, (4, 4))


def test_find_predictions_refuses_files_outside_the_layout(tmp_path):
    (tmp_path / "SCD1").mkdir()
    (tmp_path / "SCD1" / "0020.npz").write_bytes(b"")
    (tmp_path / "SCD2.npy").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("ignored: not an array")
    samples, cines = find_predictions(tmp_path)
    assert list(samples) == [("SCD1", 20)] and list(cines) == ["SCD2"]
    (tmp_path / "SCD1" / "20.npz").write_bytes(b"")
    with pytest.raises(PredictionError, match=r"SCD1/20\.npz"):
        find_predictions(tmp_path)
