"""Study builds with geometry: index columns, problem rows, and the resampled grid's masks.

Each test writes a tiny study in the raw layout (DICOMs made with pydicom, contour files by
hand), builds it with ``build_study`` and the dataset tables, and checks the result against
hand-computed values (areas from pi r^2, offsets from the stated convention).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from snakemake.exceptions import WorkflowError

import dicom_factory as make
from loader.sample_file import read_sample
from workflow_scripts.config import check_config, default_config
from workflow_scripts.dataset.batch_tables import batch_tables
from workflow_scripts.dataset.manifest import build_config
from workflow_scripts.dataset.tables import write_dataset_tables
from workflow_scripts.layout import STUDY_PLOT, Layout
from workflow_scripts.raw.links import read_link_table
from workflow_scripts.raw.phantom import PhantomSpec, contour_text, write_phantom
from workflow_scripts.study.build import build_study
from workflow_scripts.study.options import BuildOptions

STUDY, ORIGINAL = "S1", "O-1"


def contour_path(kind: str, number: int) -> str:
    return f"contourfiles/{ORIGINAL}/{kind}-contours/IM-0001-{number:04d}-{kind}contour-manual.txt"


def write_study(root: Path, dicoms: dict[int, bytes], contours: dict[tuple[str, int], str]):
    """A one-study raw dataset: ``dicoms`` by file number, ``contours`` by (kind, number)."""
    (root / "dicoms" / STUDY).mkdir(parents=True)
    for number, data in dicoms.items():
        (root / "dicoms" / STUDY / f"{number}.dcm").write_bytes(data)
    for (kind, number), text in contours.items():
        path = root / contour_path(kind, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "link.csv").write_text(f"patient_id,original_id\n{STUDY},{ORIGINAL}\n")
    return root


def build(root: Path, out: Path, resample=None, contours=("i",)):
    """Build every study of ``root``; return (record of the first study, index, validation)."""
    config = default_config(
        data_dir=str(root), out_dir=str(out), contours=list(contours), resample=resample
    )
    layout, options = Layout.from_config(config), BuildOptions.from_config(config)
    links = read_link_table(root / "link.csv")
    records = [build_study(link, layout, options) for link in links]
    index, validation = (
        layout.version_dir / "index.parquet",
        layout.version_dir / "validation.parquet",
    )
    write_dataset_tables(
        batch_tables(root, records),
        links,
        root,
        tuple(contours),
        layout.version,
        config["splits"],
        config["split_seed"],
        index,
        validation,
    )
    validation = pd.read_parquet(validation)
    # These studies are single DICOMs written without the cine's tags: their cine warnings
    # (tested in test_cine.py) are left out here.
    cine = validation["code"].str.startswith("cine_") | (
        validation["code"] == "measures_unavailable"
    )
    validation = validation[~cine].reset_index(drop=True)
    return records[0], pd.read_parquet(index), validation, layout


def ellipse(cx: float, cy: float, ax: float, ay: float, count: int = 720) -> np.ndarray:
    """Vertices (x, y) on an ellipse with semi-axes ax (columns) and ay (rows), in pixels."""
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.stack([cx + ax * np.cos(angles), cy + ay * np.sin(angles)], axis=1)


def disc_study(root: Path, radius_mm: float, spacing: tuple[float, float], shape: tuple[int, int]):
    """One slice whose i-contour is a disc of ``radius_mm``, drawn bright in the image too;
    ``spacing`` is PixelSpacing (row, column) in mm. The centre, CENTRE_MM from the image's
    top-left outer corner, is off the pixel lattice's symmetries (a disc centred on a pixel
    centre or corner has pixel counts off its area by up to ~20 pixels at these radii, in steps
    of 4 or 8)."""
    rows, columns = shape
    cy, cx = (CENTRE_MM[0] / spacing[0] - 0.5, CENTRE_MM[1] / spacing[1] - 0.5)
    ay, ax = radius_mm / spacing[0], radius_mm / spacing[1]
    r, c = np.mgrid[0:rows, 0:columns]
    image = np.where(((c - cx) / ax) ** 2 + ((r - cy) / ay) ** 2 <= 1, 1000, 100).astype(np.int16)
    dicom = make.standard(image, 1, PixelSpacing=[str(spacing[0]), str(spacing[1])])
    text = "".join(f"{x:.6f} {y:.6f}\n" for x, y in ellipse(cx, cy, ax, ay))
    return write_study(root, {1: dicom}, {("i", 1): text})


CENTRE_MM = (57.31, 61.17)  # (down, right) of the image's outer top-left corner, mm


def check_disc(mask: np.ndarray, radius_mm: float, spacing_mm: float, offset: int) -> None:
    """The mask is the set of pixel centres inside the disc, computed here from its definition:
    pixel (r, c) of a grid of ``spacing_mm`` whose first pixel is full-grid pixel ``offset``
    has its centre at ((c + offset + 0.5) S, (r + offset + 0.5) S) mm from the outer corner.
    Pixels within 0.01 pixel of the circle are left out of the comparison (the contour is a
    720-gon, within 0.0003 pixel of the circle)."""
    r, c = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    y, x = (r + offset + 0.5) * spacing_mm, (c + offset + 0.5) * spacing_mm
    distance = np.hypot(y - CENTRE_MM[0], x - CENTRE_MM[1]) / spacing_mm  # in pixels
    clear = np.abs(distance - radius_mm / spacing_mm) > 0.01
    np.testing.assert_array_equal(mask[clear], (distance < radius_mm / spacing_mm)[clear])
    expected = np.pi * radius_mm**2 / spacing_mm**2
    assert abs(int(mask.sum()) - expected) <= 0.005 * expected


def square(x0: float, y0: float, x1: float, y1: float) -> str:
    return contour_text(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))


# ----------------------------------------------------------------------------- disc phantom


@pytest.mark.parametrize(("target", "size"), [(1.0, 160), (1.6, 96)])
def test_disc_of_known_radius_has_its_area_in_pixels_of_the_target_grid(tmp_path, target, size):
    # A 30 mm disc on 0.8 mm pixels (200 x 200, 160 mm): pi * 30^2 / S^2 pixels at S mm, 2827.4
    # at 1.0 mm, 1104.5 at 1.6 mm, to within 0.5% (pixel-centre counting of a disc is off its
    # area by a few pixels: the Gauss circle problem). Full grids: 160 and 100 pixels; the
    # 96-pixel grid starts at full-grid pixel (100 - 96) // 2 = 2.
    disc_study(tmp_path / "raw", 30.0, (0.8, 0.8), (200, 200))
    grid = {"spacing_mm": target, "shape": [size, size]}
    _, index, _, layout = build(tmp_path / "raw", tmp_path / "out", grid)
    mask = read_sample(layout.version_dir / index.npz[0])["mask"]
    assert mask.shape == (size, size)
    check_disc(mask, 30.0, target, offset=(round(160 / target) - size) // 2)
    assert index.pixel_spacing_row[0] == target and index.pixel_spacing_col[0] == target


def test_disc_on_the_native_grid_has_its_area_in_native_pixels(tmp_path):
    disc_study(tmp_path / "raw", 30.0, (0.8, 0.8), (200, 200))
    _, index, _, layout = build(tmp_path / "raw", tmp_path / "out")
    check_disc(read_sample(layout.version_dir / index.npz[0])["mask"], 30.0, 0.8, offset=0)


def test_non_square_pixels_become_square_with_rows_and_columns_in_dicom_order(tmp_path):
    # PixelSpacing [0.5, 1.0]: rows 0.5 mm apart. A 25 mm disc is 100 rows by 50 columns tall
    # and wide natively; on a 1 mm grid it is round, 50 pixels either way, and the resampled
    # image's bright disc lies on the mask.
    disc_study(tmp_path / "raw", 25.0, (0.5, 1.0), (240, 120))
    _, index, _, layout = build(
        tmp_path / "raw", tmp_path / "out", {"spacing_mm": 1.0, "shape": [120, 120]}
    )
    arrays = read_sample(layout.version_dir / index.npz[0])
    mask = arrays["mask"]
    rows, columns = np.nonzero(mask)
    assert abs((rows.max() - rows.min() + 1) - 50) <= 1
    assert abs((columns.max() - columns.min() + 1) - 50) <= 1
    check_disc(mask, 25.0, 1.0, offset=0)  # full grids: 240 * 0.5 = 120 * 1.0 = 120 pixels
    bright = arrays["image"] > 550  # halfway between the disc (1000) and the background (100)
    assert (bright & mask).sum() / (bright | mask).sum() > 0.97
    assert (index.source_spacing_row[0], index.source_spacing_col[0]) == (0.5, 1.0)


# ----------------------------------------------------------------------------- index columns


def test_index_carries_the_dicom_geometry_on_the_native_grid(tmp_path):
    tags = {
        "PixelSpacing": ["1.367188", "1.2891"],
        "SliceThickness": "10",
        "SliceLocation": "-16.634",
        "ImagePositionPatient": ["162.673", "35.6185", "144.459"],
        "ImageOrientationPatient": ["1", "0", "0", "0", "1", "0"],
    }
    dicom = make.standard(make.pixels(), 2, **tags)
    write_study(tmp_path / "raw", {2: dicom}, {("i", 2): square(10, 10, 30, 30)})
    _, index, validation, _ = build(tmp_path / "raw", tmp_path / "out")
    row = index.iloc[0]
    assert (row.pixel_spacing_row, row.pixel_spacing_col) == (1.367188, 1.2891)
    assert (row.source_spacing_row, row.source_spacing_col) == (1.367188, 1.2891)
    assert (row.grid_origin_row, row.grid_origin_col) == (0.0, 0.0)
    assert (row.slice_thickness, row.slice_location) == (10.0, -16.634)
    assert list(row.image_position) == [162.673, 35.6185, 144.459]
    assert list(row.image_orientation) == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert row.image_dtype == "int16"
    assert validation.empty


def test_index_carries_the_grid_and_the_source_geometry_when_resampled(tmp_path):
    # 64 x 64 pixels of 1.367188 mm onto 1.3 mm: full grid floor(64 * 1.367188 / 1.3 + 0.5) = 67
    # pixels, 48 kept from c0 = (67 - 48) // 2 = 9; stored pixel 0 sits at native
    # (9 + 0.5) * 1.3 / 1.367188 - 0.5.
    dicom = make.standard(make.pixels(), 2, PixelSpacing=["1.367188", "1.367188"])
    write_study(tmp_path / "raw", {2: dicom}, {("i", 2): square(20, 20, 40, 40)})
    _, index, _, layout = build(
        tmp_path / "raw", tmp_path / "out", {"spacing_mm": 1.3, "shape": [48, 48]}
    )
    row = index.iloc[0]
    assert (row.pixel_spacing_row, row.pixel_spacing_col) == (1.3, 1.3)
    assert (row.source_spacing_row, row.source_spacing_col) == (1.367188, 1.367188)
    origin = 9.5 * 1.3 / 1.367188 - 0.5
    assert row.grid_origin_row == pytest.approx(origin) and row.grid_origin_col == pytest.approx(
        origin
    )
    assert (row.height, row.width, row.image_dtype) == (48, 48, "float32")
    arrays = read_sample(layout.version_dir / row.npz)
    assert arrays["image"].dtype == np.float32 and arrays["mask"].shape == (48, 48)


def test_index_geometry_columns_have_fixed_types(tmp_path):
    write_study(
        tmp_path / "raw", {2: make.standard(make.pixels(), 2)}, {("i", 2): square(5, 5, 9, 9)}
    )
    build(tmp_path / "raw", tmp_path / "out")
    import pyarrow.parquet as pq

    schema = pq.read_schema(tmp_path / "out" / "1.0.0" / "index.parquet")
    for name in ("pixel_spacing_row", "pixel_spacing_col", "slice_thickness", "slice_location"):
        assert str(schema.field(name).type) == "double"
    assert str(schema.field("image_position").type) == "fixed_size_list<element: double>[3]"
    assert str(schema.field("image_orientation").type) == "fixed_size_list<element: double>[6]"


# ----------------------------------------------------------------------------- problems


def without_spacing(number: int) -> bytes:
    ds = make.dataset(make.pixels(), number)
    del ds.PixelSpacing
    return make.encode(ds, enforce_file_format=True)


def test_dicom_without_spacing_is_a_sample_with_null_spacing_and_a_warning(tmp_path):
    write_study(tmp_path / "raw", {4: without_spacing(4)}, {("i", 4): square(5, 5, 20, 20)})
    _, index, validation, _ = build(tmp_path / "raw", tmp_path / "out")
    assert len(index) == 1
    assert np.isnan(index.pixel_spacing_row[0]) and np.isnan(index.pixel_spacing_col[0])
    assert index["flags"][0] == "pixel_spacing_missing"
    [row] = validation.itertuples()
    assert (row.code, row.severity, row.path) == (
        "pixel_spacing_missing",
        "warning",
        f"dicoms/{STUDY}/4.dcm",
    )
    assert "no PixelSpacing element" in row.message


def test_dicom_without_spacing_cannot_be_resampled_and_its_contours_are_accounted(tmp_path):
    contours = {("i", 4): square(5, 5, 20, 20), ("o", 4): square(3, 3, 22, 22)}
    write_study(tmp_path / "raw", {4: without_spacing(4)}, contours)
    grid = {"spacing_mm": 1.0, "shape": [64, 64]}
    _, index, validation, _ = build(tmp_path / "raw", tmp_path / "out", grid, ("i", "o"))
    assert index.empty
    rows = {(row.code, row.severity, row.contour) for row in validation.itertuples()}
    assert rows == {
        ("resample_spacing_missing", "error", contour_path("i", 4)),
        ("ocontour_unpaired", "error", contour_path("o", 4)),
    }


def test_contours_cut_by_the_centre_crop_are_refused_and_accounted(tmp_path):
    # 64 x 64 pixels of 1 mm onto a 32 x 32 grid of 1 mm: c0 = (64 - 32) // 2 = 16, so the grid
    # holds native pixels 16 to 47. Slice 2's i-contour lies inside it; its o-contour reaches
    # native 10, outside. Slice 4's i-contour lies at native 2 to 12, outside.
    dicoms = {n: make.standard(make.pixels(), n, PixelSpacing=["1.0", "1.0"]) for n in (2, 4)}
    contours = {
        ("i", 2): square(20, 20, 40, 40),
        ("o", 2): square(10, 18, 42, 42),
        ("i", 4): square(2, 2, 12, 12),
    }
    write_study(tmp_path / "raw", dicoms, contours)
    grid = {"spacing_mm": 1.0, "shape": [32, 32]}
    _, index, validation, layout = build(tmp_path / "raw", tmp_path / "out", grid, ("i", "o"))
    assert list(index.slice) == [2] and not index.has_omask[0]
    rows = {(row.code, row.contour) for row in validation.itertuples()}
    assert rows == {
        ("contour_outside_grid", contour_path("o", 2)),
        ("contour_outside_grid", contour_path("i", 4)),
    }
    # the kept mask is the native square moved by -16: columns and rows 20..40 -> 4..24
    mask = read_sample(layout.version_dir / index.npz[0])["mask"]
    # (centres on the left and top edges are inside, on the right and bottom edges outside)
    expected = np.zeros((32, 32), bool)
    expected[4:24, 4:24] = True
    np.testing.assert_array_equal(mask, expected)


# ----------------------------------------------------------------------------- native builds


def test_native_build_files_are_the_bytes_built_before_geometry_was_added(tmp_path):
    # Digests of every npz and pairing table of this phantom build, recorded at commit b9727dd
    # (before the geometry columns and the resample option): native builds must not change.
    # Only index.parquet gains columns, and each study's qc/ folder its plot (drawn by its
    # build since), which is not among them. The pictures (overlays, contact sheets) were the
    # bytes of b9727dd too until overlay captions too wide for a slice wrapped instead of being
    # cut (issue 18): every caption of these 64-pixel slices is, so their digest was recorded
    # again then, with the code of that commit shown to give b9727dd's digest of all 30 files.
    # Both were pinned again when the phantom became a cine (issue 19: new pixels, new pairs
    # columns); the npz and pairing digest is the one the cine branch gave alone, before it was
    # merged with the copied-contour and caption changes, which therefore changed no such byte.
    raw = write_phantom(
        tmp_path / "raw", PhantomSpec(studies=3, slices=8, size=64, seed=0, faults=True)
    )
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"), contours=["i", "o"])
    layout, options = Layout.from_config(config), BuildOptions.from_config(config)
    for link in read_link_table(raw / "link.csv"):
        build_study(link, layout, options)
    files = sorted(path for path in layout.version_dir.rglob("*") if path.is_file())
    plots = [path for path in files if path.name == STUDY_PLOT]
    assert [path.parent.name for path in plots] == [f"PHANTOM000{n}" for n in (1, 2, 3, 4)]
    files = [path for path in files if path.name != STUDY_PLOT]
    digests = {
        path.relative_to(layout.version_dir).as_posix(): hashlib.sha256(path.read_bytes())
        for path in files
    }

    def listing_digest(pictures: bool) -> str:
        listing = "".join(
            f"{name} {digest.hexdigest()}\n"
            for name, digest in digests.items()
            if name.startswith("qc/") == pictures
        )
        return hashlib.sha256(listing.encode()).hexdigest()

    assert len(files) == 30
    assert listing_digest(pictures=False) == (  # 15 npz and pairing tables of the cine phantom
        "796e133f32f8a69e26efa980945f03af1de9a7d4abb56fa42859574fcd722239"
    )
    assert listing_digest(pictures=True) == (  # 15 overlays and contact sheets: wrapped captions
        "9deb25bc7cfd1a0ffeaca074428325e3b2396a5940a221c9da4e283d12368699"
    )


def test_a_grid_typed_as_text_is_checked_and_kept_as_numbers(tmp_path):
    # Snakemake's --config gives text; the job parameters and the manifest must not depend on
    # how the grid was typed, or the same version would look changed.
    config = default_config(
        out_dir=str(tmp_path), resample={"spacing_mm": "1.30", "shape": ["256", "256"]}
    )
    check_config(config)
    assert config["resample"] == {"spacing_mm": 1.3, "shape": [256, 256]}
    with pytest.raises(WorkflowError, match="9999"):
        default_config(out_dir=str(tmp_path), resample={"spacing_mm": 1, "shape": ["9999", "8"]})


def test_the_version_records_the_grid_only_when_there_is_one(tmp_path):
    native = default_config(out_dir=str(tmp_path))
    assert "resample" not in build_config(native, phantom=True)
    as_text = default_config(resample={"spacing_mm": "1.30", "shape": ["256", "256"]})
    as_numbers = default_config(resample={"spacing_mm": 1.3, "shape": [256, 256]})
    assert build_config(as_text, phantom=True)["resample"] == {
        "spacing_mm": 1.3,
        "shape": [256, 256],
    }
    assert build_config(as_text, phantom=True) == build_config(as_numbers, phantom=True)
