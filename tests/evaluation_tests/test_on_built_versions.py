"""Evaluation of versions the workflow builds: the phantom (native and resampled grids) and the
real studies (skipped when absent), given the cine columns and measures.parquet by
evaluation_helpers.add_cine_columns (the rule of DESIGN.md, computed from the contour polygons).

Known answers: the stored masks as predictions score Dice 1 and 100% good, and their volumes
are the manual volumes up to rasterization; on the real studies, the manual volumes are those
the official evaluator's formula gives (notes/cardiac-users.md §0); the exported contour files,
read back by the project's own parser and rasterizer, give the predicted masks again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from conftest import REAL_DATA
from evaluation_helpers import add_cine_columns, workflow_build_helpers
from loader import DatasetIndex, save_prediction
from loader.cli import main
from loader.evaluation import evaluate
from loader.evaluation.contour_files import ContourExport, contour_file_name
from loader.sample_file import read_sample
from workflow_scripts.config import default_config
from workflow_scripts.raw.contours import parse_contour
from workflow_scripts.study.masks import contour_to_mask
from workflow_scripts.study.resample import ResampleGrid

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

#: The manual volumes of the real studies by the official evaluator's formula (polygon area x
#: PixelSpacing² x SpacingBetweenSlices over the positions contoured at ED and ES), measured
#: independently for notes/cardiac-users.md §0: EDV, ESV (mL), EF (%).
REAL_VOLUMES = {
    "SC-HF-I-1": (191.3, 141.3, 26.2),
    "SC-HF-I-2": (241.9, 180.3, 25.5),
    "SC-HF-I-4": (229.7, 179.6, 21.8),
    "SC-HF-I-5": (202.1, 135.3, 33.0),
}


def phantom_place(number: int) -> tuple[int, int]:
    """The phantom as a cine of 4 phases per position: contours (even images) at phases 1, 3."""
    return (number - 1) // 4, (number - 1) % 4


def real_place(number: int) -> tuple[int, int]:
    """This archive's image numbering (20 phases per position; notes §0, measured)."""
    return (number - 1) // 20, (number - 1) % 20


def ipp_spacing(rows: pd.DataFrame) -> float:
    """Spacing between adjacent positions: ImagePositionPatient along the stack normal."""
    orientation = np.stack(rows["image_orientation"].to_numpy())[0]
    normal = np.cross(orientation[:3], orientation[3:])
    along = {}
    for position, ipp in zip(rows["position"], rows["image_position"], strict=True):
        along[int(position)] = float(np.dot(ipp, normal))
    ordered = [along[p] for p in sorted(along)]
    return float(np.median(np.abs(np.diff(ordered))) / np.median(np.diff(sorted(along))))


def phantom(root, **fields):
    return workflow_build_helpers().phantom(root, **fields)


def build(raw, out, resample=None):
    config = default_config(data_dir=str(raw), out_dir=str(out), contours=["i", "o"])
    if resample:
        config = default_config(**{**config, "resample": resample})
    return workflow_build_helpers().build_by_calls(config).layout.version_dir


def perfect_predictions(root, folder, transform=lambda mask: mask):
    index = DatasetIndex(root)
    for row in range(len(index)):
        stored = read_sample(index.path(row))
        omask = transform(stored["omask"]) if "omask" in stored else None
        save_prediction(folder, index, row, mask=transform(stored["mask"]), omask=omask)


