"""How long ``python -m loader evaluate`` takes on 100 studies, and where the time goes.

Builds a version of 100 cine studies (tests/evaluation_tests/evaluation_helpers.py: 256 x 256
int16 slices, 10 positions x ED and ES per study = 2,000 samples with i-contours, 1,000 with
o-contours, disc-shaped masks of real-heart size at 1.37 mm per pixel), writes predictions that
are the stored masks perturbed (a one-pixel dilation, a one-pixel shift or unchanged, by sample,
i and o alike), then times, in the same run and on a warm page cache:

- the floor: reading every manual sample file and every prediction file (the I/O evaluation
  cannot avoid);
- ``evaluate()`` (3,000 contours scored, per-study volumes), best of ``--rounds``;
- ``evaluate()`` with the contour export (``--contours-out``), and the evaluation page;

and prints each as seconds and as a ratio to the floor, then a cProfile of one ``evaluate()``
by the functions that take the most time (cumulative), to show where it goes.

Run: ``python benchmarks/evaluate_benchmark.py`` (about a minute; ``--help`` for options).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loader import DatasetIndex, save_prediction  # noqa: E402
from loader.evaluation import evaluate, write_page  # noqa: E402
from loader.evaluation.contour_files import ContourExport  # noqa: E402
from loader.sample_file import read_sample  # noqa: E402


def helpers():
    path = ROOT / "tests" / "evaluation_tests" / "evaluation_helpers.py"
    spec = importlib.util.spec_from_file_location("evaluation_helpers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def build(tmp: Path, studies: int, positions: int):
    version = helpers().build_cine_version(
        tmp / "out",
        studies=studies,
        positions=positions,
        shape=(256, 256),
        pixel_spacing=(1.367, 1.367),
        spacing_between=10.0,
        radii=(28, 21, 1.5),
    )
    index = DatasetIndex(version.root)
    predictions = tmp / "predictions"
    for row in range(len(index)):
        key = (str(index.study_id[row]), int(index.slice[row]))
        arrays = {name: perturbed(mask, row) for name, mask in version.masks[key].items()}
        save_prediction(predictions, index, row, **arrays)
    return version, predictions


def perturbed(mask: np.ndarray, row: int) -> np.ndarray:
    """A one-pixel (4-connected) dilation, a one-pixel shift, or the mask, by row."""
    if row % 3 == 0:
        grown = mask.copy()
        grown[1:] |= mask[:-1]
        grown[:-1] |= mask[1:]
        grown[:, 1:] |= mask[:, :-1]
        grown[:, :-1] |= mask[:, 1:]
        return grown
    if row % 3 == 1:
        return np.roll(mask, 1, axis=1)
    return mask


def read_floor(version_root: Path, predictions: Path) -> None:
    index = DatasetIndex(version_root, verify="none")
    for row in range(len(index)):
        read_sample(index.path(row))
        read_sample(predictions / str(index.study_id[row]) / f"{int(index.slice[row]):04d}.npz")


def best(function, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100)
    parser.add_argument("--positions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=15, help="profile rows printed")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="evaluate-benchmark-"))
    try:
        start = time.perf_counter()
        version, predictions = build(tmp, args.studies, args.positions)
        print(
            f"built {args.studies} studies in {time.perf_counter() - start:.1f} s: {version.root}"
        )
        result = evaluate(version.root, predictions)  # warms the page cache and the imports
        contours = len(result.contours)
        print(f"{len(result.studies)} studies, {contours} contours scored")

        floor = best(lambda: read_floor(version.root, predictions), args.rounds)
        plain = best(lambda: evaluate(version.root, predictions), args.rounds)

        def with_export():
            folder = Path(tempfile.mkdtemp(dir=tmp))  # an export refuses an earlier one's folder
            evaluate(version.root, predictions, on_contour=ContourExport(folder))

        export = best(with_export, args.rounds)
        page = best(lambda: write_page(result, tmp / "evaluation"), 1)
        print(f"{'':34}{'seconds':>10}{'x floor':>10}{'ms/contour':>12}")
        for label, seconds in (
            ("read every manual + prediction", floor),
            ("evaluate()", plain),
            ("evaluate() + contour export", export),
            ("evaluation page (once)", page),
        ):
            print(
                f"{label:34}{seconds:10.2f}{seconds / floor:10.1f}{1000 * seconds / contours:12.2f}"
            )

        profiler = cProfile.Profile()
        profiler.enable()
        evaluate(version.root, predictions)
        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text).sort_stats("cumulative")
        stats.print_stats(args.top)
        print("where evaluate() spends its time (cProfile, cumulative):")
        print("\n".join(line for line in text.getvalue().splitlines() if line.strip())[-4000:])
        print(
            "summary:",
            {k: result.summary[k] for k in ("detected_percent", "good_percent", "dice_mean")},
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
