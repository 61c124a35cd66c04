"""A study's mask-area plot (``qc/<study>/mask_areas.png``, drawn with Pillow): it carries what
the matplotlib plot it replaced showed (a curve per phase against position, o-mask areas,
flagged points ringed with their codes, excluded positions, EDV/ESV/EF in the title, the unit),
in what it works out (:func:`study_plot_data`) and in its pixels, and its bytes are the same for
the same data.

The expected values are written by hand from the small tables here, or, on a real study, taken
from the study's own index rows and measures (the build's figures, not the plot's code).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from build_helpers import build_studies
from conftest import REAL_DATA
from workflow_scripts.qc.figures import sample_figures
from workflow_scripts.qc.study_plot import (
    AXES,
    SIZE,
    draw_study_plot,
    study_plot,
    study_plot_data,
)
from workflow_scripts.study.study_qc import study_figures_of

MEASURES = {"edv_ml": 191.32, "esv_ml": 141.27, "ef_percent": 26.16}
RED, BLUE, GREEN, AMBER = (214, 39, 40), (31, 119, 180), (44, 160, 44), (255, 159, 0)


def index(spacing: tuple[float, float] | None = None, **columns) -> pd.DataFrame:
    """Study A: i-masks of 100, 200, 300 pixels at positions 0, 1, 2 (ED, phase 3), o-mask of
    200 pixels at position 0; study B: 50, 50, 400, its slice 30 (position 2) flagged."""
    rows = []
    for study, areas in (("A", (100, 200, 300)), ("B", (50, 50, 400))):
        for position, pixels in enumerate(areas):
            slice_number = 10 * (position + 1)
            flagged = study == "B" and slice_number == 30
            rows.append({
                "study_id": study, "slice": slice_number, "mask_pixels": pixels,
                "omask_pixels": 2 * pixels if position == 0 else None,
                "flags": "mask_area_outlier" if flagged else "",
                "position": position, "phase": 3, "cardiac_phase": "ED",
            })  # fmt: skip
    frame = pd.DataFrame(rows).assign(**columns)
    if spacing is not None:
        frame["pixel_spacing_row"], frame["pixel_spacing_col"] = spacing
    return frame


def colour_near(image: Image.Image, x: float, y: float, colour, radius: int = 1) -> bool:
    """Whether ``colour`` is drawn within ``radius`` pixels of (x, y)."""
    pixels = np.asarray(image.convert("RGB"))
    x, y = round(x), round(y)
    patch = pixels[y - radius : y + radius + 1, x - radius : x + radius + 1]
    return bool((patch == colour).all(axis=-1).any())


@pytest.mark.parametrize(
    ("spacing", "unit", "area_30"), [(None, "px", 400.0), ((1.5, 2.0), "mm²", 1200.0)]
)
def test_the_plot_is_in_the_studys_unit_and_marks_flags_and_exclusions(spacing, unit, area_30):
    samples = sample_figures(index(spacing)).query("study_id == 'B'")
    data = study_plot_data("B", samples, [1], MEASURES)
    assert data.y_label == f"area ({unit})"
    assert "position" in data.x_label and "base → apex" in data.x_label
    assert data.title == "B: EDV 191.3 mL, ESV 141.3 mL, EF 26.2%"
    [flag] = data.flagged
    assert (flag.slice, flag.position, flag.area) == (30, 2.0, area_30)
    assert flag.label == "#30 mask_area_outlier"
    assert data.excluded == (1.0,)
    assert [text for *_, text in data.legend] == [
        "i-contour ED (phase 3)", "o-contour (outer wall)", "flagged",
    ]  # fmt: skip
    image = draw_study_plot(data)
    x, y = data.pixel(2.0, area_30)
    assert colour_near(image, x + 7, y, AMBER) and colour_near(image, x - 7, y, AMBER)  # ring
    assert colour_near(image, x, y, RED)  # the ED point inside it


def test_one_curve_per_phase_against_position():
    frame = index(
        phase=[1, 3, 1, 3, 1, 3], cardiac_phase=["ES", "ED"] * 3, position=[0, 0, 1, 1, 2, 2]
    )
    samples = sample_figures(frame).query("study_id == 'A'")  # ES 100, 300 at 0, 1; ED 200
    data = study_plot_data("A", samples, [], None)
    curves = {curve.label: curve.points for curve in data.curves}
    assert curves == {
        "i-contour ED (phase 3)": ((0.0, 200.0),),
        "i-contour ES (phase 1)": ((0.0, 100.0), (1.0, 300.0)),
    }
    assert [curve.colour for curve in data.curves] == ["#d62728", "#1f77b4"]
    assert data.outer == ((0.0, 200.0),)  # slice 10's o-mask, 2 x 100 pixels
    assert data.flagged == () and "no ED/ES volumes" in data.title
    image = draw_study_plot(data)
    for point in ((0, 100), (1, 300)):
        assert colour_near(image, *data.pixel(*point), BLUE, radius=0)
    # the o-mask's square is drawn over the ED point at the same place: green there
    assert colour_near(image, *data.pixel(0, 200), GREEN, radius=0)


def test_points_lie_on_a_linear_scale_inside_the_axes():
    samples = sample_figures(index()).query("study_id == 'A'")  # 100, 200, 300 at 0, 1, 2
    data = study_plot_data("A", samples, [], MEASURES)
    (x0, y0), (x1, y1), (x2, y2) = (data.pixel(*p) for p in data.curves[0].points)
    left, top, right, bottom = AXES
    assert left < x0 < x1 < x2 < right and top < y2 < y1 < y0 < bottom  # more area: higher
    assert x1 - x0 == pytest.approx(x2 - x1) and y0 - y1 == pytest.approx(y1 - y2)
    assert data.pixel(0, 0)[1] == pytest.approx(bottom)  # the axis starts at 0
    assert data.y_ticks[0] == 0 and data.y_ticks[-1] <= data.y_range[1]
    assert data.x_ticks == (0.0, 1.0, 2.0)


def test_a_study_without_placed_samples_says_so():
    samples = sample_figures(index(position=None)).query("study_id == 'A'")
    data = study_plot_data("A", samples, [], MEASURES)
    assert data.curves == () and data.flagged == ()
    assert data.title == (
        "A: EDV 191.3 mL, ESV 141.3 mL, EF 26.2%; 3 sample(s) without position not drawn"
    )
    empty = study_plot("E", samples.iloc[0:0], [0], None)
    assert Image.open(io.BytesIO(empty)).size == SIZE


def test_plots_are_deterministic_pngs_whatever_was_drawn_before():
    figures = sample_figures(index((1.5, 2.0)))
    a, b = (figures.query(f"study_id == '{study}'") for study in "AB")
    plots = [("A", a, []), ("B", b, [1, 2]), ("E", a.iloc[0:0], [0]), ("A", a, [])]
    first = [study_plot(*args, MEASURES) for args in plots]
    assert [study_plot(*args, MEASURES) for args in reversed(plots)] == first[::-1]
    assert first[0] == first[3] and len(set(first)) == 3
    picture = Image.open(io.BytesIO(first[0]))
    assert picture.format == "PNG" and picture.size == SIZE == (700, 320)
    assert b"Software" not in first[0]


@pytest.mark.realdata
def test_a_real_studys_plot_shows_its_phases_flags_and_volumes(tmp_path):
    """SCD0000401 with one position's ED and ES contours swapped (as
    test_cine_realdata.py does): both slices are flagged, and its plot shows the ED and ES
    curves of its index rows, the two flagged points ringed and its measures in the title."""
    if not (REAL_DATA / "dicoms" / "SCD0000401").is_dir():
        pytest.skip(f"real study SCD0000401 not found under {REAL_DATA}")
    raw = tmp_path / "raw"
    (raw / "dicoms").mkdir(parents=True)
    (raw / "dicoms" / "SCD0000401").symlink_to(REAL_DATA / "dicoms" / "SCD0000401")
    contours = raw / "contourfiles" / "SC-HF-I-5"
    shutil.copytree(REAL_DATA / "contourfiles" / "SC-HF-I-5", contours)
    (raw / "link.csv").write_text("patient_id,original_id\nSCD0000401,SC-HF-I-5\n")
    # Position 3 (images 61-80): ED is phase 19 (image 80), ES phase 6 (image 67).
    ed_file, es_file = (
        contours / "i-contours" / f"IM-0001-{n:04d}-icontour-manual.txt" for n in (80, 67)
    )
    ed_text, es_text = ed_file.read_text(), es_file.read_text()
    ed_file.write_text(es_text)
    es_file.write_text(ed_text)
    built = build_studies(raw, tmp_path / "out")
    [record] = built.records.values()
    rows = record["samples"]
    # Expected from the index rows: area = mask pixels x pixel area (mm²), by phase.
    expected: dict[str, list] = {}
    for row in sorted(rows, key=lambda row: row["position"]):
        label = f"i-contour {row['cardiac_phase']} (phase {row['phase']})"
        area = row["mask_pixels"] * row["pixel_spacing_row"] * row["pixel_spacing_col"]
        expected.setdefault(label, []).append((row["position"], area))
    assert sorted(expected) == ["i-contour ED (phase 19)", "i-contour ES (phase 6)"]
    measures = record["measures"]
    title = (
        f"SCD0000401: EDV {round(measures['edv_ml'], 1)} mL, "
        f"ESV {round(measures['esv_ml'], 1)} mL, EF {round(measures['ef_percent'], 1)}%"
    )
    flagged_rows = sorted((row for row in rows if row["flags"]), key=lambda row: row["slice"])
    assert [row["slice"] for row in flagged_rows] == [67, 80]

    figures = study_figures_of("SCD0000401", rows, record["problems"])
    data = study_plot_data("SCD0000401", figures.samples, [], measures)
    assert data.title == title and data.unit == "mm²"
    assert {curve.label: curve.points for curve in data.curves} == {
        label: tuple(pytest.approx(point) for point in points) for label, points in expected.items()
    }
    assert [(flag.slice, flag.position) for flag in data.flagged] == [(67, 3.0), (80, 3.0)]
    assert all("mask_area_outlier" in flag.label for flag in data.flagged)
    written = Image.open(built.layout.study_plot("SCD0000401"))
    assert written.size == SIZE
    assert written.tobytes() == draw_study_plot(data).tobytes()
    for curve, colour in zip(data.curves, (RED, BLUE), strict=True):
        for point in curve.points:
            x, y = data.pixel(*point)
            # the point, or the ring of a flagged point drawn over it
            assert colour_near(written, x, y, colour, radius=1) or colour_near(
                written, x, y - 7, AMBER
            )
    for flag in data.flagged:
        x, y = data.pixel(flag.position, flag.area)
        assert colour_near(written, x, y - 7, AMBER) and colour_near(written, x, y + 7, AMBER)


def test_a_build_job_imports_no_matplotlib():
    """The study plot needs no matplotlib: a batch job's process does not import it (~0.5 s
    per job, before its studies start)."""
    code = "import sys, workflow_scripts.study.batch; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
