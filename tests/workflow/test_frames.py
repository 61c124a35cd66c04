"""``frames: all`` on the phantom (issue 20, item 1): every frame of each study's cine in
``cines/{study_id}.npy`` and ``frames.parquet``, checked against the DICOM files read with
pydicom and placed by their own tags (:mod:`frames_checks`), with the phantom's faults and two
more (an unlabelled DICOM truncated, one of another size); the labelled build unchanged; the
rebuild byte for byte; the resample grid; ``loader.load_cine``'s errors; the key as part of the
version's identity; and evaluation of a whole-cine prediction made from such a cine."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from frames_checks import dicom_cine
from snakemake.exceptions import WorkflowError

from build_helpers import build_by_calls, sha256, tree_digests
from loader import CineError, DatasetIndex, load_cine
from loader.manifest import read_whole_manifest
from loader.sample_file import read_sample
from workflow_scripts.build_plan import plan_build
from workflow_scripts.config import default_config
from workflow_scripts.raw.phantom import PhantomSpec, phantom_dicom, write_phantom
from workflow_scripts.study.resample import ResampleGrid
from workflow_scripts.version_config import from_recorded_config

STUDIES = ("PHANTOM0001", "PHANTOM0002", "PHANTOM0003")
SIZE = 64


def faulty_phantom(root):
    """The phantom with its faults (a contour without DICOM in study 1, a truncated labelled
    DICOM 4.dcm in study 2, a missing study 4), 10 DICOMs per study (3 positions of 4 phases,
    the last one holding 2), and two more faults among the unlabelled DICOMs: study 1's 3.dcm
    truncated, study 3's 5.dcm 32x32 instead of 64x64."""
    raw = write_phantom(root, PhantomSpec(studies=3, slices=10, size=SIZE, seed=0, faults=True))
    third = raw / "dicoms" / "PHANTOM0001" / "3.dcm"
    data = third.read_bytes()
    third.write_bytes(data[: len(data) - 2000])  # the header intact, the pixels cut short
    small = phantom_dicom(np.full((32, 32), 7, np.int16), "PHANTOM0003", 5, cine=True)
    (raw / "dicoms" / "PHANTOM0003" / "5.dcm").write_bytes(small)
    return raw


def build(raw, out, **overrides):
    config = default_config(data_dir=str(raw), out_dir=str(out), contours=["i", "o"], **overrides)
    build_by_calls(config)
    return out / "1.0.0"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames")
    raw = faulty_phantom(root / "raw")
    return raw, build(raw, root / "all", frames="all"), build(raw, root / "labelled")


def test_each_cine_holds_the_pixels_of_the_dicom_its_tags_place_there(built):
    raw, version, _ = built
    for study in STUDIES:
        images, frames = load_cine(version, study)
        assert isinstance(images, np.memmap) and not images.flags.writeable
        assert images.shape == (3, 4, SIZE, SIZE) and images.dtype == np.dtype("<i2")
        assert list(zip(frames["position"], frames["phase"], strict=True)) == [
            (p, t) for p in range(3) for t in range(4)
        ]
        expected = dicom_cine(raw / "dicoms" / study)
        for row in frames.itertuples():
            name, pixels = expected.get((row.position, row.phase), (None, None))
            good = pixels is not None and pixels.shape == (SIZE, SIZE)
            assert row.present == good, (study, row.position, row.phase)
            dicom = row.dicom if isinstance(row.dicom, str) else None
            assert dicom == (f"dicoms/{study}/{name}" if name else None)
            if good:
                assert np.array_equal(images[row.position, row.phase], pixels)
            else:
                assert not images[row.position, row.phase].any()  # zeros where missing
        # 10 DICOMs: the last position holds phases 0 and 1 only
        tail = frames[frames["position"] == 2].set_index("phase")
        assert list(tail["slice"].iloc[:2]) == [9, 10] and tail["slice"].iloc[2:].isna().all()
        assert list(frames["cardiac_phase"].iloc[:4]) == ["", "ES", "", "ED"]
        assert frames["trigger_time"].iloc[:4].tolist() == [25.0, 225.0, 425.0, 625.0]
        assert frames["position_mm"].iloc[::4].tolist() == pytest.approx([0.0, 10.0, 20.0])


