"""``python -m loader export``: the nnU-Net raw dataset and the MONAI datalist of a version,
checked file by file with SimpleITK (which writes them) against the npz arrays, labels made
here from the masks, and geometry computed here from the index by the README's formula.

nnU-Net's and MONAI's own readers are driven in ``test_export_interop.py``.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from loader_helpers import build_dataset, write_test_manifest

from conftest import content_digest
from loader.cli import main
from loader.export import export_monai, export_nnunet

sitk = pytest.importorskip("SimpleITK")
pytestmark = pytest.mark.interop

RAW = "nnUNet_raw/Dataset501_SunnybrookLV_v1-0-0"
SPLITS = "nnUNet_preprocessed/Dataset501_SunnybrookLV_v1-0-0/splits_final.json"


@pytest.fixture
def data(tmp_path):
    """14 samples of 5 studies (splits train, train, val, test, train), non-square pixels (so a
    row/column swap shows), thickness 8 mm, every other sample with an o-contour."""
    return build_dataset(
        tmp_path / "results",
        study_sizes=(3, 4, 2, 3, 2),
        shape=(6, 9),
        spacings=[(1.25, 1.5), (1.25, 1.5), (0.7, 0.8), (1.0, 1.1), (1.25, 1.5)],
        nested=False,
    )


def expected_labels(mask, omask):
    """0 background, 1 blood pool (the mask wins where the contours cross), 2 myocardium."""
    labels = np.zeros(mask.shape, dtype=np.uint8)
    labels[omask] = 2
    labels[mask] = 1
    return labels


def read(path):
    image = sitk.ReadImage(str(path))
    return image, sitk.GetArrayFromImage(image)


def test_each_sample_with_an_o_contour_is_a_case_with_its_image_labels_and_spacing(data, tmp_path):
    done = export_nnunet(data.root, tmp_path / "nn")
    raw = tmp_path / "nn" / RAW
    assert done.selection.labels == "blood_pool_myocardium"
    exported = set()
    for row in data.rows_with_omask():
        study, number = data.study_ids[row], data.slices[row]
        case = f"{study}_s{number:04d}"
        images, labels = ("imagesTs", "labelsTs") if data.splits[row] == "test" else (
            "imagesTr", "labelsTr")  # fmt: skip
        image, pixels = read(raw / images / f"{case}_0000.nii.gz")
        label, label_pixels = read(raw / labels / f"{case}.nii.gz")
        assert pixels.dtype == np.int16 and pixels.shape == (1, 6, 9)
        assert np.array_equal(pixels[0], data.images[row])
        assert label_pixels.dtype == np.uint8
        assert np.array_equal(label_pixels[0], expected_labels(data.masks[row], data.omasks[row]))
        spacing = {0: (1.5, 1.25), 1: (1.5, 1.25), 2: (0.8, 0.7), 3: (1.1, 1.0), 4: (1.5, 1.25)}
        number_of_study = int(study[3:])
        assert image.GetSpacing() == pytest.approx((*spacing[number_of_study], 8.0))
        assert label.GetSpacing() == image.GetSpacing()
        assert label.GetOrigin() == image.GetOrigin()
        # loader_helpers: position (-150, -140, 10 * slice), axial orientation
        assert image.GetOrigin() == pytest.approx((-150.0, -140.0, 10.0 * number))
        assert image.GetDirection() == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))
        exported.add(f"{images}/{case}_0000.nii.gz")
    on_disk = {f"{sub}/{p.name}" for sub in ("imagesTr", "imagesTs") for p in (raw / sub).iterdir()}
    assert on_disk == exported
    dataset = json.loads((raw / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, "blood_pool": 1, "myocardium": 2}
    assert dataset["numTraining"] == len(list((raw / "imagesTr").iterdir()))
    assert dataset["file_ending"] == ".nii.gz"
    assert dataset["channel_names"] == {"0": "cineMRI"}


def test_splits_are_patient_level_folds_then_the_versions_own_split(data, tmp_path):
    done = export_nnunet(data.root, tmp_path / "nn")
    folds = json.loads((tmp_path / "nn" / SPLITS).read_text())
    assert folds == done.folds
    raw = tmp_path / "nn" / RAW
    cases = {p.name[: -len("_0000.nii.gz")] for p in (raw / "imagesTr").iterdir()}

    def studies(ids):
        return {case.split("_s")[0] for case in ids}

    train_val_studies = {"SCD0000000", "SCD0000001", "SCD0000002", "SCD0000004"}
    assert len(folds) == 4 + 1  # 4 studies cap the 5 folds asked; then the version's split
    validated = []
    for fold in folds:
        assert studies(fold["train"]).isdisjoint(studies(fold["val"]))
        assert set(fold["train"]) | set(fold["val"]) == cases
        assert fold["val"] and fold["train"]
    for fold in folds[:4]:
        validated += sorted(studies(fold["val"]))
    assert sorted(validated) == sorted(train_val_studies)  # each study validated exactly once
    version = folds[4]
    assert studies(version["val"]) == {"SCD0000002"}  # the val split of loader_helpers
    assert studies(version["train"]) == {"SCD0000000", "SCD0000001", "SCD0000004"}
    assert done.version_fold == 4
    assert "SCD0000003" not in studies(c for f in folds for c in f["train"] + f["val"])


def test_the_same_version_exports_to_the_same_bytes(data, tmp_path):
    for out in ("a", "b"):
        export_nnunet(data.root, tmp_path / out / "nn")
        export_monai(data.root, tmp_path / out / "monai")
    assert content_digest(tmp_path / "a") == content_digest(tmp_path / "b")
    assert len(list((tmp_path / "a").rglob("*.nii.gz"))) > 0


def test_exclude_flags_and_studies_are_honoured_and_every_sample_is_accounted_for(tmp_path):
    data = build_dataset(
        tmp_path / "results",
        study_sizes=(3, 4, 2, 3),
        omask_every=0,
        flags={1: "mask_area_outlier", 4: "mask_area_outlier,other"},
        spacings=[(1.0, 1.0)] * 4,
    )
    done = export_nnunet(
        data.root, tmp_path / "nn", exclude_flags=["mask_area_outlier"], studies=["SCD0000000",
        "SCD0000001", "SCD0000002"],
    )  # fmt: skip
    assert done.selection.labels == "blood_pool"  # no o-contour in the version
    raw = tmp_path / "nn" / RAW
    lines = (raw / "cases.csv").read_text().splitlines()
    assert len(lines) == 1 + len(data)
    by_row = {int(line.split(",")[0]): line for line in lines[1:]}
    assert by_row[1].endswith("flag mask_area_outlier excluded (--exclude-flags)")
    assert by_row[4].endswith("flag mask_area_outlier excluded (--exclude-flags)")
    for row in data.rows_of_split("test"):
        assert by_row[row].endswith("study not selected (--studies)")
    names = {p.name for p in (raw / "imagesTr").iterdir()}
    assert "SCD0000000_s0011_0000.nii.gz" not in names  # row 1
    assert "SCD0000001_s0011_0000.nii.gz" not in names  # row 4
    assert len(names) == 9 - 2
    for row in (0, 2, 3, 5):
        case = f"{data.study_ids[row]}_s{data.slices[row]:04d}"
        _, labels = read(raw / "labelsTr" / f"{case}.nii.gz")
        assert np.array_equal(labels[0], data.masks[row].astype(np.uint8))
        assert f",{case}," in by_row[row]


def test_label_policies(data, tmp_path):
    every = export_nnunet(data.root, tmp_path / "all", labels="blood_pool")
    assert len(every.selection.cases) == len(data)
    assert json.loads((tmp_path / "all" / RAW / "dataset.json").read_text())["labels"] == {
        "background": 0,
        "blood_pool": 1,
    }
    plain = build_dataset(tmp_path / "plain", study_sizes=(2, 2, 1), omask_every=0,
                          spacings=[(1.0, 1.0)] * 3)  # fmt: skip
    with pytest.raises(ValueError, match=r"none of the 5 selected samples .* has one"):
        export_nnunet(plain.root, tmp_path / "x", labels="blood_pool_myocardium")
    assert not (tmp_path / "x" / "nnUNet_raw" / "Dataset501_SunnybrookLV_v1-0-0").exists()


def test_samples_without_spacing_are_left_out_and_without_thickness_get_nnunets_2d_z(tmp_path):
    data = build_dataset(tmp_path / "r", study_sizes=(2, 2, 1), omask_every=0,
                         spacings=[(1.0, 1.0), None, (2.0, 2.0)])  # fmt: skip
    table = pq.read_table(data.root / "index.parquet")
    thickness = pa.array([8.0, 8.0, None, None, 1.5], type=pa.float64())  # 1.5 < 2.0 in-plane
    table = table.set_column(table.schema.get_field_index("slice_thickness"), "slice_thickness",
                             thickness)  # fmt: skip
    pq.write_table(table, data.root / "index.parquet")
    write_test_manifest(data.root, "1.0.0", "2026-01-01T00:00:00Z", studies=3, samples=5)
    done = export_nnunet(data.root, tmp_path / "nn")
    assert [left.reason for left in done.selection.left_out] == ["pixel spacing unknown"] * 2
    assert done.default_thickness == 1
    image, _ = read(tmp_path / "nn" / RAW / "imagesTr" / "SCD0000002_s0010_0000.nii.gz")
    assert image.GetSpacing() == pytest.approx((2.0, 2.0, 999 * 2.0))
    image, _ = read(tmp_path / "nn" / RAW / "imagesTr" / "SCD0000000_s0010_0000.nii.gz")
    assert image.GetSpacing() == pytest.approx((1.0, 1.0, 8.0))


def test_oblique_resampled_geometry_matches_the_readme_formula(tmp_path):
    """Stored pixel (r, c) lies at P + (g_c + c ps_c / ss_c) ss_c X + (g_r + r ps_r / ss_r) ss_r Y
    (README); the NIfTI's index-to-physical map must give the same point."""
    data = build_dataset(tmp_path / "r", study_sizes=(2, 1, 1), shape=(5, 7), omask_every=0,
                         spacings=[(1.3, 1.3)] * 3)  # fmt: skip
    angle = np.deg2rad(30)
    x_axis = np.array([np.cos(angle), np.sin(angle), 0.0])
    y_axis = np.array([-np.sin(angle) * 0.6, np.cos(angle) * 0.6, -0.8])
    table = pq.read_table(data.root / "index.parquet")
    count = table.num_rows
    extra = {
        "source_spacing_row": [1.5] * count,
        "source_spacing_col": [1.4] * count,
        "grid_origin_row": [-3.25] * count,
        "grid_origin_col": [2.5] * count,
    }
    for name, values in extra.items():
        table = table.append_column(name, pa.array(values, type=pa.float64()))
    # DICOM rounds its cosines: give them 4 digits, as the real files (the export makes them
    # orthonormal; the formula below uses them as stored)
    stored = np.round(np.concatenate([x_axis, y_axis]), 4).tolist()
    column = table.schema.get_field_index("image_orientation")
    orientation = pa.array([stored] * count, type=pa.list_(pa.float64(), 6))
    table = table.set_column(column, "image_orientation", orientation)
    pq.write_table(table, data.root / "index.parquet")
    write_test_manifest(data.root, "1.0.0", "2026-01-01T00:00:00Z", studies=3, samples=count)
    export_nnunet(data.root, tmp_path / "nn")
    image, _ = read(tmp_path / "nn" / RAW / "imagesTr" / "SCD0000000_s0011_0000.nii.gz")
    position = np.array([-150.0, -140.0, 110.0])
    x_stored, y_stored = np.array(stored[:3]), np.array(stored[3:])
    for r, c in [(0, 0), (4, 0), (0, 6), (3, 5)]:
        i, j = -3.25 + r * 1.3 / 1.5, 2.5 + c * 1.3 / 1.4
        expected = position + j * 1.4 * x_stored + i * 1.5 * y_stored
        point = image.TransformIndexToPhysicalPoint((c, r, 0))
        assert np.allclose(point, expected, atol=1e-3), (r, c)
    direction = np.array(image.GetDirection()).reshape(3, 3)  # NIfTI keeps it in float32
    assert np.allclose(direction.T @ direction, np.eye(3), atol=1e-5)


