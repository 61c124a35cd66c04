"""Mask areas in mm^2 on the native grid and on a resample grid, over the real contours.

Builds the real studies twice with the workflow's own study build (into a temporary folder):
natively and with ``resample: {spacing_mm: S, shape: [N, N]}``, both with ``contours: [i, o]``.
For every mask (i and o) it compares the physical areas, pixels x spacing^2 from each build's
npz and index row, and prints the mean and worst relative difference and how many masks lie
within 1% + 2 (and 3) target pixels' area. For scale it also prints two figures that involve no
resampling at all: how far each build's pixel counts lie from the exact polygon areas
(shoelace), and how often merely shifting the native polygons by a random sub-pixel amount
(the same pixel-centre rule on the same grid) changes a mask's area by more than 1% + 2 pixels.

    python benchmarks/resample_areas.py [DATA_DIR] [--spacing 1.3] [--shape 256]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np

from loader.sample_file import read_sample
from workflow_scripts.config import default_config
from workflow_scripts.layout import Layout
from workflow_scripts.raw.contours import parse_contour
from workflow_scripts.raw.links import read_link_table
from workflow_scripts.study.build import build_study
from workflow_scripts.study.masks import contour_to_mask, polygon_area
from workflow_scripts.study.options import BuildOptions

REPO = Path(__file__).resolve().parent.parent


def build_areas(data_dir: Path, out_dir: Path, resample) -> dict[tuple, tuple[float, float]]:
    """(study, slice, kind) -> (mask area in mm^2, pixel area in mm^2) of one build."""
    config = default_config(
        data_dir=str(data_dir), out_dir=str(out_dir), contours=["i", "o"], resample=resample
    )
    layout, options = Layout.from_config(config), BuildOptions.from_config(config)
    areas = {}
    for link in read_link_table(data_dir / "link.csv"):
        for row in build_study(link, layout, options)["samples"]:
            arrays = read_sample(layout.version_dir / row["npz"])
            pixel = row["pixel_spacing_row"] * row["pixel_spacing_col"]
            for kind, name in (("i", "mask"), ("o", "omask")):
                if name in arrays:
                    contour = row["icontour"] if kind == "i" else row["ocontour"]
                    key = (row["study_id"], row["slice"], kind, contour)
                    areas[key] = (float(arrays[name].sum()) * pixel, pixel)
    return areas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", nargs="?", default=REPO.parent / "shared/data/sunnybrook")
    parser.add_argument("--spacing", type=float, default=1.3, help="target spacing, mm")
    parser.add_argument("--shape", type=int, default=256, help="target rows = columns")
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    warnings.simplefilter("ignore")  # pydicom's invalid-UID warnings on every real file
    grid = {"spacing_mm": args.spacing, "shape": [args.shape, args.shape]}
    with tempfile.TemporaryDirectory() as tmp:
        native = build_areas(data_dir, Path(tmp) / "native", None)
        resampled = build_areas(data_dir, Path(tmp) / "resampled", grid)
    if native.keys() != resampled.keys():
        raise SystemExit(f"the builds differ in samples: {native.keys() ^ resampled.keys()}")

    keys = sorted(native)
    a_native = np.array([native[key][0] for key in keys])
    a_resampled = np.array([resampled[key][0] for key in keys])
    target_pixel = args.spacing**2
    relative = (a_resampled - a_native) / a_native
    excess = np.abs(a_resampled - a_native) / (0.01 * a_native + 2 * target_pixel)
    print(
        f"{len(keys)} masks ({sum(key[2] == 'i' for key in keys)} i, "
        f"{sum(key[2] == 'o' for key in keys)} o), native vs {args.spacing:g} mm, "
        f"{args.shape}x{args.shape}:"
    )
    print(
        f"  mean relative difference {relative.mean():+.3%}, mean |difference| "
        f"{np.abs(relative).mean():.3%}, worst {np.abs(relative).max():.3%}"
    )
    for pixels in (2, 3):
        tolerance = 0.01 * a_native + pixels * target_pixel
        inside = int((np.abs(a_resampled - a_native) <= tolerance).sum())
        print(f"  within 1% + {pixels} px: {inside} of {len(keys)}")
    for position in np.argsort(-excess)[:3]:
        study, number, kind, _ = keys[position]
        print(
            f"  {study} slice {number} {kind}: {a_native[position]:.1f} -> "
            f"{a_resampled[position]:.1f} mm^2 ({relative[position]:+.2%}), "
            f"{excess[position]:.2f} x the 1% + 2 px tolerance"
        )

    # Scale: the pixel-centre rule's own noise, without any resampling.
    rng = np.random.default_rng(0)
    exceed, trials, off_native, off_resampled = 0, 0, [], []
    for position, key in enumerate(keys):
        points = parse_contour((data_dir / key[3]).read_text())
        count = int(contour_to_mask(points, (256, 256)).sum())
        area = polygon_area(points)
        pixel = native[key][1]
        off_native.append(count - area)
        off_resampled.append((a_resampled[position] - area * pixel) / target_pixel)
        for _ in range(20):
            shifted = int(contour_to_mask(points + rng.uniform(0, 1, 2), (256, 256)).sum())
            exceed += abs(shifted - count) > 0.01 * count + 2
            trials += 1
    for name, values in (("native", off_native), ("resampled", off_resampled)):
        values = np.array(values)
        print(
            f"  {name} pixel count - exact polygon area: mean {values.mean():+.2f} px, "
            f"sd {values.std():.2f} px, worst {np.abs(values).max():.1f} px"
        )
    print(
        f"  native polygons shifted by a random sub-pixel amount (no resampling): "
        f"{exceed / trials:.1%} of {trials} shifted masks beyond 1% + 2 px of the unshifted"
    )


if __name__ == "__main__":
    main()
