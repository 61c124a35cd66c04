"""The dataset's QC plots: distributions with their outliers labelled by study and slice (each
study's own plot, drawn by every study's build, is :mod:`workflow_scripts.qc.study_plot`).

Made with matplotlib (the Agg renderer, no pyplot state): it is the ecosystem's default, draws
the same pixels for the same inputs, and writes PNGs without a timestamp once the ``Software``
text chunk is dropped, so a plot's bytes depend only on its data (and the matplotlib version,
recorded with the other libraries in the manifest). Every plot is drawn under matplotlib's
bundled default style, so a user's ``matplotlibrc`` cannot change the dataset's bytes.
"""

from __future__ import annotations

import io

import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.transforms import Bbox

from workflow_scripts.qc.figures import INTENSITY_COLUMNS, dataset_unit

__all__ = [
    "INTENSITY_OUTLIER_FACTOR",
    "area_distribution_plot",
    "intensity_plot",
    "ratio_distribution_plot",
]

#: A slice whose 99th intensity percentile is beyond this factor of its study's median (of the
#: slices' 99th percentiles) is labelled in the intensity plot: a different scaling or window.
INTENSITY_OUTLIER_FACTOR = 2.0
_LABELLED = 12  # most outliers labelled by name on a plot; the rest are counted
_I, _O, _FLAG, _GREY = "#d62728", "#2ca02c", "#ff9f00", "#7f7f7f"
_DPI = 100


def _png(figure: Figure) -> bytes:
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    canvas.print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _styled(draw):
    """Run a drawing function under matplotlib's bundled defaults (not the user's rc). The
    function returns a Figure; the wrapper returns its PNG bytes, and ``draw.figure`` the
    Figure itself (for tests that look at axes and labels)."""

    def figure(*args, **kwargs) -> Figure:
        with matplotlib.style.context("default"):
            return draw(*args, **kwargs)

    def wrapper(*args, **kwargs) -> bytes:
        with matplotlib.style.context("default"):
            return _png(draw(*args, **kwargs))

    wrapper.__doc__, wrapper.__name__ = draw.__doc__, draw.__name__
    wrapper.figure = figure
    return wrapper


def _label_points(axes, points: pd.DataFrame, x: str, y: str, text: str) -> None:
    """Label the first :data:`_LABELLED` rows of ``points`` (the most important first) with
    their ``text`` column, each joined to its point by a thin line, and say how many more
    there are.

    Labels never overlap one another, the legend or the note, and stay inside the axes: each
    takes the nearest free place around its point (right, then left, then further up or
    down and further out), preferring places that cover no data point. A study's outliers lie
    close together, so fixed offsets piled their labels on top of each other. The places are
    worked out in the figure's pixels after its layout, so the axes must be drawn in full (the
    legend made, the limits set) before this is called; the same data gives the same places.
    A label for which no place is left is counted with the rest."""
    if not len(points):
        return
    figure = axes.figure
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else None
    canvas = canvas or FigureCanvasAgg(figure)
    figure.draw_without_rendering()  # the layout: display positions are now final
    renderer = canvas.get_renderer()
    scale = figure.dpi / 72  # pixels per point
    frame = axes.get_window_extent(renderer)
    font = FontProperties(size=7)
    note_width, note_height, _ = renderer.get_text_width_height_descent(
        f"+{len(points)} more outliers (see review sheet)", font, ismath=False
    )
    taken = [Bbox.from_bounds(frame.x1 - note_width - 6, frame.y1 - note_height - 6,
                              note_width + 6, note_height + 6)]  # fmt: skip
    if axes.get_legend() is not None:
        taken.append(axes.get_legend().get_window_extent(renderer))
    # What a label should rather not hide: the plotted points (scatter), the bars (histogram).
    dots = [c.get_offset_transform().transform(c.get_offsets())
            for c in axes.collections if isinstance(c, PathCollection)]  # fmt: skip
    bars = [p.get_window_extent(renderer).get_points().ravel() for p in axes.patches
            if isinstance(p, Rectangle)]  # fmt: skip
    dots = np.concatenate([*dots, np.empty((0, 2))])
    bars = np.array(bars).reshape(-1, 4)
    labelled = 0
    for row in points.itertuples():
        if labelled == _LABELLED:
            break
        label, anchor = str(getattr(row, text)), (getattr(row, x), getattr(row, y))
        width, height, _ = renderer.get_text_width_height_descent(label, font, ismath=False)
        width, height = width + 2, height + 2
        px, py = axes.transData.transform(anchor)
        place = _free_place(px, py, width, height, frame, taken, dots, bars)
        if place is None:
            continue
        taken.append(place)
        labelled += 1
        annotation = axes.annotate(
            label, anchor, xytext=((place.x0 + 1 - px) / scale, (place.y0 + 1 - py) / scale),
            textcoords="offset points", ha="left", va="bottom", fontsize=7, color="#8a5a00",
            arrowprops={"arrowstyle": "-", "color": _FLAG, "linewidth": 0.6,
                        "shrinkA": 1, "shrinkB": 3},
        )  # fmt: skip
        annotation.set_in_layout(False)  # the layout was made without the labels
    if len(points) > labelled:
        axes.text(0.99, 0.98, f"+{len(points) - labelled} more outliers (see review sheet)",
                  transform=axes.transAxes, ha="right", va="top", fontsize=7)  # fmt: skip


