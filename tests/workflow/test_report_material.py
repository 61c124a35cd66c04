"""Each study's own QC, made by its build: its plot (in the version) and its report page (in the
work folder), and the report material rule summarize_qc gathers from them: every study's page
under its split, every flagged overlay under each of its codes, as links, not copies.

Expected values come from the version's tables and files: the plot is what the dataset-wide
figures of the index give for the study, the page's pictures are the version's files."""

from __future__ import annotations

import base64
import os
import re

import pandas as pd
import pytest

from build_helpers import build_by_calls, report_paths
from workflow_scripts.config import default_config
from workflow_scripts.qc.figures import sample_figures
from workflow_scripts.qc.study_plot import study_plot
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom

TINY = "47.0 47.0\n49.0 47.0\n49.0 49.0\n47.0 49.0\n"  # a 2x2 square: a mask area outlier


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    """3 phantom studies of 3 positions (and a listed absent one) with o-contours;
    PHANTOM0001's slice 8 i-contour (ED, between ED's 4 and 12) shrunk to a mask area outlier
    and PHANTOM0003's slice 6 excluded by review."""
    root = tmp_path_factory.mktemp("report")
    raw = write_phantom(root / "raw", PhantomSpec.with_defaults(studies=3, slices=12, size=96))
    (raw / "contourfiles/PH-HF-1/i-contours/IM-0001-0008-icontour-manual.txt").write_text(TINY)
    exclusions = root / "exclusions.csv"
    exclusions.write_text("study_id,slice,reason\nPHANTOM0003,6,wrong structure\n")
    config = default_config(
        data_dir=str(raw), out_dir=str(root / "out"), contours=["i", "o"],
        exclusions=str(exclusions),
    )  # fmt: skip
    plan = build_by_calls(config)
    index = pd.read_parquet(plan.layout.index_file)
    index["flags"] = index["flags"].fillna("")
    return plan, index, pd.read_parquet(plan.layout.validation_file)


def pictures(page: bytes) -> dict[str, bytes]:
    """The page's inlined pictures by MIME type."""
    found = re.findall(rb"src='data:(image/\w+);base64,([A-Za-z0-9+/=]+)'", page)
    return {mime.decode(): base64.b64decode(data) for mime, data in found}


def test_a_studys_plot_is_what_the_versions_tables_give_for_it(version):
    plan, index, validation = version
    figures = sample_figures(index)  # the whole index: per-study medians and units
    measures = pd.read_parquet(plan.layout.measures_file).set_index("study_id")
    for study in ("PHANTOM0001", "PHANTOM0003"):
        excluded = validation.query("study_id == @study and code == 'excluded_by_review'")
        pairs = pd.read_parquet(plan.layout.pairs_file(study)).set_index("slice")
        positions = sorted(pairs.loc[excluded["slice"].astype(int), "position"].astype(int))
        row = measures.loc[study].to_dict() if study in measures.index else None
        expected = study_plot(study, figures[figures["study_id"] == study], positions, row)
        assert plan.layout.study_plot(study).read_bytes() == expected, study
    assert list(excluded["slice"]) == [6] and positions == [1]


def test_every_study_has_a_page_with_its_own_plot_and_contact_sheet(version):
    plan, index, _ = version
    layout = plan.layout
    for study in plan.studies:
        page = layout.report_page(study).read_bytes()
        assert pictures(page) == {
            "image/png": layout.study_plot(study).read_bytes(),
            "image/jpeg": layout.contact_sheet(study).read_bytes(),
        }
        text = page.decode("utf-8")
        samples = int((index["study_id"] == study).sum())
        assert f"<tr><td>samples</td><td>{samples}</td></tr>" in text
        assert "<td>split</td>" not in text  # the report's label, not the page's
    flagged = layout.report_page("PHANTOM0001").read_text(encoding="utf-8")
    assert "<tr class='flagged'><td>8</td>" in flagged and "mask_area_outlier" in flagged
    excluded = layout.report_page("PHANTOM0003").read_text(encoding="utf-8")
    assert "<tr><td>excluded by review</td><td>1</td></tr>" in excluded


def test_the_report_links_every_studys_page_under_its_split(version):
    plan, index, _ = version
    studies_dir, _ = report_paths(plan.layout)
    splits = dict(zip(index["study_id"], index["split"], strict=True))
    found = sorted(p.relative_to(studies_dir).as_posix() for p in studies_dir.rglob("*.html"))
    assert found == sorted(f"{splits.get(study, 'none')}/{study}.html" for study in plan.studies)
    assert "none/PHANTOM0004.html" in found  # listed, absent: no samples, no split
    for study in plan.studies:
        linked = studies_dir / splits.get(study, "none") / f"{study}.html"
        assert os.path.samefile(linked, plan.layout.report_page(study))


def test_the_report_links_each_flagged_overlay_once_per_code(version):
    plan, index, _ = version
    _, flagged_dir = report_paths(plan.layout)
    expected = {
        f"{code}/{row.study_id}/{row.slice:04d}-{row.flags}.png": row.qc
        for row in index[index["flags"] != ""].itertuples()
        for code in row.flags.split(",")
    }
    assert "mask_area_outlier/PHANTOM0001/0008-mask_area_outlier.png" in expected
    found = {p.relative_to(flagged_dir).as_posix(): p for p in flagged_dir.rglob("*.png")}
    assert set(found) == set(expected)
    for name, path in found.items():
        assert os.path.samefile(path, plan.layout.version_dir / expected[name])
