"""Scoring a predictions folder against a version with known masks and known volumes
(evaluation_helpers.build_cine_version): perfect, perturbed, missing and whole-cine
predictions, the tables and summary DESIGN.md names, and the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from evaluation_helpers import DENSITY, build_cine_version
from loader import DatasetIndex, PredictionError, save_prediction
from loader.cli import main
from loader.evaluation import evaluate

PIXEL_AREA = 1.25 * 1.25
SPACING = 8.0


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    return build_cine_version(tmp_path_factory.mktemp("cine"))


def write_predictions(version, folder, transform=lambda mask, study, number: mask, omask=True):
    """Predictions = transform(stored mask) for every sample; returns them by (study, slice)."""
    index = DatasetIndex(version.root)
    written = {}
    for row in range(len(index)):
        key = (str(index.study_id[row]), int(index.slice[row]))
        arrays = version.masks[key]
        predicted = {"mask": transform(arrays["mask"], *key)}
        if omask and "omask" in arrays:
            predicted["omask"] = transform(arrays["omask"], *key)
        elif omask:
            predicted["omask"] = np.zeros_like(arrays["mask"])  # no manual o-contour: unscored
        save_prediction(folder, index, row, **predicted)
        written[key] = predicted
    return written


def test_the_stored_masks_score_dice_one_all_good_and_the_manual_volumes(version, tmp_path):
    write_predictions(version, tmp_path)
    result = evaluate(version.root, tmp_path)
    contours = result.contours
    assert len(contours) == len(version.index) + int(version.index["has_omask"].sum())
    assert contours["detected"].all() and contours["good"].all()
    assert (contours["dice"] == 1.0).all()
    assert (contours["apd_mm"] == 0.0).all() and (contours["hausdorff_mm"] == 0.0).all()
    summary = result.summary
    assert summary["detected_percent"] == 100.0 and summary["good_percent"] == 100.0
    assert summary["dice_mean"] == 1.0 and summary["apd_mm_mean"] == 0.0
    assert summary["by_contour"]["o"]["good_percent"] == 100.0
    studies = result.studies.set_index("study_id")
    measures = version.measures.set_index("study_id")
    for name in ("edv_ml", "esv_ml", "ef_percent", "lv_mass_g"):
        assert studies[name].to_numpy() == pytest.approx(measures[name].to_numpy(), rel=1e-12)
        assert studies[f"{name}_manual"].to_numpy() == pytest.approx(measures[name].to_numpy())
    assert summary["ef_abs_error_mean"] == pytest.approx(0.0, abs=1e-9)
    assert (studies["ed_phase"] == version.ed_phase).all()
    assert (studies["phases_from"] == "manual").all()


def test_a_one_pixel_dilation_scores_about_one_pixel_and_its_own_volumes(version, tmp_path):
    written = write_predictions(version, tmp_path, lambda m, s, n: ndimage.binary_dilation(m))
    result = evaluate(version.root, tmp_path)
    apd = result.contours["apd_mm"]
    assert (apd > 1.25 / np.sqrt(2) - 0.1).all() and (apd < 1.25 + 0.05).all()
    assert result.summary["good_percent"] == 100.0
    # EDV by hand: dilated ED pixel counts x pixel area x spacing, over the 4 positions
    study = "SCD0000001"
    ed_rows = version.index[(version.index["study_id"] == study) & (version.index["phase"] == 19)]
    pixels = sum(int(written[(study, int(n))]["mask"].sum()) for n in ed_rows["slice"])
    edv = result.studies.set_index("study_id").loc[study, "edv_ml"]
    assert edv == pytest.approx(pixels * PIXEL_AREA * SPACING / 1000)
    manual = version.measures.set_index("study_id").loc[study, "edv_ml"]
    assert edv > manual


def test_missed_and_bad_contours_count_as_the_challenge_counts_them(version, tmp_path):
    """An empty prediction is not detected; a prediction 10 pixels (12.5 mm) off is detected but
    not good; Dice and APD are averaged over the good contours only."""
    missed, shifted = ("SCD0000001", 20), ("SCD0000002", 8)

    def spoil(mask, study, number):
        if (study, number) == missed:
            return np.zeros_like(mask)
        if (study, number) == shifted:
            return np.roll(mask, 10, axis=1)
        return ndimage.binary_dilation(mask) if number % 3 == 0 else mask

    write_predictions(version, tmp_path, spoil, omask=False)
    result = evaluate(version.root, tmp_path)
    rows = result.contours
    assert set(rows["contour"]) == {"i"}  # no omask predicted: o-contours not scored
    assert any("o-contours not scored" in note for note in result.notes)
    total = len(rows)
    row = rows.set_index(["study_id", "slice"])
    assert not row.loc[missed, "detected"] and not row.loc[missed, "good"]
    assert row.loc[missed, "dice"] == 0.0
    assert row.loc[shifted, "detected"] and not row.loc[shifted, "good"]
    assert row.loc[shifted, "apd_mm"] >= 5.0
    summary = result.summary
    assert summary["detected_percent"] == pytest.approx(100 * (total - 1) / total)
    assert summary["good_percent"] == pytest.approx(100 * (total - 2) / total)
    good = rows[rows["good"]]
    assert summary["dice_mean"] == pytest.approx(good["dice"].mean())
    assert summary["apd_mm_mean"] == pytest.approx(good["apd_mm"].mean())
    assert summary["dice_mean"] > rows["dice"].mean()


def test_a_missing_prediction_is_an_error_that_names_it(version, tmp_path):
    write_predictions(version, tmp_path)
    (tmp_path / "SCD0000002" / "0028.npz").unlink()
    with pytest.raises(PredictionError, match=r"1 of 24 samples has no prediction.*0028"):
        evaluate(version.root, tmp_path)


def test_predictions_of_one_split_need_split(version, tmp_path):
    index = DatasetIndex(version.root)
    for row in index.rows("test"):
        key = (str(index.study_id[row]), int(index.slice[row]))
        save_prediction(tmp_path, index, row, mask=version.masks[key]["mask"])
    with pytest.raises(PredictionError, match=r"cover split\(s\) test: pass --split"):
        evaluate(version.root, tmp_path)
    result = evaluate(version.root, tmp_path, split="test")
    assert set(result.studies["study_id"]) == {"SCD0000003"}
    assert set(result.contours["study_id"]) == {"SCD0000003"}
    with pytest.raises(ValueError, match="split 'tset' has no samples"):
        evaluate(version.root, tmp_path, split="tset")


def test_a_prediction_of_no_sample_is_refused(version, tmp_path):
    write_predictions(version, tmp_path)
    save_path = tmp_path / "SCD0000001" / "0021.npz"
    (tmp_path / "SCD0000001" / "0020.npz").rename(save_path)  # slice 21 is no sample
    with pytest.raises(PredictionError, match=r"name no sample.*SCD0000001/0021\.npz"):
        evaluate(version.root, tmp_path)


def test_omask_predicted_for_some_samples_only_is_refused(version, tmp_path):
    write_predictions(version, tmp_path)
    index = DatasetIndex(version.root)
    row = int(np.flatnonzero(index.has_omask)[0])
    key = (str(index.study_id[row]), int(index.slice[row]))
    save_prediction(tmp_path, index, row, mask=version.masks[key]["mask"])  # without omask
    with pytest.raises(PredictionError, match="carry 'omask', but 1 sample"):
        evaluate(version.root, tmp_path)


def cine_of(version, study, between):
    """A whole-cine prediction: the manual ED and ES masks at their phases, ``between`` (a
    function of the ED mask) at every other phase."""
    cine = np.zeros((version.positions, version.phases, 64, 64), dtype=bool)
    for p in range(version.positions):
        ed_mask = version.masks[(study, p * version.phases + version.ed_phase + 1)]["mask"]
        es_mask = version.masks[(study, p * version.phases + version.es_phase + 1)]["mask"]
        for t in range(version.phases):
            cine[p, t] = between(ed_mask, es_mask)
        cine[p, version.ed_phase] = ed_mask
        cine[p, version.es_phase] = es_mask
    return cine


def test_a_whole_cine_built_from_the_manual_masks_gives_the_manual_ed_es_and_ef(version, tmp_path):
    """Every other phase holds the ED mask less one pixel (a volume between ES and ED): the
    curve peaks at the manual ED, bottoms at the manual ES, and the EF is the manual one."""
    for study in version.measures["study_id"]:
        cine = cine_of(version, study, lambda ed, es: ndimage.binary_erosion(ed))
        np.save(tmp_path / f"{study}.npy", cine)
    result = evaluate(version.root, tmp_path)
    studies = result.studies.set_index("study_id")
    measures = version.measures.set_index("study_id")
    assert (studies["source"] == "cine").all() and (studies["phases_from"] == "curve").all()
    assert (studies["ed_phase"] == version.ed_phase).all()
    assert (studies["es_phase"] == version.es_phase).all()
    assert studies["ef_percent"].to_numpy() == pytest.approx(measures["ef_percent"].to_numpy())
    curve = studies.loc["SCD0000001", "volume_curve_ml"]
    assert len(curve) == version.phases
    assert max(curve) == pytest.approx(measures.loc["SCD0000001", "edv_ml"])
    # every position is contoured here: the all-positions figures are the same
    assert studies["ef_percent_all_positions"].to_numpy() == pytest.approx(
        studies["ef_percent"].to_numpy()
    )
    # the per-contour scores read the cine's frames at each sample's (position, phase)
    assert (result.contours["dice"] == 1.0).all() and (result.contours["source"] == "cine").all()
    assert result.summary["ef_abs_error_mean"] == pytest.approx(0.0, abs=1e-9)


def test_a_cine_with_a_smaller_phase_elsewhere_moves_the_predicted_es(version, tmp_path):
    study = "SCD0000001"
    cine = cine_of(version, study, lambda ed, es: ndimage.binary_erosion(ed))
    cine[:, 11] = ndimage.binary_erosion(cine[:, version.es_phase], iterations=1, axes=(1, 2))
    for other in ("SCD0000002", "SCD0000003"):
        np.save(tmp_path / f"{other}.npy", cine_of(version, other, lambda ed, es: ed))
    np.save(tmp_path / f"{study}.npy", cine)
    result = evaluate(version.root, tmp_path)
    row = result.studies.set_index("study_id").loc[study]
    assert (row["ed_phase"], row["es_phase"]) == (version.ed_phase, 11)
    esv = cine[:, 11].sum() * PIXEL_AREA * SPACING / 1000
    assert row["esv_ml"] == pytest.approx(esv)
    assert row["ef_percent"] > row["ef_percent_manual"]


def test_a_cine_of_the_wrong_shape_is_refused(version, tmp_path):
    np.save(tmp_path / "SCD0000001.npy", np.zeros((4, 19, 64, 64), bool))
    with pytest.raises(PredictionError, match=r"shape \(4, 19, 64, 64\).*\(4, 20, 64, 64\)"):
        evaluate(version.root, tmp_path)
    np.save(tmp_path / "SCD0000001.npy", np.zeros((4, 20, 64, 64), np.uint8))
    with pytest.raises(PredictionError, match="bool"):
        evaluate(version.root, tmp_path)


def test_without_cine_columns_contours_are_scored_and_volumes_are_explained(tmp_path):
    plain = build_cine_version(tmp_path / "out", studies=2, cine_columns=False)
    write_predictions(plain, tmp_path / "pred")
    result = evaluate(plain.root, tmp_path / "pred")
    assert result.summary["dice_mean"] == 1.0
    assert result.studies["edv_ml"].isna().all() and result.summary["ef_abs_error_mean"] is None
    assert any("need a version with the cine columns" in note for note in result.notes)


def test_the_command_writes_the_tables_and_summary_design_names(version, tmp_path, capsys):
    write_predictions(version, tmp_path / "pred")
    out = tmp_path / "eval"
    code = main(["evaluate", str(version.root), str(tmp_path / "pred"), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "good (APD < 5 mm)" in printed and "100.0% (24)" in printed
    contours = pd.read_parquet(out / "contours.parquet")
    design = ["study_id", "slice", "contour", "detected", "dice", "apd_mm", "hausdorff_mm", "good"]
    assert contours.columns[: len(design)].tolist() == design
    studies = pd.read_parquet(out / "studies.parquet")
    for name in ("edv_ml", "esv_ml", "ef_percent", "ed_phase", "es_phase"):
        assert name in studies and f"{name}_manual" in studies
    summary = json.loads((out / "summary.json").read_text())
    for key in ("detected_percent", "good_percent", "dice_mean", "apd_mm_mean"):
        assert summary[key] == pytest.approx(
            100.0 if "percent" in key else float(key == "dice_mean")
        )
    assert summary["ef_abs_error_mean"] == pytest.approx(0.0, abs=1e-9)
    assert (out / "evaluation.html").is_file()
    assert sorted(p.name for p in (out / "figures").iterdir())  # overlays written


def test_the_command_reports_prediction_errors_with_exit_code_1(version, tmp_path, capsys):
    (tmp_path / "pred").mkdir()
    code = main(["evaluate", str(version.root), str(tmp_path / "pred")])
    assert code == 1
    assert "24 of 24 samples have no prediction" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nothing"), str(tmp_path / "pred")]) == 2


def test_lv_mass_uses_the_positions_with_both_contours_at_ed(version, tmp_path):
    """Predicted o-contours 1 pixel larger: the myocardium grows by the ring's pixels."""

    index = DatasetIndex(version.root)
    for row in range(len(index)):
        key = (str(index.study_id[row]), int(index.slice[row]))
        arrays = version.masks[key]
        omask = ndimage.binary_dilation(arrays["omask"]) if "omask" in arrays else None
        save_prediction(tmp_path, index, row, mask=arrays["mask"], omask=omask)
    result = evaluate(version.root, tmp_path)
    study = "SCD0000002"
    ed = version.index[(version.index["study_id"] == study) & (version.index["has_omask"])]
    ring = sum(
        int(ndimage.binary_dilation(version.masks[(study, int(n))]["omask"]).sum())
        - int(version.masks[(study, int(n))]["mask"].sum())
        for n in ed["slice"]
    )
    expected = ring * PIXEL_AREA * SPACING / 1000 * DENSITY
    assert result.studies.set_index("study_id").loc[study, "lv_mass_g"] == pytest.approx(expected)


def test_contours_are_not_exported_over_an_earlier_export(version, tmp_path, capsys):
    """A file left from an earlier run would read as a detected contour: refused."""
    write_predictions(version, tmp_path / "pred")
    command = ["evaluate", str(version.root), str(tmp_path / "pred")]
    assert main([*command, "--contours-out", str(tmp_path / "c")]) == 0
    written = sorted((tmp_path / "c").rglob("*-auto.txt"))
    assert len(written) == 36  # 24 i- and 12 o-contours, none empty
    assert written[0].parent.relative_to(tmp_path / "c").as_posix() == (
        "SC-HF-I-1/contours-auto/auto2"
    )
    capsys.readouterr()
    assert main([*command, "--contours-out", str(tmp_path / "c")]) == 2
    assert "already holds 36 exported contour file(s)" in capsys.readouterr().err
    assert main([*command, "--contours-out", str(tmp_path / "c"), "--algorithm", "v2"]) == 0
