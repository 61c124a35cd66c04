"""A study's mask-area plot (``qc/{study}/mask_areas.png``), drawn with Pillow.

What it shows (docs/qc.md): the i-mask area against slice position (0 = base, towards the
apex), one curve per contoured phase (ED red, ES blue, any other phase grey and dashed), the
o-mask areas as green squares, flagged samples ringed in amber and labelled with their slice
and codes, the positions of slices excluded by review as dashed grey lines, and the study's
EDV, ESV and EF in the title.

It is drawn here rather than with matplotlib (as the dataset-wide plots are,
:mod:`workflow_scripts.qc.plots`) because every study's build draws one: matplotlib took about
110 ms of a study's build for this picture, 40% of it (profile in docs/design-notes.md), where
these few lines, markers and texts take a few milliseconds. The plot is two steps, so that
tests can read what a plot shows without reading its pixels: :func:`study_plot_data` works out
what is drawn (curves, points, labels, axis ranges and ticks, in data units) and
:func:`draw_study_plot` draws it; :func:`study_plot` does both and encodes the PNG.

Determinism: the same data draw the same bytes; the pixels depend on Pillow (FreeType) and on
the DejaVu Sans font file that matplotlib ships (the font of the other plots, with the ``→``
and ``²`` glyphs Pillow's own font lacks), whose versions the manifest records.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from workflow_scripts.qc.overlays import encode_png

__all__ = [
    "AXES",
    "SIZE",
    "Curve",
    "FlaggedPoint",
    "StudyPlotData",
    "draw_study_plot",
    "study_plot",
    "study_plot_data",
    "study_title",
]

#: The picture's size in pixels (width, height), as the matplotlib plot it replaces.
SIZE = (700, 320)
#: The axes' box in pixels: left, top, right, bottom (room for tick labels, titles).
AXES = (67, 29, 687, 275)

_I, _ES, _O, _FLAG, _GREY = "#d62728", "#1f77b4", "#2ca02c", "#ff9f00", "#7f7f7f"
_LABEL_COLOUR = "#8a5a00"
#: Colour and dashing of a phase's curve by its cardiac phase (ED, ES; any other phase grey).
_PHASE_STYLE = {"ED": (_I, False), "ES": (_ES, False)}


@dataclass(frozen=True)
class Curve:
    """One phase's i-mask areas: ``points`` (position, area) by position, ``slices`` their
    slice numbers; drawn in ``colour``, dashed for a phase other than ED and ES."""

    label: str
    colour: str
    dashed: bool
    points: tuple[tuple[float, float], ...]
    slices: tuple[int, ...]


@dataclass(frozen=True)
class FlaggedPoint:
    """A flagged sample: its (position, area) ringed, and its label (``#slice`` then its codes,
    one per line) written ``left`` or right of it, ``rank`` rows of text up (0-2, so that
    neighbouring flags do not overlap)."""

    slice: int
    position: float
    area: float
    label: str
    left: bool
    rank: int


@dataclass(frozen=True)
class StudyPlotData:
    """What a study's plot shows, in data units (positions, areas in ``unit``)."""

    title: str
    unit: str
    curves: tuple[Curve, ...] = ()
    outer: tuple[tuple[float, float], ...] = ()  # (position, o-mask area)
    flagged: tuple[FlaggedPoint, ...] = ()
    excluded: tuple[float, ...] = ()  # positions of slices excluded by review
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)
    x_ticks: tuple[float, ...] = ()
    y_ticks: tuple[float, ...] = ()
    legend: tuple[tuple[str, str, str], ...] = field(default=())  # (marker, colour, text)

    @property
    def x_label(self) -> str:
        return "slice position (0 = base → apex)"

    @property
    def y_label(self) -> str:
        return f"area ({self.unit})"

    def pixel(self, position: float, area: float) -> tuple[float, float]:
        """The pixel (x, y) of a data point: x from the left edge, y down from the top."""
        left, top, right, bottom = AXES
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        return (
            left + (position - x0) / (x1 - x0) * (right - left),
            bottom - (area - y0) / (y1 - y0) * (bottom - top),
        )


