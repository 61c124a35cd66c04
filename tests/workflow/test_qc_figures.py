"""The label figures and plots, on small synthetic tables: units (mm² with a known pixel
spacing, pixels without), ratios, intensity percentiles, and the dataset plots' deterministic
PNG bytes (each study's own plot: test_study_plot.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.qc import plots
from workflow_scripts.qc.figures import (
    INTENSITY_COLUMNS,
    MM2,
    PX,
    dataset_unit,
    intensity_percentiles,
    reviewed_exclusions,
    sample_figures,
    study_figures,
)


def index(spacing: dict[str, tuple[float, float]] | None = None) -> pd.DataFrame:
    """Two studies of three samples: A with i-masks of 100, 200, 300 pixels (median 200), B
    with 50, 50, 400; slice 30 of B flagged. ``spacing``: study -> (row, col) mm, added as
    the index's pixel spacing columns."""
    rows = []
    for study, areas in (("A", (100, 200, 300)), ("B", (50, 50, 400))):
        for position, pixels in enumerate(areas):
            slice_number = 10 * (position + 1)
            flagged = study == "B" and slice_number == 30
            rows.append({
                "study_id": study, "slice": slice_number, "split": "train",
                "npz": f"slices/{study}/{slice_number:04d}.npz",
                "qc": f"qc/{study}/{slice_number:04d}.png",
                "mask_pixels": pixels, "omask_pixels": 2 * pixels if position == 0 else None,
                "i_outside_o": 0.0 if position == 0 else None,
                "flags": "mask_area_outlier" if flagged else "",
                "position": position, "phase": 3, "cardiac_phase": "ED",
            })  # fmt: skip
    frame = pd.DataFrame(rows)
    if spacing is not None:
        frame["pixel_spacing_row"] = [spacing[s][0] for s in frame["study_id"]]
        frame["pixel_spacing_col"] = [spacing[s][1] for s in frame["study_id"]]
    return frame


def test_without_pixel_spacing_areas_are_in_pixels():
    figures = sample_figures(index())
    assert set(figures["unit"]) == {PX}
    assert list(figures["area"]) == [100, 200, 300, 50, 50, 400]
    assert dataset_unit(figures) == PX


def test_with_known_pixel_spacing_areas_are_in_square_millimetres():
    figures = sample_figures(index({"A": (1.5, 2.0), "B": (0.5, 0.5)}))
    assert set(figures["unit"]) == {MM2}
    # 100 px x 1.5 mm x 2.0 mm = 300 mm²; 400 px x 0.25 mm² = 100 mm²
    assert list(figures["area"]) == [300, 600, 900, 12.5, 12.5, 100]
    assert figures["oarea"].iloc[0] == 600  # 200 px x 3 mm²
    assert dataset_unit(figures) == MM2


def test_a_study_with_an_unknown_spacing_stays_in_pixels_and_so_does_the_dataset():
    frame = index({"A": (1.5, 2.0), "B": (0.5, 0.5)})
    frame.loc[4, "pixel_spacing_col"] = math.nan  # one sample of B
    figures = sample_figures(frame)
    assert list(figures["unit"]) == [MM2] * 3 + [PX] * 3
    assert list(figures["area"]) == [300, 600, 900, 50, 50, 400]
    assert dataset_unit(figures) == PX


def test_area_to_median_is_in_pixels_against_the_studys_median():
    figures = sample_figures(index({"A": (1.5, 2.0), "B": (0.5, 0.5)}))
    assert list(figures["area_to_median"]) == [0.5, 1.0, 1.5, 1.0, 1.0, 8.0]


def test_study_figures_summarize_each_study_and_leave_out_unlisted_folders():
    validation = pd.DataFrame(
        [
            {"study_id": "B", "slice": 40, "code": "excluded_by_review"},
            {"study_id": "B", "slice": 30, "code": "mask_area_outlier"},
            {"study_id": "C", "slice": None, "code": "study_missing"},
            {"study_id": "junk", "slice": None, "code": "study_unlisted"},
        ]
    )
    studies = study_figures(sample_figures(index()), validation)
    assert list(studies) == ["A", "B", "C"]
    summary = studies["B"].summary()
    assert summary["samples"] == 3 and summary["median area"] == 50
    assert summary["flagged slices"] == 1 and summary["excluded by review"] == 1
    assert summary["problems"] == {"excluded_by_review": 1, "mask_area_outlier": 1}
    assert studies["C"].summary()["samples"] == 0


def test_reviewed_exclusions_join_the_decisions_to_the_rows():
    validation = pd.DataFrame(
        [{"study_id": "B", "slice": 40.0, "code": "excluded_by_review"},
         {"study_id": "B", "slice": 30.0, "code": "mask_area_outlier"}]
    )  # fmt: skip
    decisions = [{"study_id": "B", "slice": 40, "reason": "r", "reviewer": "Ann", "date": ""}]
    table = reviewed_exclusions(validation, decisions)
    assert table.to_dict("records") == [
        {"study_id": "B", "slice": 40, "reason": "r", "reviewer": "Ann", "date": ""}
    ]