@pytest.fixture(scope="module")
def phantom_version(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("phantom")
    raw = phantom(tmp / "raw", studies=3, slices=16, size=192)
    root = build(raw, tmp / "out")
    measures = add_cine_columns(root, raw, phantom_place, lambda rows: 10.0)
    return root, measures


@pytest.fixture(scope="module")
def resampled_phantom(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("phantom-resampled")
    raw = phantom(tmp / "raw", studies=2, slices=8, size=96)
    grid = {"spacing_mm": 1.0, "shape": [120, 128]}
    return raw, build(raw, tmp / "out", resample=grid), ResampleGrid.from_config(grid)


@pytest.fixture(scope="module")
def real_version(tmp_path_factory):
    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(f"real data not found at {REAL_DATA}")
    tmp = tmp_path_factory.mktemp("real")
    root = build(REAL_DATA, tmp / "out")
    measures = add_cine_columns(root, REAL_DATA, real_place, ipp_spacing)
    return root, measures


def test_phantom_stored_masks_score_perfectly_and_give_the_manual_ef(phantom_version, tmp_path):
    root, measures = phantom_version
    perfect_predictions(root, tmp_path)
    result = evaluate(root, tmp_path)
    assert result.summary["detected_percent"] == 100.0
    assert result.summary["good_percent"] == 100.0
    assert result.summary["by_contour"]["o"]["good_percent"] == 100.0
    assert (result.contours["dice"] == 1.0).all()
    studies = result.studies.set_index("study_id")
    manual = measures.set_index("study_id")
    # rasterized areas against polygon areas: within 2% per volume, 1 EF point
    assert studies["edv_ml"].to_numpy() == pytest.approx(manual["edv_ml"].to_numpy(), rel=0.02)
    assert studies["ef_percent"].to_numpy() == pytest.approx(
        manual["ef_percent"].to_numpy(), abs=1.0
    )
    assert studies["ef_percent_manual"].to_numpy() == pytest.approx(manual["ef_percent"])


def test_phantom_contour_files_round_trip_on_the_native_grid(phantom_version, tmp_path):
    """Exported contours, parsed and rasterized by the workflow's own code, give the predicted
    masks again (one-pixel dilations of the stored masks, single parts)."""
    root, _ = phantom_version
    perfect_predictions(root, tmp_path / "pred", ndimage.binary_dilation)
    code = main(
        ["evaluate", str(root), str(tmp_path / "pred"), "--contours-out", str(tmp_path / "c")]
    )
    assert code == 0
    index = pd.read_parquet(root / "index.parquet")
    checked = 0
    for row in index.itertuples():
        predicted = read_sample(tmp_path / "pred" / row.study_id / f"{row.slice:04d}.npz")
        folder = tmp_path / "c" / row.original_id / "contours-auto" / "auto2"
        for kind, name in (("i", "mask"), ("o", "omask")):
            if name not in predicted or (kind == "o" and not row.has_omask):
                continue
            text = (folder / contour_file_name(row.slice, kind)).read_text()
            back = contour_to_mask(parse_contour(text), (row.height, row.width))
            assert np.array_equal(back, predicted[name]), (row.study_id, row.slice, kind)
            checked += 1
    assert checked == len(index) + int(index["has_omask"].sum())


def test_resampled_contour_files_land_on_the_dicom_grid_and_round_trip(resampled_phantom, tmp_path):
    """On a 1 mm grid of another size, the exported contours are in the DICOM's pixel grid: the
    workflow's own resample mapping (the one that put the manual contours on the grid) takes
    them back onto the stored grid, where they rasterize to the predicted masks."""
    raw, root, grid = resampled_phantom
    perfect_predictions(root, tmp_path / "pred")
    export = ContourExport(tmp_path / "c", "mine", resampled=True)
    evaluate(root, tmp_path / "pred", on_contour=export)
    assert export.written > 0 and export.empty == 0
    index = pd.read_parquet(root / "index.parquet")
    for row in index.itertuples():
        placement = grid.place((96, 96), (row.source_spacing_row, row.source_spacing_col))
        folder = tmp_path / "c" / row.original_id / "contours-auto" / "mine"
        stored = read_sample(root / row.npz)
        for kind, name in (("i", "mask"), ("o", "omask")):
            if name not in stored:
                continue
            points = parse_contour((folder / contour_file_name(row.slice, kind)).read_text())
            # in the DICOM's grid: within the 96-pixel image, not the 120 x 128 stored grid
            assert points.max() < 96
            back = contour_to_mask(placement.points(points), (row.height, row.width))
            assert np.array_equal(back, stored[name]), (row.study_id, row.slice, kind)
            # and near the manual contour on the DICOM grid (the same ellipse, traced twice)
            manual = parse_contour((raw / getattr(row, f"{kind}contour")).read_text())
            assert np.abs(points.mean(axis=0) - manual.mean(axis=0)).max() < 0.5


@pytest.mark.realdata
def test_real_manual_volumes_are_the_official_formula_ones(real_version):
    """The fixture's cine columns reproduce the evaluator-formula volumes of notes §0."""
    _, measures = real_version
    index = pd.read_parquet(real_version[0] / "index.parquet")
    names = dict(zip(index["study_id"], index["original_id"], strict=False))
    for row in measures.itertuples():
        edv, esv, ef = REAL_VOLUMES[names[row.study_id]]
        assert row.edv_ml == pytest.approx(edv, abs=0.1)
        assert row.esv_ml == pytest.approx(esv, abs=0.1)
        assert row.ef_percent == pytest.approx(ef, abs=0.1)


@pytest.mark.realdata
def test_real_stored_masks_score_perfectly_and_give_the_manual_ef(real_version, tmp_path):
    root, measures = real_version
    perfect_predictions(root, tmp_path)
    result = evaluate(root, tmp_path)
    assert result.summary["dice_mean"] == 1.0 and result.summary["good_percent"] == 100.0
    studies = result.studies.set_index("study_id")
    manual = measures.set_index("study_id")
    # pixel counts against polygon areas (the rasterizer is unbiased): 0.04 EF points on average
    assert studies["ef_percent"].to_numpy() == pytest.approx(
        manual["ef_percent"].to_numpy(), abs=0.25
    )
    assert studies["edv_ml"].to_numpy() == pytest.approx(manual["edv_ml"].to_numpy(), rel=0.005)
    assert studies["lv_mass_g"].to_numpy() == pytest.approx(
        manual["lv_mass_g"].to_numpy(), rel=0.01
    )
    assert result.summary["ef_abs_error_mean"] < 0.1


@pytest.mark.realdata
def test_real_one_pixel_dilation_is_about_one_pixel_and_round_trips(real_version, tmp_path):
    root, _ = real_version
    perfect_predictions(root, tmp_path / "pred", ndimage.binary_dilation)
    export = ContourExport(tmp_path / "c")
    result = evaluate(root, tmp_path / "pred", on_contour=export)
    index = pd.read_parquet(root / "index.parquet")
    spacing = float(index["pixel_spacing_row"].iloc[0])
    apd = result.contours["apd_mm"] / spacing  # in pixels (square pixels here)
    assert (apd > 1 / np.sqrt(2) - 0.1).all() and (apd < 1.05).all()
    assert result.summary["good_percent"] == 100.0
    for row in index.head(12).itertuples():
        predicted = read_sample(tmp_path / "pred" / row.study_id / f"{row.slice:04d}.npz")
        path = tmp_path / "c" / row.original_id / "contours-auto" / "auto2"
        text = (path / contour_file_name(row.slice, "i")).read_text()
        back = contour_to_mask(parse_contour(text), (row.height, row.width))
        expected = ndimage.binary_fill_holes(predicted["mask"])
        assert np.array_equal(back, expected), (row.study_id, row.slice)


def manual_cine(root, study, measures_row, between=ndimage.binary_erosion):
    """A whole-cine prediction of ``study`` from its stored masks: the manual ED and ES masks at
    their (position, phase), ``between(ED mask)`` at every other phase of a contoured position,
    nothing elsewhere."""
    index = pd.read_parquet(root / "index.parquet")
    pairs = pd.read_parquet(root / "pairs" / f"{study}.parquet")
    own = index[index["study_id"] == study]
    positions, phases = int(pairs["position"].max()) + 1, int(pairs["phase"].max()) + 1
    cine = np.zeros((positions, phases, own["height"].iloc[0], own["width"].iloc[0]), bool)
    ed, es = int(measures_row.ed_phase), int(measures_row.es_phase)
    for row in own.itertuples():
        cine[row.position, row.phase] = read_sample(root / row.npz)["mask"]
    for p in sorted(set(own["position"])):
        for t in range(phases):
            if t not in (ed, es):
                cine[p, t] = between(cine[p, ed])
    return cine


@pytest.mark.parametrize("which", ["phantom_version", "real_version"])
def test_whole_cines_from_the_manual_masks_give_the_manual_ed_es_and_ef(which, request, tmp_path):
    root, measures = request.getfixturevalue(which)
    for row in measures.itertuples():
        np.save(tmp_path / f"{row.study_id}.npy", manual_cine(root, row.study_id, row))
    result = evaluate(root, tmp_path)
    studies = result.studies.set_index("study_id").loc[measures["study_id"]]
    manual = measures.set_index("study_id")
    assert (studies["phases_from"] == "curve").all()
    assert studies["ed_phase"].tolist() == manual["ed_phase"].tolist()
    assert studies["es_phase"].tolist() == manual["es_phase"].tolist()
    tolerance = 0.25 if which == "real_version" else 1.0
    assert studies["ef_percent"].to_numpy() == pytest.approx(
        manual["ef_percent"].to_numpy(), abs=tolerance
    )
    assert (result.contours.query("contour == 'i'")["dice"] == 1.0).all()
    # all positions: those of the manual volumes and more (a position contoured at one phase
    # only, as in the phantom's study with a corrupt DICOM)
    assert (studies["edv_ml_all_positions"] >= studies["edv_ml"] - 1e-9).all()
