"""The exports read by the real libraries: nnU-Net v2's dataset check, planning and
preprocessing, image reader and trainer split on the exported phantom (built by the workflow's
own functions) and real studies; MONAI's ``LoadImaged`` over the exported datalist.

Skipped when nnunetv2 or monai is not installed (``pip install -e ".[interop]"``; CI installs
it). Expected arrays come from the npz files and labels made here from the masks; expected
spacing and positions from index.parquet by the README's formula.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from conftest import REAL_DATA, REPO
from loader.export import export_monai, export_nnunet, monai_transforms
from loader.sample_file import read_sample

pytestmark = pytest.mark.interop
pytest.importorskip("SimpleITK")
pytest.importorskip("nnunetv2")

DATASET = "Dataset501_SunnybrookLV_v1-0-0"
#: The exported phantom: 6 small studies (8 DICOMs of 64x64 pixels each, the phantom's faults
#: included) with o-contours, split so that train, val and test all have studies (split_seed 3
#: puts 3 studies in train, 2 in val, 1 in test).
PHANTOM_CONFIG = {
    "contours": ["i", "o"],
    "phantom": {"studies": 6, "slices": 8, "size": 64},
    "splits": {"train": 0.6, "val": 0.2, "test": 0.2},
    "split_seed": 3,
}


def build_helpers():
    """tests/workflow/build_helpers.py (the workflow tests' builder), imported by path."""
    if "build_helpers" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "build_helpers", REPO / "tests" / "workflow" / "build_helpers.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["build_helpers"] = module
        spec.loader.exec_module(module)
    return sys.modules["build_helpers"]


def build_and_export(workdir: Path, **config) -> SimpleNamespace:
    """Build a version with the workflow's functions in ``workdir``; export it both ways."""
    from workflow_scripts.config import default_config

    plan = build_helpers().build_by_calls(default_config(out_dir="out", **config), workdir)
    version = workdir / plan.layout.version_dir
    nnunet = export_nnunet(version, workdir / "nnunet")
    monai = export_monai(version, workdir / "monai")
    index = pd.read_parquet(version / "index.parquet")
    return SimpleNamespace(version=version, nnunet=nnunet, monai=monai, index=index, root=workdir)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    return build_and_export(tmp_path_factory.mktemp("phantom"), data_dir="", **PHANTOM_CONFIG)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(f"real data not found at {REAL_DATA}")
    return build_and_export(
        tmp_path_factory.mktemp("real"), data_dir=str(REAL_DATA), contours=["i", "o"]
    )


@pytest.fixture(scope="module")
def real_resampled(tmp_path_factory):
    """The real studies on a common grid of 1.1 mm (finer than every study's own spacing, and
    cropped to 200 x 200 pixels, so that the slices move on their grids)."""
    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(f"real data not found at {REAL_DATA}")
    return build_and_export(
        tmp_path_factory.mktemp("real_resampled"),
        data_dir=str(REAL_DATA),
        contours=["i", "o"],
        resample={"spacing_mm": 1.1, "shape": [200, 200]},
    )


def expected_labels(npz: Path) -> np.ndarray:
    arrays = read_sample(npz)
    labels = np.zeros(arrays["mask"].shape, dtype=np.uint8)
    labels[arrays["omask"]] = 2
    labels[arrays["mask"]] = 1
    return labels


def nnunet_env(root: Path) -> dict[str, str]:
    out = root / "nnunet"
    return {
        "nnUNet_raw": str(out / "nnUNet_raw"),
        "nnUNet_preprocessed": str(out / "nnUNet_preprocessed"),
        "nnUNet_results": str(out / "nnUNet_results"),
    }


def verify(dataset_dir: Path, capfd) -> str:
    """nnU-Net's verify_dataset_integrity (raises on an error); its output (from its worker
    processes too, hence capfd)."""
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    capfd.readouterr()
    verify_dataset_integrity(str(dataset_dir), num_processes=1)
    out, err = capfd.readouterr()
    # its closing banner says "If you didn't see any error messages then ...": not a message
    return (out + err).replace("see any error messages", "")


def test_nnunet_verify_dataset_integrity_passes_on_the_exported_phantom(phantom, capfd):
    output = verify(phantom.nnunet.dataset_dir, capfd)
    assert "verify_dataset_integrity Done" in output
    assert "mismatch" not in output.lower() and "error" not in output.lower()


def test_nnunet_verify_dataset_integrity_catches_a_broken_copy(phantom, tmp_path, capfd):
    """The check above can fail: a label file missing is refused."""
    import shutil

    copy = tmp_path / DATASET
    shutil.copytree(phantom.nnunet.dataset_dir, copy)
    next((copy / "labelsTr").iterdir()).unlink()
    with pytest.raises(Exception, match=r"(?i)label|missing|expected"):
        verify(copy, capfd)


@pytest.mark.realdata
def test_nnunet_verify_dataset_integrity_passes_on_the_exported_real_studies(real, capfd):
    output = verify(real.nnunet.dataset_dir, capfd)
    assert "verify_dataset_integrity Done" in output
    assert "mismatch" not in output.lower() and "error" not in output.lower()


@pytest.mark.realdata
def test_real_cases_lie_where_the_dicom_puts_them(real):
    """Every exported real case: SimpleITK's index-to-patient map at the four corners equals
    ImagePositionPatient + j * col_spacing * row_cosine + i * row_spacing * column_cosine."""
    import SimpleITK as sitk

    by_case = {c.case: c for c in real.nnunet.selection.cases}
    assert len(by_case) == int(real.index["has_omask"].sum())
    for case_id, case in by_case.items():
        row = real.index.iloc[case.row]
        folder = "imagesTs" if case.split == "test" else "imagesTr"
        image = sitk.ReadImage(str(real.nnunet.dataset_dir / folder / f"{case_id}_0000.nii.gz"))
        position = np.asarray(row["image_position"])
        x_axis, y_axis = np.asarray(row["image_orientation"][:3]), row["image_orientation"][3:]
        height, width = int(row["height"]), int(row["width"])
        for r, c in [(0, 0), (height - 1, 0), (0, width - 1), (height - 1, width - 1)]:
            expected = (
                position
                + c * row["pixel_spacing_col"] * x_axis
                + r * row["pixel_spacing_row"] * np.asarray(y_axis)
            )
            point = image.TransformIndexToPhysicalPoint((c, r, 0))
            assert np.allclose(point, expected, atol=0.05), (case_id, r, c)  # mm
        assert image.GetSpacing()[2] == pytest.approx(row["slice_thickness"])  # 8 mm here


@pytest.mark.realdata
def test_a_resampled_export_puts_each_blood_pool_where_its_contour_file_does(real_resampled):
    """A build resampled to 1.1 mm and cropped: each exported blood pool (its label pixels
    mapped by the NIfTI's own geometry) has its centre where the i-contour's polygon has its
    centroid in patient space (the contour's pixel coordinates mapped by the DICOM's geometry,
    README formula), and the polygon's area in mm2."""
    import SimpleITK as sitk

    from workflow_scripts.raw.contours import parse_contour

    index = real_resampled.index
    assert set(index["pixel_spacing_row"]) == {1.1}
    for case in real_resampled.nnunet.selection.cases:
        row = index.iloc[case.row]
        x, y = parse_contour((REAL_DATA / row["icontour"]).read_text()).T  # pixel (x, y)
        cross = x * np.roll(y, -1) - np.roll(x, -1) * y
        area = cross.sum() / 2  # shoelace, square native pixels
        centroid_x = ((x + np.roll(x, -1)) * cross).sum() / (6 * area)
        centroid_y = ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
        x_axis, y_axis = np.split(np.asarray(row["image_orientation"]), 2)
        expected = (
            np.asarray(row["image_position"])
            + centroid_x * row["source_spacing_col"] * x_axis
            + centroid_y * row["source_spacing_row"] * y_axis
        )
        folder = "labelsTs" if case.split == "test" else "labelsTr"
        label = sitk.ReadImage(
            str(real_resampled.nnunet.dataset_dir / folder / f"{case.case}.nii.gz")
        )
        rows, cols = np.nonzero(sitk.GetArrayFromImage(label)[0] == 1)
        centre = label.TransformContinuousIndexToPhysicalPoint((cols.mean(), rows.mean(), 0.0))
        assert np.linalg.norm(np.asarray(centre) - expected) < 0.25, case.case  # mm
        area_mm2 = abs(area) * row["source_spacing_row"] * row["source_spacing_col"]
        assert len(rows) * 1.1 * 1.1 == pytest.approx(area_mm2, rel=0.05), case.case


def test_nnunet_reader_returns_our_arrays_labels_and_spacing(phantom):
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    reader = SimpleITKIO()
    for case in phantom.nnunet.selection.cases:
        images, labels = ("imagesTs", "labelsTs") if case.split == "test" else (
            "imagesTr", "labelsTr")  # fmt: skip
        folder = phantom.nnunet.dataset_dir
        data, props = reader.read_images([str(folder / images / f"{case.case}_0000.nii.gz")])
        npz = phantom.version / case.npz
        image = read_sample(npz)["image"]
        assert data.shape == (1, 1, *image.shape)
        assert np.array_equal(data[0, 0], image.astype(np.float32))
        row = phantom.index.iloc[case.row]
        # nnU-Net's order is (z, y, x) = (through-plane, row spacing, column spacing); z is
        # the DICOM's SliceThickness (the phantom's cine has one, thicker than a pixel)
        assert row["slice_thickness"] > max(row["pixel_spacing_row"], row["pixel_spacing_col"])
        assert props["spacing"] == pytest.approx(
            [row["slice_thickness"], row["pixel_spacing_row"], row["pixel_spacing_col"]]
        )
        seg, seg_props = reader.read_seg(str(folder / labels / f"{case.case}.nii.gz"))
        assert np.array_equal(seg[0, 0], expected_labels(npz))
        assert seg_props["spacing"] == props["spacing"]


@pytest.mark.slow
def test_nnunet_plans_preprocesses_2d_only_and_trains_on_our_patient_level_splits(
    phantom, monkeypatch
):
    env = nnunet_env(phantom.root)
    splits_file = phantom.nnunet.splits_file
    written = splits_file.read_bytes()
    command = [
        sys.executable,
        "-c",
        "import sys; sys.argv[0] = 'nnUNetv2_plan_and_preprocess'; from nnunetv2."
        "experiment_planning.plan_and_preprocess_entrypoints import plan_and_preprocess_entry;"
        " plan_and_preprocess_entry()",
        *("-d", "501", "-c", "2d", "-npfp", "1", "-np", "1"),
        *("--verify_dataset_integrity", "--no_pbar"),
    ]
    result = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "verify_dataset_integrity Done" in result.stdout
    preprocessed = Path(env["nnUNet_preprocessed"]) / DATASET
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    assert set(plans["configurations"]) == {"2d"}  # no 3d: the slices are single
    assert plans["configurations"]["2d"]["spacing"] == pytest.approx([1.3672, 1.3672])
    assert plans["configurations"]["2d"]["patch_size"] == [64, 64]
    fingerprint = json.loads((preprocessed / "dataset_fingerprint.json").read_text())
    cases = phantom.nnunet.selection.in_split("train", "val")
    assert len(fingerprint["spacings"]) == len(cases)
    (thickness,) = set(phantom.index["slice_thickness"])  # the phantom cine's SliceThickness
    for spacing in fingerprint["spacings"]:
        assert spacing == pytest.approx([thickness, 1.3672, 1.3672])
    preprocessed_cases = {p.stem for p in (preprocessed / "nnUNetPlans_2d").glob("*.pkl")}
    assert preprocessed_cases == {c.case for c in cases}
    assert splits_file.read_bytes() == written  # preprocessing kept our folds

    # nnU-Net's trainer takes its training and validation cases from our file, fold by fold
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    study_of = {c.case: c.study_id for c in cases}
    for fold, expected in enumerate(phantom.nnunet.folds):
        trainer = nnUNetTrainer(
            {**plans, "continue_training": False}, "2d", fold, dataset_json, torch.device("cpu")
        )
        train, val = trainer.do_split()
        assert (sorted(train), sorted(val)) == (expected["train"], expected["val"])
        assert {study_of[c] for c in train}.isdisjoint(study_of[c] for c in val)
    version_fold = phantom.nnunet.folds[phantom.nnunet.version_fold]
    assert {study_of[c] for c in version_fold["val"]} == set(
        phantom.index.loc[phantom.index["split"] == "val", "study_id"]
    )

    # and trains on it: one epoch of two steps on the CPU, on the version's own split (a
    # trainer class defined here: nnU-Net's lookup of trainers by name imports every trainer
    # module, some of them timm and torchvision, which fail beside the CPU torch of CI)
    class OneEpoch(nnUNetTrainer):
        def __init__(self, plans, configuration, fold, dataset_json, device):
            super().__init__(plans, configuration, fold, dataset_json, device)
            self.num_epochs, self.num_iterations_per_epoch = 1, 2
            self.num_val_iterations_per_epoch = 1

    monkeypatch.setenv("nnUNet_n_proc_DA", "0")  # augmentation in this process
    trainer = OneEpoch(
        {**plans, "continue_training": False},
        "2d",
        phantom.nnunet.version_fold,
        dataset_json,
        torch.device("cpu"),
    )
    trainer.disable_checkpointing = True
    trainer.run_training()
    logged = trainer.logger.local_logger.my_fantastic_logging
    assert len(logged["train_losses"]) == 1 and np.isfinite(logged["train_losses"][0])
    assert np.isfinite(logged["val_losses"][0])


def test_monai_load_imaged_over_the_datalist_gives_the_npz_arrays_and_spacing(phantom):
    pytest.importorskip("monai")
    from monai.data import DataLoader, Dataset, load_decathlon_datalist
    from monai.transforms import Spacingd

    datalist = phantom.monai.datalist
    policy = json.loads(datalist.read_text())["label_policy"]
    assert policy == "blood_pool_myocardium"
    transforms = monai_transforms(policy)
    seen = {}
    for key, split in (("training", "train"), ("validation", "val"), ("test", "test")):
        items = load_decathlon_datalist(str(datalist), data_list_key=key)
        for item in Dataset(items, transform=transforms):
            npz = Path(item["label"].meta["filename_or_obj"]).resolve()
            arrays = read_sample(npz)
            image, label = item["image"], item["label"]
            assert tuple(image.shape) == (1, *arrays["image"].shape)
            assert np.array_equal(image[0].numpy(), arrays["image"].astype(np.float32))
            assert label.dtype == torch_uint8()
            assert np.array_equal(label[0].numpy(), expected_labels(npz))
            relpath = npz.relative_to(phantom.version.resolve()).as_posix()
            row = phantom.index.loc[phantom.index["npz"] == relpath].iloc[0]
            assert row["split"] == split == item["split"]
            spacing = [row["pixel_spacing_row"], row["pixel_spacing_col"]]
            assert image.pixdim.tolist() == pytest.approx(spacing)
            assert label.pixdim.tolist() == pytest.approx(spacing)
            seen[row["npz"]] = split
    exported = {c.npz: c.split for c in phantom.monai.selection.cases}
    assert seen == exported
    # MONAI's DataLoader batches the items (no value it cannot collate, such as None)
    batch = next(iter(DataLoader(Dataset(items, transform=transforms), batch_size=2)))
    assert tuple(batch["image"].shape[:2]) == (2, 1) and len(batch["study_id"]) == 2
    # Spacingd works in mm: twice the spacing halves the slice
    item = load_decathlon_datalist(str(datalist), data_list_key="training")[0]
    loaded = transforms(item)
    coarse = Spacingd(keys=["image", "label"], pixdim=(2 * 1.3672, 2 * 1.3672),
                      mode=("bilinear", "nearest"))(loaded)  # fmt: skip
    assert abs(coarse["image"].shape[1] - 32) <= 1 and abs(coarse["image"].shape[2] - 32) <= 1


def torch_uint8():
    import torch

    return torch.uint8