def test_frames_left_out_keep_or_get_their_error_row(built):
    _, version, _ = built
    validation = pd.read_parquet(version / "validation.parquet")
    frames = pd.read_parquet(version / "frames.parquet").set_index("dicom")

    def rows(path):
        return validation[validation["path"] == path]

    # an unlabelled DICOM truncated: a new row of the code a labelled one gets
    truncated = rows("dicoms/PHANTOM0001/3.dcm")
    assert list(truncated["code"]) == ["dicom_unreadable"]
    assert truncated["severity"].iloc[0] == "error" and truncated["slice"].iloc[0] == 3
    # a labelled DICOM truncated: its slice's own row, not a second one
    labelled = rows("dicoms/PHANTOM0002/4.dcm")
    assert list(labelled["code"]) == ["dicom_unreadable"]
    assert labelled["contour"].iloc[0].endswith("IM-0001-0004-icontour-manual.txt")
    # an unlabelled DICOM of another size
    small = rows("dicoms/PHANTOM0003/5.dcm")
    assert list(small["code"]) == ["slice_shape_mismatch"]
    assert "32x32" in small["message"].iloc[0]
    for path, code in [
        ("dicoms/PHANTOM0001/3.dcm", "dicom_unreadable"),
        ("dicoms/PHANTOM0002/4.dcm", "dicom_unreadable"),
        ("dicoms/PHANTOM0003/5.dcm", "slice_shape_mismatch"),
    ]:
        assert not frames.loc[path, "present"] and code in frames.loc[path, "codes"]
    # every DICOM with a place has a row; every row without a DICOM is a missing frame
    assert len(frames.index.dropna()) == 3 * 10
    table = pd.read_parquet(version / "frames.parquet")
    assert not table[table["dicom"].isna()]["present"].any()


def test_each_sample_is_its_frame_and_names_its_index_row(built):
    _, version, _ = built
    index = pd.read_parquet(version / "index.parquet")
    table = pd.read_parquet(version / "frames.parquet")
    samples = table[table["index_row"].notna()]
    assert sorted(samples["index_row"].astype(int)) == list(range(len(index)))
    assert table["npz"].notna().sum() == len(index)
    for row in samples.itertuples():
        sample = index.iloc[int(row.index_row)]
        assert (sample["study_id"], sample["slice"], sample["npz"]) == (
            row.study_id,
            row.slice,
            row.npz,
        )
        assert (sample["position"], sample["phase"]) == (row.position, row.phase)
        images, _ = load_cine(version, row.study_id)
        image = read_sample(version / row.npz)["image"]
        assert image.dtype == images.dtype
        assert np.array_equal(image, images[row.position, row.phase])
        assert row.pixel_spacing_row == sample["pixel_spacing_row"]


def test_the_labelled_build_is_the_same_and_has_no_cine(built):
    _, every, labelled = built
    all_files, labelled_files = tree_digests(every), tree_digests(labelled)
    extra = sorted(set(all_files) - set(labelled_files))
    assert extra == ["cines/PHANTOM0001.npy", "cines/PHANTOM0002.npy", "cines/PHANTOM0003.npy",
                     "frames.parquet"]  # fmt: skip
    same = [
        name
        for name in labelled_files
        if name.startswith(("slices/", "pairs/")) or name in ("index.parquet", "measures.parquet")
    ]
    assert len(same) == 20  # 14 samples, 4 pairing tables, the index and the measures
    assert all(all_files[name] == labelled_files[name] for name in same)
    manifest = read_whole_manifest(labelled / "manifest.json")
    assert "frames" not in manifest["build_config"]  # as before the key existed
    with pytest.raises(CineError, match="frames: labelled"):
        load_cine(labelled, "PHANTOM0001")