def test_an_export_is_never_overwritten_nor_given_a_taken_id(data, tmp_path):
    export_nnunet(data.root, tmp_path / "nn")
    with pytest.raises(ValueError, match="an export is never overwritten"):
        export_nnunet(data.root, tmp_path / "nn")
    with pytest.raises(ValueError, match="already uses dataset id 501 with another name"):
        export_nnunet(data.root, tmp_path / "nn", name="Other")
    with pytest.raises(ValueError, match="1 to 999"):
        export_nnunet(data.root, tmp_path / "nn", dataset_id=1000)
    assert [p.name for p in (tmp_path / "nn" / "nnUNet_raw").iterdir()] == [RAW.split("/")[1]]
    for export in (export_nnunet, export_monai):
        with pytest.raises(ValueError, match="a finished version is never changed"):
            export(data.root, data.root / "exports")
    assert not (data.root / "exports").exists()


def test_monai_datalist_names_the_npz_files_with_scalar_metadata(data, tmp_path):
    done = export_monai(data.root, tmp_path / "monai", labels="blood_pool")
    datalist = json.loads(done.datalist.read_text())
    keys = {"training": "train", "validation": "val", "test": "test"}
    assert sum(len(datalist[k]) for k in keys) == len(data)
    for key, split in keys.items():
        assert datalist[f"num{key.capitalize()}" if key != "training" else "numTraining"] == len(
            datalist[key]
        )
        for item in datalist[key]:
            row = data.npz.index(os.path.relpath(tmp_path / "monai" / item["image"], data.root))
            assert item["label"] == item["image"]
            assert data.splits[row] == split == item["split"]
            assert item["study_id"] == data.study_ids[row] and item["slice"] == data.slices[row]
            assert not any(isinstance(v, list | dict) for v in item.values())
    assert datalist["labels"] == {"0": "background", "1": "blood_pool"}


def test_cli_export_prints_the_nnunet_commands(data, tmp_path, capsys):
    code = main(["export", str(data.root), "--format", "nnunet", "--out", str(tmp_path / "nn"),
                 "--dataset-id", "42", "--folds", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "nnUNetv2_plan_and_preprocess -d 42 -c 2d" in out
    assert "nnUNetv2_train 42 2d 2" in out  # 2 folds, then the version's split
    assert (tmp_path / "nn" / "nnUNet_raw" / "Dataset042_SunnybrookLV_v1-0-0").is_dir()
    code = main(["export", str(data.root), "--format", "monai", "--out", str(tmp_path / "m")])
    assert code == 0 and (tmp_path / "m" / "datalist.json").is_file()
    code = main(["export", str(data.root), "--format", "nnunet", "--out", str(tmp_path / "nn"),
                 "--dataset-id", "42"])  # fmt: skip
    assert code == 2 and "never overwritten" in capsys.readouterr().err