def study_title(study: str, measures: Mapping[str, Any] | None, unplaced: int) -> str:
    """The plot's title: the study with its EDV, ESV (mL) and EF (%) to one decimal (or that
    it has none), and how many samples without a position are not drawn."""
    if measures:
        title = (f"{study}: EDV {measures['edv_ml']:.1f} mL, ESV {measures['esv_ml']:.1f} mL, "
                 f"EF {measures['ef_percent']:.1f}%")  # fmt: skip
    else:
        title = f"{study}: mask area by position (no ED/ES volumes)"
    if unplaced:
        title += f"; {unplaced} sample(s) without position not drawn"
    return title


def _known(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def study_plot_data(
    study: str,
    samples: pd.DataFrame,
    excluded: Iterable[float],
    measures: Mapping[str, Any] | None = None,
) -> StudyPlotData:
    """What the plot of one study shows.

    ``samples``: the study's rows of :func:`~workflow_scripts.qc.figures.sample_figures`
    (``slice``, ``unit``, ``area``, ``oarea``, ``flags``, and the index's ``position``,
    ``phase`` and ``cardiac_phase``); samples without a known position are counted in the
    title, not drawn. ``excluded``: positions of slices excluded by review. ``measures``: the
    study's row of measures.parquet, or None.
    """
    columns = ("slice", "area", "oarea", "flags", "position", "phase", "cardiac_phase")
    rows = [
        dict(zip(columns, values, strict=True))
        for values in zip(*(_column(samples, name) for name in columns), strict=True)
    ]
    unit = str(samples["unit"].iloc[0]) if len(samples) else "px"
    placed = sorted((r for r in rows if _known(r["position"])), key=lambda r: r["slice"])
    excluded = tuple(sorted({float(position) for position in excluded}))
    title = study_title(study, measures, len(rows) - len(placed))
    if not placed:
        x_range = _x_range(list(excluded)) if excluded else (0.0, 1.0)
        return StudyPlotData(title, unit, excluded=excluded, x_range=x_range,
                             x_ticks=_x_ticks(x_range) if excluded else ())  # fmt: skip

    groups: dict[tuple[int, int, str], list[dict]] = {}
    for row in placed:
        cardiac = row["cardiac_phase"] if isinstance(row["cardiac_phase"], str) else ""
        phase = int(row["phase"]) if _known(row["phase"]) else -1
        groups.setdefault(({"ED": 0, "ES": 1}.get(cardiac, 2), phase, cardiac), []).append(row)
    curves = []
    for (_, phase, cardiac), members in sorted(groups.items()):
        members.sort(key=lambda r: (float(r["position"]), r["slice"]))
        colour, dashed = _PHASE_STYLE.get(cardiac, (_GREY, True))
        shown = phase if phase >= 0 else "?"
        label = f"{cardiac} (phase {shown})" if cardiac else f"phase {shown}"
        curves.append(Curve(
            f"i-contour {label}", colour, dashed,
            tuple((float(r["position"]), float(r["area"])) for r in members),
            tuple(int(r["slice"]) for r in members),
        ))  # fmt: skip
    outer = tuple((float(r["position"]), float(r["oarea"])) for r in placed if _known(r["oarea"]))
    first = min(float(r["position"]) for r in placed)
    last = max(float(r["position"]) for r in placed)
    flagged = tuple(
        FlaggedPoint(
            int(r["slice"]),
            float(r["position"]),
            float(r["area"]),
            f"#{int(r['slice'])} " + str(r["flags"]).replace(",", "\n"),
            left=float(r["position"]) - first > 0.6 * (last - first),
            rank=rank % 3,
        )
        for rank, r in enumerate(r for r in placed if r["flags"])
    )
    x_range = _x_range([float(r["position"]) for r in placed] + list(excluded))
    top = max([area for curve in curves for _, area in curve.points] + [a for _, a in outer])
    y_range, y_ticks = _y_axis(top)
    legend = [("line", curve.colour, curve.label) for curve in curves]
    if outer:
        legend.append(("square", _O, "o-contour (outer wall)"))
    if flagged:
        legend.append(("ring", _FLAG, "flagged"))
    return StudyPlotData(
        title, unit, tuple(curves), outer, flagged, excluded, x_range, y_range,
        _x_ticks(x_range), y_ticks, tuple(legend),
    )  # fmt: skip


def _column(samples: pd.DataFrame, name: str) -> list:
    if name not in samples:  # an index built before the cine columns: no position
        return [None] * len(samples)
    values = samples[name].tolist()
    return [v if isinstance(v, str) else "" for v in values] if name == "flags" else values


def _x_range(positions: Sequence[float]) -> tuple[float, float]:
    """The positions' span with 5% margins each side (one position: half a step each side)."""
    low, high = min(positions), max(positions)
    if high == low:
        return low - 0.5, high + 0.5
    margin = 0.05 * (high - low)
    return low - margin, high + margin


def _x_ticks(x_range: tuple[float, float]) -> tuple[float, ...]:
    """Whole positions within the range, every 1, 2, 5, 10, ... so that at most 12 show."""
    low, high = x_range
    step = _nice_step((high - low) / 12, whole=True)
    first = math.ceil(low / step) * step
    return tuple(float(v) for v in range(int(first), math.floor(high) + 1, int(step)))


def _nice_step(rough: float, whole: bool = False) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at least ``rough`` (whole numbers
    only, 1, 2, 5, 10, ..., with ``whole``)."""
    if rough <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(rough))
    for factor in (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10):
        if factor * power >= rough * (1 - 1e-9):
            step = factor * power
            return max(1.0, round(step)) if whole else step
    return 10 * power  # not reached


def _y_axis(top: float) -> tuple[tuple[float, float], tuple[float, ...]]:
    """From 0 to 8% above the largest area (room for the rings), ticks at a nice step, at
    most 6 of them."""
    high = top * 1.08 if top > 0 else 1.0
    step = _nice_step(high / 5)
    count = math.floor(high / step + 1e-9)
    return (0.0, high), tuple(step * k for k in range(count + 1))


def _tick_text(value: float, step: float) -> str:
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-9:
        decimals += 1
    return f"{value:.{decimals}f}"


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans, the font matplotlib ships (found without importing matplotlib)."""
    spec = importlib.util.find_spec("matplotlib")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return ImageFont.truetype(str(folder / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


def draw_study_plot(data: StudyPlotData) -> Image.Image:
    """The plot of :func:`study_plot_data` as an RGB image of :data:`SIZE`."""
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = AXES
    small, medium = _font(10), _font(11)
    width, height = SIZE
    draw.text((width / 2, 8), data.title, fill="black", font=_font(14), anchor="mt")
    draw.text(((left + right) / 2, height - 6), data.x_label, fill="black", font=medium,
              anchor="md")  # fmt: skip
    _vertical_text(image, (12, (top + bottom) / 2), data.y_label, medium, "black")

    for value in data.x_ticks:
        x, _ = data.pixel(value, 0.0)
        draw.line([(x, bottom), (x, bottom + 4)], fill="black")
        draw.text((x, bottom + 6), f"{value:.0f}", fill="black", font=small, anchor="mt")
    step = data.y_ticks[1] - data.y_ticks[0] if len(data.y_ticks) > 1 else 1.0
    for value in data.y_ticks:
        _, y = data.pixel(data.x_range[0], value)
        draw.line([(left - 4, y), (left, y)], fill="black")
        draw.text((left - 6, y), _tick_text(value, step), fill="black", font=small, anchor="rm")

    for position in data.excluded:
        x, _ = data.pixel(position, 0.0)
        _dashed(draw, [(x, top), (x, bottom)], _GREY)
        _vertical_text(image, (x - 7, top + 3), "excluded", small, _GREY, anchor_top=True)

    for curve in data.curves:
        points = [data.pixel(*point) for point in curve.points]
        if len(points) > 1:
            if curve.dashed:
                _dashed(draw, points, curve.colour)
            else:
                draw.line(points, fill=curve.colour, width=1)
        for x, y in points:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=curve.colour)
    for point in data.outer:
        x, y = data.pixel(*point)
        draw.rectangle((x - 3, y - 3, x + 3, y + 3), fill=_O)
    for flag in data.flagged:
        x, y = data.pixel(flag.position, flag.area)
        draw.ellipse((x - 7, y - 7, x + 7, y + 7), outline=_FLAG, width=2)
        # Above the point, staggered by rank; below it where that would leave the axes.
        at, side = (x - 8 if flag.left else x + 8), ("r" if flag.left else "l")
        text = {"font": small, "spacing": 1, "align": "right" if flag.left else "left"}
        dy = 8 + 14 * flag.rank
        above = draw.multiline_textbbox((at, y - dy), flag.label, anchor=side + "d", **text)
        if above[1] >= top + 2:
            draw.multiline_text((at, y - dy), flag.label, _LABEL_COLOUR, anchor=side + "d", **text)
        else:
            draw.multiline_text((at, y + dy), flag.label, _LABEL_COLOUR, anchor=side + "a", **text)

    if not data.curves:
        draw.text(((left + right) / 2, (top + bottom) / 2), "no samples with a position",
                  fill="black", font=medium, anchor="mm")  # fmt: skip
    if data.legend:
        _legend(draw, data, small)
    draw.rectangle(AXES, outline="black")
    return image


def _legend(draw: ImageDraw.ImageDraw, data: StudyPlotData, font) -> None:
    """The legend box: a sample of each mark and its text, in the first corner of the axes
    (upper right, upper left, lower right, lower left) where it hides no point (the upper
    right where every corner would)."""
    left, top, right, bottom = AXES
    entries = data.legend
    text_width = max(font.getlength(text) for _, _, text in entries)
    width, height = 36 + text_width + 6, 6 + 15 * len(entries)
    points = [data.pixel(*point) for curve in data.curves for point in curve.points]
    points += [data.pixel(*point) for point in data.outer]
    corners = [
        (right - 6 - width, top + 6), (left + 6, top + 6),
        (right - 6 - width, bottom - 6 - height), (left + 6, bottom - 6 - height),
    ]  # fmt: skip
    margin = 8  # a flagged point's ring
    x0, y0 = next(
        (
            (x, y) for x, y in corners
            if not any(x - margin < px < x + width + margin
                       and y - margin < py < y + height + margin for px, py in points)
        ),
        corners[0],
    )  # fmt: skip
    draw.rectangle((x0, y0, x0 + width, y0 + height), fill="white", outline="#cccccc")
    for number, (marker, colour, text) in enumerate(entries):
        y = y0 + 10 + 15 * number
        mark = x0 + 18
        if marker == "line":
            draw.line([(x0 + 6, y), (x0 + 30, y)], fill=colour)
            draw.ellipse((mark - 3, y - 3, mark + 3, y + 3), fill=colour)
        elif marker == "square":
            draw.rectangle((mark - 3, y - 3, mark + 3, y + 3), fill=colour)
        else:
            draw.ellipse((mark - 6, y - 6, mark + 6, y + 6), outline=colour, width=2)
        draw.text((x0 + 36, y), text, fill="black", font=font, anchor="lm")


def _dashed(draw: ImageDraw.ImageDraw, points, colour: str, dash: float = 5, gap: float = 3):
    """A polyline drawn in dashes of ``dash`` pixels, ``gap`` apart."""
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        length = math.hypot(x1 - x0, y1 - y0)
        start = 0.0
        while start < length:
            end = min(start + dash, length)
            a, b = start / length, end / length
            draw.line([(x0 + a * (x1 - x0), y0 + a * (y1 - y0)),
                       (x0 + b * (x1 - x0), y0 + b * (y1 - y0))], fill=colour)  # fmt: skip
            start += dash + gap


def _vertical_text(image: Image.Image, at, text: str, font, colour: str, anchor_top=False):
    """``text`` written bottom to top; ``at`` is its centre, or with ``anchor_top`` the centre
    of its top end."""
    left, top, right, bottom = font.getbbox(text)
    label = Image.new("RGBA", (right - left + 2, bottom - top + 2), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((1 - left, 1 - top), text, fill=colour, font=font)
    label = label.rotate(90, expand=True)
    x, y = at
    corner = (round(x - label.width / 2), round(y if anchor_top else y - label.height / 2))
    image.paste(label, corner, label)


def study_plot(
    study: str,
    samples: pd.DataFrame,
    excluded: Iterable[float],
    measures: Mapping[str, Any] | None = None,
) -> bytes:
    """PNG bytes of one study's plot (see :func:`study_plot_data` for the arguments)."""
    return encode_png(draw_study_plot(study_plot_data(study, samples, excluded, measures)))