def test_the_manifest_lists_the_cines_and_the_frames_table(built):
    _, version, _ = built
    manifest = read_whole_manifest(version / "manifest.json")
    assert manifest["build_config"]["frames"] == "all"
    for name in ("cines/PHANTOM0001.npy", "frames.parquet"):
        assert manifest["outputs"][name]["sha256"] == sha256(version / name)
    DatasetIndex(version, verify="full")  # every listed file as recorded


def test_a_rebuild_gives_the_same_bytes(built, tmp_path):
    raw, version, _ = built
    again = build(raw, tmp_path / "again", frames="all")
    assert tree_digests(again) == tree_digests(version)  # every file but the manifest
    manifests = [read_whole_manifest(v / "manifest.json") for v in (again, version)]
    assert manifests[0]["outputs"] == manifests[1]["outputs"]
    assert manifests[0]["build_config"] == manifests[1]["build_config"]


def test_load_cine_says_what_is_wrong(built, tmp_path):
    _, version, _ = built
    with pytest.raises(CineError, match="unknown study 'SCD9'"):
        load_cine(version, "SCD9")
    with pytest.raises(CineError, match="PHANTOM0004 has no cine"):
        load_cine(version, "PHANTOM0004")  # listed in link.csv, not on disk
    copy = tmp_path / "1.0.0"
    shutil.copytree(version, copy)
    cine = copy / "cines" / "PHANTOM0002.npy"
    cine.write_bytes(cine.read_bytes()[:100])
    with pytest.raises(CineError, match=r"PHANTOM0002\.npy: 100 bytes"):
        load_cine(copy, "PHANTOM0002")
    cine.unlink()
    with pytest.raises(CineError, match=r"PHANTOM0002\.npy: the cine file is missing"):
        load_cine(copy, "PHANTOM0002")
    images, _ = load_cine(version, "PHANTOM0001", mmap=False)
    assert not isinstance(images, np.memmap)


def test_frames_is_part_of_the_versions_identity(built, tmp_path):
    raw, _, labelled = built
    config = default_config(
        data_dir=str(raw), out_dir=str(labelled.parent), contours=["i", "o"], frames="all"
    )
    with pytest.raises(WorkflowError, match="config frames: 'labelled' -> 'all'"):
        plan_build(config)
    # a version made from the frames: all one carries the key
    _, every, _ = built
    config = default_config(out_dir=str(every.parent), version="1.1.0", from_version="1.0.0")
    from_recorded_config(config, {"from_version": "1.0.0", "version": "1.1.0"})
    assert config["frames"] == "all"


def test_on_a_resample_grid_every_frame_is_put_on_it(tmp_path):
    raw = write_phantom(tmp_path / "raw", PhantomSpec(studies=2, slices=8, size=SIZE, seed=1,
                                                      faults=False))  # fmt: skip
    grid = {"spacing_mm": 2.0, "shape": [40, 36]}
    version = build(raw, tmp_path / "out", frames="all", resample=grid)
    on_grid = ResampleGrid.from_config(grid)
    for study in ("PHANTOM0001", "PHANTOM0002"):
        images, frames = load_cine(version, study)
        assert images.shape == (2, 4, 40, 36) and images.dtype == np.dtype("<f4")
        assert frames["present"].all()
        assert (frames["pixel_spacing_row"] == 2.0).all()
        assert (frames["source_spacing_col"] == 1.3672).all()
        for (position, phase), (_, pixels) in dicom_cine(raw / "dicoms" / study).items():
            placed = on_grid.place(pixels.shape, (1.3672, 1.3672)).image(pixels)
            assert np.array_equal(images[position, phase], placed)
        for row in frames[frames["npz"].notna()].itertuples():
            image = read_sample(version / row.npz)["image"]
            assert np.array_equal(image, images[row.position, row.phase])


