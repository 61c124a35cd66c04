"""Compare boundary rules for turning the real i-contours into masks.

Prints, over every i-contour of the real data, the mean pixel count per mask and its difference
from the polygon's area (shoelace) for: this project's rule (pixel centre inside, top-left tie
rule), PIL's fill with the outline drawn in the fill colour, and the challenge prototype's
``ImageDraw.polygon(xy, outline=0, fill=1)``, which fills and then erases the outline.

    python benchmarks/mask_rules.py [DATA_DIR]     (default ../shared/data/sunnybrook)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from workflow_scripts.raw.contours import parse_contour
from workflow_scripts.study.masks import contour_to_mask, polygon_area

REPO = Path(__file__).resolve().parent.parent


def pil_mask(points: np.ndarray, shape: tuple[int, int], outline: int | None) -> np.ndarray:
    image = Image.new("L", (shape[1], shape[0]), 0)  # PIL sizes are (width, height)
    ImageDraw.Draw(image).polygon([tuple(p) for p in points], fill=1, outline=outline)
    return np.array(image, dtype=bool)


def main() -> None:
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared/data/sunnybrook"
    files = sorted(data_dir.glob("contourfiles/*/i-contours/*-icontour-manual.txt"))
    if not files:
        sys.exit(f"no i-contours under {data_dir}")
    rules = {
        "project (centre inside, top-left ties)": lambda p: contour_to_mask(p, (256, 256)),
        "PIL fill=1, outline=1": lambda p: pil_mask(p, (256, 256), 1),
        "prototype fill=1, outline=0": lambda p: pil_mask(p, (256, 256), 0),
    }
    areas, vertices, counts = [], [], {name: [] for name in rules}
    ours = []
    for path in files:
        points = parse_contour(path.read_text())
        areas.append(polygon_area(points))
        vertices.append(len(points))
        for name, rule in rules.items():
            mask = rule(points)
            counts[name].append(int(mask.sum()))
        ours.append(contour_to_mask(points, (256, 256)))
    areas = np.array(areas)
    print(
        f"{len(files)} i-contours, {np.mean(vertices):.0f} vertices and "
        f"{np.mean(areas):.0f} px^2 polygon area on average\n"
    )
    print(f"{'rule':42s} {'mean px':>8s} {'px - area':>10s} {'% of area':>10s} {'px/vertex':>10s}")
    for name, values in counts.items():
        values = np.array(values)
        diff = values - areas
        print(
            f"{name:42s} {values.mean():8.1f} {diff.mean():10.1f} "
            f"{100 * diff.mean() / areas.mean():9.1f}% {np.mean(diff / vertices):10.2f}"
        )
    proto = np.array(counts["prototype fill=1, outline=0"])
    project = np.array(counts["project (centre inside, top-left ties)"])
    lost = project - proto
    print(
        f"\nthe prototype leaves out {lost.mean():.0f} px per mask on average "
        f"({100 * lost.sum() / project.sum():.1f}% of the project's mask area)"
    )


if __name__ == "__main__":
    main()