def test_intensity_percentiles_of_an_image_are_its_pixel_values_percentiles():
    assert INTENSITY_COLUMNS == (
        "intensity_p01", "intensity_p25", "intensity_p50", "intensity_p75", "intensity_p99",
    )  # fmt: skip
    ramp = np.arange(101, dtype=np.int16).reshape(1, 101)  # percentile p is the value p
    assert intensity_percentiles(ramp * 10) == {
        "intensity_p01": 10.0, "intensity_p25": 250.0, "intensity_p50": 500.0,
        "intensity_p75": 750.0, "intensity_p99": 990.0,
    }  # fmt: skip
    # Between order statistics, linearly: 0, 10, 20, 30 -> the 1st percentile is 0.03 x 10.
    values = intensity_percentiles(np.array([[30, 0], [20, 10]], dtype=np.float32))
    assert values["intensity_p01"] == pytest.approx(0.3)
    assert values["intensity_p50"] == 15.0 and values["intensity_p99"] == pytest.approx(29.7)
    assert all(type(value) is float for value in values.values())


def test_dataset_plots_are_deterministic_pngs():
    figures = sample_figures(index({"A": (1.5, 2.0), "B": (0.5, 0.5)}))
    first = plots.ratio_distribution_plot(figures, 4.0)
    assert first == plots.ratio_distribution_plot(figures, 4.0)
    assert b"Software" not in first and b"matplotlib" not in first


def test_dataset_plots_label_their_outliers_by_study_and_slice():
    figures = sample_figures(index())
    ratio = plots.ratio_distribution_plot.figure(figures, 4.0).axes[0]
    assert [text.get_text() for text in ratio.texts] == ["B #30"]  # 8x its study's median
    areas = plots.area_distribution_plot.figure(figures).axes[0]
    assert [text.get_text() for text in areas.texts] == ["B #30"]
    assert areas.get_ylabel() == "i-mask area (px)"
    percentiles = dict(zip(INTENSITY_COLUMNS, (0.0, 1.0, 2.0, 3.0, 100.0), strict=True))
    stats = figures.assign(**percentiles)
    stats.loc[1, "intensity_p99"] = 1000.0  # A #20: 10x its study's median 99th percentile
    intensity = plots.intensity_plot.figure(stats).axes[0]
    assert [text.get_text() for text in intensity.texts] == ["A #20"]


def test_reviewed_exclusions_tell_an_o_contour_alone_from_the_whole_slice():
    ocontour = "contourfiles/X/o-contours/IM-0001-0040-ocontour-manual.txt"
    icontour = "contourfiles/X/i-contours/IM-0001-0040-icontour-manual.txt"
    validation = pd.DataFrame(
        [{"study_id": "B", "slice": 40.0, "code": "excluded_by_review", "contour": ocontour},
         {"study_id": "B", "slice": 40.0, "code": "excluded_by_review", "contour": icontour}]
    )  # fmt: skip
    decisions = [
        {"study_id": "B", "slice": 40, "reason": "whole", "reviewer": "", "date": ""},
        {"study_id": "B", "slice": 40, "reason": "o only", "reviewer": "", "date": "",
         "contour": "o"},
    ]  # fmt: skip
    table = reviewed_exclusions(validation, decisions)
    assert list(zip(table["reason"], table["contour"], strict=True)) == [
        ("whole", ""),
        ("o only", "o"),
    ]


def clustered_outliers() -> pd.DataFrame:
    """Three studies of i-masks around 1,000 pixels; study B has ten apical slices of 30 to
    57 pixels, close together: ten area outliers to label in one study's column."""
    rows = []
    areas = {
        "A": [1000 + 20 * i for i in range(15)],
        "B": [1200] * 10 + [30 + 3 * i for i in range(10)],
        "C": [900 + 10 * i for i in range(12)],
    }
    for study, pixels in areas.items():
        for position, area in enumerate(pixels):
            rows.append({
                "study_id": study, "slice": 10 * (position + 1), "split": "train",
                "npz": "x.npz", "qc": "qc/x.png", "mask_pixels": area, "omask_pixels": None,
                "i_outside_o": None, "flags": "mask_area_outlier" if area < 200 else "",
            })  # fmt: skip
    return pd.DataFrame(rows)


def label_boxes(figure):
    """The pixel boxes of the figure's outlier labels (their text, not their leader lines),
    the axes' box and the legend's box, from a fresh draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Annotation, Text

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = figure.axes[0]
    labels = [t for t in axes.texts if isinstance(t, Annotation)]
    boxes = {t.get_text(): Text.get_window_extent(t, renderer) for t in labels}
    return boxes, axes.get_window_extent(renderer), axes.get_legend().get_window_extent(renderer)


@pytest.mark.parametrize("plot", ["areas", "ratios"])
def test_a_studys_clustered_outliers_get_labels_that_do_not_overlap(plot):
    figures = sample_figures(clustered_outliers())
    if plot == "areas":
        figure = plots.area_distribution_plot.figure(figures)
    else:
        figure = plots.ratio_distribution_plot.figure(figures, 4.0)
    boxes, frame, legend = label_boxes(figure)
    assert sorted(boxes) == sorted(f"B #{10 * n}" for n in range(11, 21))  # each named once
    placed = list(boxes.values())
    for i, box in enumerate(placed):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
        assert box.y1 <= frame.y1
        assert not box.overlaps(legend)
        assert not any(box.overlaps(other) for other in placed[i + 1 :])
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert not any("more outliers" in text for text in texts)  # ten fit; none left out


def test_labels_beyond_the_limit_are_counted_not_drawn():
    frame = clustered_outliers()
    extra = frame[frame["study_id"] == "B"].assign(study_id="D")  # ten more outliers
    figures = sample_figures(pd.concat([frame, extra], ignore_index=True))
    boxes, _, _ = label_boxes(plots.area_distribution_plot.figure(figures))
    texts = [text.get_text() for text in plots.area_distribution_plot.figure(figures).axes[0].texts]
    assert len(boxes) == 12
    assert f"+{20 - len(boxes)} more outliers (see review sheet)" in texts