def _free_place(px, py, width, height, frame, taken, dots, bars) -> Bbox | None:
    """The nearest box of ``width`` x ``height`` pixels beside the point (px, py) that lies in
    ``frame`` and overlaps no box of ``taken``: first among those that cover none of the
    ``dots`` ((n, 2) pixel positions of plotted points, with a margin of a marker's radius) and
    none of the ``bars`` ((m, 4) pixel boxes x0, y0, x1, y1), then among all; None if there
    is none."""
    gap = 6.0
    candidates = []
    for column in range(4):  # further out to the right or the left
        for side in (1, -1):
            x0 = px + gap + column * 3 * gap if side > 0 else px - gap - width - column * 3 * gap
            for step in range(-12, 13):  # further up or down
                y0 = py - height / 2 + step * height
                cx, cy = x0 + width / 2 - px, y0 + height / 2 - py
                candidates.append((cx * cx + cy * cy, column, -side, abs(step), x0, y0))
    candidates.sort()
    boxes = [Bbox.from_bounds(x0, y0, width, height) for *_, x0, y0 in candidates]
    boxes = [
        box for box in boxes
        if frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        and not any(box.overlaps(other) for other in taken)
    ]  # fmt: skip
    margin = 5.0  # the radius of a flagged point's ring, in pixels
    for box in boxes:
        covered = (
            (dots[:, 0] > box.x0 - margin) & (dots[:, 0] < box.x1 + margin)
            & (dots[:, 1] > box.y0 - margin) & (dots[:, 1] < box.y1 + margin)
        )  # fmt: skip
        hidden = (
            (bars[:, 0] < box.x1) & (bars[:, 2] > box.x0)
            & (bars[:, 1] < box.y1) & (bars[:, 3] > box.y0)
        )  # fmt: skip
        if not covered.any() and not hidden.any():
            return box
    return boxes[0] if boxes else None


def _names(frame: pd.DataFrame) -> pd.Series:
    return frame["study_id"] + " #" + frame["slice"].astype(str)


@_styled
def area_distribution_plot(figures: pd.DataFrame) -> bytes:
    """PNG: every sample's i-mask area against its study (one dot per slice, studies in id
    order), flagged slices ringed and labelled by study and slice."""
    unit = dataset_unit(figures)
    area = figures["area"] if unit != "px" else figures["mask_pixels"].astype(float)
    studies = sorted(figures["study_id"].unique())
    position = figures["study_id"].map({study: i for i, study in enumerate(studies)})
    figure = _figure(min(16.0, 5.0 + 0.12 * len(studies)), 4.0)
    axes = figure.add_subplot()
    jitter = (figures["slice"] % 7 - 3) * 0.06  # deterministic spread of a study's dots
    axes.scatter(position + jitter, area, s=6, color=_I, alpha=0.6, linewidths=0)
    flagged = figures.assign(x=position + jitter, y=area, name=_names(figures))
    flagged = flagged[flagged["flags"].str.contains("mask_")]
    flagged = flagged.assign(distance=np.abs(np.log(flagged["area_to_median"])).fillna(np.inf))
    flagged = flagged.sort_values(["distance", "study_id", "slice"], ascending=[False, True, True])
    axes.scatter(flagged["x"], flagged["y"], s=50, facecolors="none", edgecolors=_FLAG,
                 linewidths=1.5, label="flagged mask (empty, too large, area outlier)")  # fmt: skip
    _study_axis(axes, studies)
    axes.set_ylabel(f"i-mask area ({unit})", fontsize=8)
    axes.set_title(f"i-mask areas of {len(figures)} samples in {len(studies)} studies", fontsize=10)
    axes.legend(fontsize=7, loc="upper left")
    _label_points(axes, flagged, "x", "y", "name")
    return figure


@_styled
def ratio_distribution_plot(figures: pd.DataFrame, area_outlier_factor: float) -> bytes:
    """PNG: histogram of i-mask area / study median (log scale), the outlier thresholds
    (1/f and f) as lines, and the slices beyond them labelled by study and slice."""
    ratio = figures["area_to_median"].dropna()
    ratio = ratio[ratio > 0]
    figure = _figure(8.0, 3.6)
    axes = figure.add_subplot()
    low, high = 1 / area_outlier_factor, area_outlier_factor
    span = max(high * 1.5, float(ratio.max()) * 1.2 if len(ratio) else high)
    bins = np.geomspace(min(low / 1.5, float(ratio.min()) / 1.2 if len(ratio) else low), span, 60)
    axes.hist(ratio, bins=bins, color="#1f77b4", alpha=0.8)
    axes.set_xscale("log")
    for threshold in (low, high):
        axes.axvline(threshold, color=_FLAG, linestyle="--", linewidth=1)
    beyond = figures.assign(name=_names(figures))
    beyond = beyond[(beyond["area_to_median"] < low) | (beyond["area_to_median"] > high)]
    beyond = beyond.assign(y=0.0, distance=np.abs(np.log(beyond["area_to_median"])))
    beyond = beyond.sort_values(["distance", "study_id", "slice"], ascending=[False, True, True])
    label = f"beyond 1/{area_outlier_factor:g} or {area_outlier_factor:g}x"
    axes.scatter(beyond["area_to_median"], beyond["y"], marker="v", color=_FLAG, s=30,
                 zorder=3, label=label)  # fmt: skip
    axes.set_xlabel("i-mask area / median i-mask area of its study", fontsize=8)
    axes.set_ylabel("samples", fontsize=8)
    axes.set_title("Area against the study's median", fontsize=10)
    axes.legend(fontsize=7, loc="upper left")
    axes.tick_params(labelsize=7)
    _label_points(axes, beyond, "area_to_median", "y", "name")
    return figure