def test_a_whole_cine_prediction_from_the_stored_masks_gives_the_manual_ef(tmp_path):
    """The manual ED and ES masks placed in each study's cine (from load_cine's frames table),
    every other frame the ED mask less one pixel (between the two: the ES radii are 0.8 of the
    ED ones, 9 pixels and more here): evaluation finds the manual ED, ES and EF."""
    from scipy import ndimage

    from loader.evaluation import evaluate

    raw = write_phantom(tmp_path / "raw", PhantomSpec(studies=3, slices=12, size=128, seed=2,
                                                      faults=False))  # fmt: skip
    version = build(raw, tmp_path / "out", frames="all")
    measures = pd.read_parquet(version / "measures.parquet").set_index("study_id")
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    for study in measures.index:
        images, frames = load_cine(version, study)
        cine = np.zeros(images.shape, dtype=bool)
        masks = {
            (row.position, row.phase): read_sample(version / row.npz)["mask"]
            for row in frames[frames["npz"].notna()].itertuples()
        }
        ed, es = int(measures.loc[study, "ed_phase"]), int(measures.loc[study, "es_phase"])
        for position in range(images.shape[0]):
            cine[position, :] = ndimage.binary_erosion(masks[(position, ed)])
            cine[position, ed] = masks[(position, ed)]
            cine[position, es] = masks[(position, es)]
        np.save(predictions / f"{study}.npy", cine)
    result = evaluate(version, predictions)
    studies = result.studies.set_index("study_id")
    assert (studies["source"] == "cine").all()
    assert list(studies["ed_phase"]) == list(measures["ed_phase"]) == [3, 3, 3]
    assert list(studies["es_phase"]) == list(measures["es_phase"]) == [1, 1, 1]
    # the EF of the stored masks (pixel counts: area and spacing cancel), by hand; within a
    # point of the polygons' EF of measures.parquet (masks are pixel centres inside them)
    for study in measures.index:
        _, frames = load_cine(version, study)
        pixels = {}
        for row in frames[frames["npz"].notna()].itertuples():
            count = int(read_sample(version / row.npz)["mask"].sum())
            pixels[row.cardiac_phase] = pixels.get(row.cardiac_phase, 0) + count
        ef = 100 * (pixels["ED"] - pixels["ES"]) / pixels["ED"]
        assert studies.loc[study, "ef_percent"] == pytest.approx(ef)
        assert studies.loc[study, "ef_percent"] == pytest.approx(
            measures.loc[study, "ef_percent"], abs=1.0
        )
    assert (result.contours["dice"] == 1.0).all()


def test_a_slice_left_out_for_its_label_keeps_its_image_in_the_cine(tmp_path):
    """A reviewer's exclusion (and a contour that cannot be parsed) leaves the label out, not
    the image: the frame is present, with no index row, and its codes say why."""
    from workflow_scripts.layout import Layout
    from workflow_scripts.raw.links import read_link_table
    from workflow_scripts.study.build import build_study
    from workflow_scripts.study.options import BuildOptions

    raw = write_phantom(tmp_path / "raw", PhantomSpec(studies=1, slices=8, size=SIZE, seed=3,
                                                      faults=False))  # fmt: skip
    contour = raw / "contourfiles" / "PH-HF-1" / "i-contours" / "IM-0001-0006-icontour-manual.txt"
    contour.write_text("not a number\n")
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"), frames="all")
    layout = Layout.from_config(config)
    [link] = read_link_table(raw / "link.csv")
    decision = {"slice": 4, "reason": "blurred", "reviewer": "me", "date": "2026-12-06"}
    record = build_study(link, layout, BuildOptions.from_config(config), exclusions=[decision])
    frames = {(row["position"], row["phase"]): row for row in record["frames"]}
    images = np.load(layout.cine_file("PHANTOM0001"), mmap_mode="r")
    expected = dicom_cine(raw / "dicoms" / "PHANTOM0001")
    for place, number, code in [((0, 3), 4, "excluded_by_review"), ((1, 1), 6, "contour_")]:
        row = frames[place]
        assert row["slice"] == number and row["present"] and row["npz"] is None
        assert code in row["codes"]
        assert np.array_equal(images[place], expected[place][1])
    assert len(record["samples"]) == 4 - 2
    assert sum(row["present"] for row in record["frames"]) == 8
