"""Where a build's files go: every path the Layout names, for data and for the phantom."""

from __future__ import annotations

import ast
from pathlib import Path

from workflow_scripts.config import default_config
from workflow_scripts.layout import CONTACT_SHEET, STUDY_PLOT, Layout, RawLayout
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom


def test_paths_of_a_build_from_raw_data():
    layout = Layout.from_config(default_config(data_dir="/data/sb", out_dir="res", version="2.1"))
    assert (layout.data_dir, layout.phantom) == (Path("/data/sb"), False)
    assert layout.version_dir == Path("res/2.1")
    assert layout.work_dir == Path("res/work/2.1")
    assert layout.log_dir == Path("res/logs/2.1")
    assert layout.manifest == Path("res/2.1/manifest.json")
    assert layout.index_file == Path("res/2.1/index.parquet")
    assert layout.validation_file == Path("res/2.1/validation.parquet")


def test_paths_of_a_study():
    layout = Layout.from_config(default_config(data_dir="/data", out_dir="/out", version="2.1"))
    assert layout.pairs_file("S1") == Path("/out/2.1/pairs/S1.parquet")
    assert layout.slices_dir("S1") == Path("/out/2.1/slices/S1")
    assert layout.qc_dir("S1") == Path("/out/2.1/qc/S1")
    assert layout.sample_file("S1", 7) == Path("/out/2.1/slices/S1/0007.npz")
    assert layout.sample_file("S1", 12345) == Path("/out/2.1/slices/S1/12345.npz")
    assert layout.overlay_file("S1", 20) == Path("/out/2.1/qc/S1/0020.png")
    assert layout.contact_sheet("S1") == Path("/out/2.1/qc/S1") / CONTACT_SHEET
    assert CONTACT_SHEET == "contact_sheet.jpg"
    assert layout.study_plot("S1") == Path("/out/2.1/qc/S1") / STUDY_PLOT
    assert STUDY_PLOT == "mask_areas.png"
    assert layout.study_record("S1") == Path("/out/work/2.1/studies/S1.json")
    assert layout.report_page("S1") == Path("/out/work/2.1/studies/S1.html")


def test_the_versions_own_qc_files_are_the_review_sheet_and_the_dataset_plots():
    layout = Layout.from_config(default_config(data_dir="/data", out_dir="/out", version="2.1"))
    assert layout.version_qc == [
        Path("/out/2.1/qc/review.html"),
        Path("/out/2.1/qc/plots/mask_areas.png"),
        Path("/out/2.1/qc/plots/area_to_median.png"),
        Path("/out/2.1/qc/plots/intensities.png"),
    ]


def test_study_paths_take_the_wildcard_for_the_rule_files():
    layout = Layout.from_config(default_config(out_dir="out", version="2.1"))
    assert str(layout.pairs_file("{study}")) == "out/2.1/pairs/{study}.parquet"
    assert str(layout.slices_dir("{study}")) == "out/2.1/slices/{study}"
    assert str(layout.study_record("{study}")) == "out/work/2.1/studies/{study}.json"


def test_paths_in_the_version_folder_are_posix_and_relative():
    layout = Layout.from_config(default_config(data_dir="/d", out_dir="/o"))
    assert layout.in_version(layout.sample_file("S", 3)) == "slices/S/0003.npz"
    assert layout.in_version(layout.index_file) == "index.parquet"


def test_the_phantom_lives_in_the_work_folder_outside_any_version():
    layout = Layout.from_config(default_config(out_dir="out"))
    assert layout.phantom
    assert layout.data_dir == Path("out/work/_phantom")
    assert not layout.data_dir.is_relative_to(layout.version_dir)
    assert not layout.data_dir.is_relative_to(layout.work_dir)


def test_two_versions_share_no_folder():
    one = Layout.from_config(default_config(out_dir="out", version="1.0.0"))
    two = Layout.from_config(default_config(out_dir="out", version="2.0.0"))
    folders = ("version_dir", "work_dir", "log_dir")
    for a in folders:
        for b in folders:
            assert not getattr(two, a).is_relative_to(getattr(one, b))
            assert not getattr(one, a).is_relative_to(getattr(two, b))


# ------------------------------------------------------------------------- the raw data folder


def test_the_raw_layout_names_the_sunnybrook_layout(tmp_path):
    """The layout of ../shared/DESIGN.md, typed out here, against RawLayout and the phantom
    written through it."""
    raw = RawLayout(Path("/data"))
    assert raw.link_csv == Path("/data/link.csv")
    assert raw.dicom_relpath("SCD0000101", 7) == "dicoms/SCD0000101/7.dcm"
    assert raw.contour_kind_relpath("SC-HF-I-1", "o") == "contourfiles/SC-HF-I-1/o-contours"
    assert raw.path("dicoms/SCD0000101/7.dcm") == Path("/data/dicoms/SCD0000101/7.dcm")
    config = default_config(data_dir="/data")
    assert Layout.from_config(config).raw == raw
    phantom = RawLayout(write_phantom(tmp_path, PhantomSpec.with_defaults(studies=1, slices=4)))
    assert phantom.link_csv.read_text().splitlines()[1] == "PHANTOM0001,PH-HF-1"
    assert (tmp_path / "dicoms" / "PHANTOM0001" / "2.dcm").is_file()
    assert phantom.path(phantom.dicom_relpath("PHANTOM0001", 2)).is_file()
    contours = tmp_path / "contourfiles" / "PH-HF-1" / "i-contours"
    assert phantom.path(phantom.contour_kind_relpath("PH-HF-1", "i")) == contours
    assert (contours / "IM-0001-0002-icontour-manual.txt").is_file()


def test_no_module_but_the_layout_spells_a_raw_input_path():
    """Issue 18: link.csv, dicoms/ and contourfiles/ were spelled out in nine modules. A path
    literal (``"link.csv"``, ``"dicoms/..."``, ``... / "contourfiles"``) anywhere in the
    workflow's code but layout.py is a second owner."""
    package = Path(__file__).resolve().parents[2] / "workflow_scripts"
    names = (RawLayout.LINK_CSV, RawLayout.DICOMS, RawLayout.CONTOURS)
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            spelled = (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith(tuple(f"{name}/" for name in names[1:]))
            ) or (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Div)
                and isinstance(node.right, ast.Constant)
                and node.right.value in names
            )
            if spelled or (isinstance(node, ast.Constant) and node.value == RawLayout.LINK_CSV):
                found.append(f"{path.relative_to(package)}:{node.lineno}")
    assert found == []