@_styled
def intensity_plot(figures: pd.DataFrame) -> bytes:
    """PNG: per study, a box of its slices' typical intensities (median over the slices of
    each percentile of :data:`~workflow_scripts.qc.figures.INTENSITY_COLUMNS`: whiskers 1st and
    99th, box the quartiles), each slice's 99th percentile as a dot, and slices beyond
    :data:`INTENSITY_OUTLIER_FACTOR` of their study's median 99th percentile labelled by study
    and slice. ``figures``: the index's rows (``study_id``, ``slice`` and those columns)."""
    p99 = INTENSITY_COLUMNS[-1]
    stats = figures[["study_id", "slice", *INTENSITY_COLUMNS]].astype(
        {p: float for p in INTENSITY_COLUMNS}
    )
    studies = sorted(stats["study_id"].unique())
    typical = stats.groupby("study_id")[list(INTENSITY_COLUMNS)].median().loc[studies]
    figure = _figure(min(16.0, 5.0 + 0.12 * len(studies)), 4.0)
    axes = figure.add_subplot()
    _boxes(axes, np.arange(len(studies)), *(typical[p].to_numpy() for p in INTENSITY_COLUMNS))
    position = stats["study_id"].map({study: i for i, study in enumerate(studies)})
    axes.scatter(position, stats[p99], s=6, color=_GREY, zorder=3, label="99th pct. per slice")
    study_p99 = stats.groupby("study_id")[p99].transform("median")
    factor = stats[p99] / study_p99.where(study_p99 > 0)
    odd = stats.assign(x=position, name=_names(stats), distance=np.abs(np.log(factor)))
    limit = np.log(INTENSITY_OUTLIER_FACTOR)
    odd = odd[odd["distance"] > limit].sort_values(
        ["distance", "study_id", "slice"], ascending=[False, True, True]
    )
    axes.scatter(odd["x"], odd[p99], s=50, facecolors="none", edgecolors=_FLAG,
                 linewidths=1.5, label=f"beyond {INTENSITY_OUTLIER_FACTOR:g}x its study",
                 zorder=4)  # fmt: skip
    _study_axis(axes, studies)
    axes.set_ylabel("pixel value", fontsize=8)
    axes.set_title("Image intensities per study", fontsize=10)
    axes.legend(fontsize=7, loc="upper left")
    _label_points(axes, odd, "x", p99, "name")
    return figure


def _boxes(axes, x, low, q1, median, q3, high, width: float = 0.6) -> None:
    """Box plots at ``x`` drawn as boxplot draws them (a black box from ``q1`` to ``q3``,
    whiskers to ``low`` and ``high`` with caps half as wide, an orange median), but as two line
    collections instead of six lines per box: a thousand studies' boxes draw in a tenth of the
    time (Axes.bxp took 3.5 s of the version's QC at 1,000 studies)."""
    half, cap = width / 2, width / 4

    def segments(x0, y0, x1, y1):
        return np.stack([np.column_stack([x0, y0]), np.column_stack([x1, y1])], axis=1)

    corners = ((x - half, q1), (x + half, q1), (x + half, q3), (x - half, q3), (x - half, q1))
    outlines = np.stack([np.column_stack(corner) for corner in corners], axis=1)
    black = [
        *outlines,
        *segments(x, low, x, q1),
        *segments(x, q3, x, high),
        *segments(x - cap, low, x + cap, low),
        *segments(x - cap, high, x + cap, high),
    ]
    axes.add_collection(LineCollection(black, colors="black", linewidths=1.0, zorder=2))
    medians = segments(x - half, median, x + half, median)
    axes.add_collection(LineCollection(medians, colors="C1", linewidths=1.0, zorder=2.1))
    axes.autoscale_view()


def _study_axis(axes, studies: list[str]) -> None:
    axes.set_xlim(-0.7, len(studies) - 0.3)
    if len(studies) <= 60:
        axes.set_xticks(range(len(studies)), studies, rotation=90, fontsize=6)
    else:
        axes.set_xticks([])
    axes.set_xlabel(f"study ({len(studies)}, by id)", fontsize=8)
    axes.tick_params(axis="y", labelsize=7)
