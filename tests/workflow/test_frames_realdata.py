"""``frames: all`` on real Sunnybrook studies (two, in a temporary raw folder linking to them):
every frame of the cine is the DICOM that its own tags place there, read with pydicom; the
samples are their frames; on a resample grid too. Skipped when the real data is absent."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from frames_checks import dicom_cine

from build_helpers import build_by_calls
from conftest import REAL_DATA
from loader import load_cine
from loader.sample_file import read_sample
from workflow_scripts.config import default_config

STUDIES = {"SCD0000101": "SC-HF-I-1", "SCD0000401": "SC-HF-I-5"}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    if not all((REAL_DATA / "dicoms" / study).is_dir() for study in STUDIES):
        pytest.skip(f"real studies {', '.join(STUDIES)} not found under {REAL_DATA}")
    raw = tmp_path_factory.mktemp("real_frames") / "raw"
    (raw / "dicoms").mkdir(parents=True)
    for study, original in STUDIES.items():
        (raw / "dicoms" / study).symlink_to(REAL_DATA / "dicoms" / study)
        shutil.copytree(REAL_DATA / "contourfiles" / original, raw / "contourfiles" / original)
    lines = "".join(f"{study},{original}\n" for study, original in STUDIES.items())
    (raw / "link.csv").write_text("patient_id,original_id\n" + lines)
    return raw


def build(raw, out, **overrides):
    config = default_config(data_dir=str(raw), out_dir=str(out), frames="all", **overrides)
    return build_by_calls(config).layout.version_dir


def test_every_real_frame_is_the_dicom_its_tags_place_there(raw, tmp_path):
    version = build(raw, tmp_path / "out")
    index = pd.read_parquet(version / "index.parquet")
    for study in STUDIES:
        images, frames = load_cine(version, study)
        expected = dicom_cine(raw / "dicoms" / study)
        dicoms = len(list((raw / "dicoms" / study).glob("*.dcm")))
        assert images.shape[:2] == (max(p for p, _ in expected) + 1, 20)
        assert len(expected) == dicoms == frames["present"].sum() == images.shape[0] * 20
        for (position, phase), (name, pixels) in expected.items():
            assert images.dtype == pixels.dtype
            assert np.array_equal(images[position, phase], pixels), (study, name)
            row = frames[(frames["position"] == position) & (frames["phase"] == phase)].iloc[0]
            assert row["dicom"] == f"dicoms/{study}/{name}"
        samples = frames[frames["index_row"].notna()]
        assert len(samples) == (index["study_id"] == study).sum() > 0
        for row in samples.itertuples():
            assert index.iloc[int(row.index_row)]["slice"] == row.slice
            image = read_sample(version / row.npz)["image"]
            assert np.array_equal(image, images[row.position, row.phase])
        assert set(samples["cardiac_phase"]) == {"ED", "ES"}


def test_real_frames_on_a_resample_grid_are_the_samples_grid(raw, tmp_path):
    version = build(raw, tmp_path / "out", resample={"spacing_mm": 1.5, "shape": [160, 160]})
    for study in STUDIES:
        images, frames = load_cine(version, study)
        assert images.shape[2:] == (160, 160) and images.dtype == np.dtype("<f4")
        assert frames["present"].all() and (frames["pixel_spacing_row"] == 1.5).all()
        for row in frames[frames["npz"].notna()].itertuples():
            image = read_sample(version / row.npz)["image"]
            assert np.array_equal(image, images[row.position, row.phase])
        # unlabelled frames are images too: bright blood pool, not zeros
        unlabelled = frames[frames["npz"].isna()]
        assert all(
            images[p, t].max() > 100
            for p, t in zip(*unlabelled[["position", "phase"]].T.values, strict=True)
        )
