"""What ``frames: all`` costs a study's build, in time and bytes, as ratios in one run.

Builds the same studies (``build_study``, the job's function, into temporary folders) with
``frames: labelled`` (the baseline: the samples only) and ``frames: all`` (also every frame of
each cine, ``cines/{study_id}.npy``: every DICOM's pixels decoded, stacked and written), the two
alternating, each timed best of ``--repeats`` (3), and prints the build times, the bytes each
version's studies wrote (their records' outputs: samples, overlays, pairing tables, plots, and
the cines), and the ratios. Data: the real studies (``../shared/data/sunnybrook``) and the
default phantom (20 studies of 20 DICOMs, 256 px).

    python benchmarks/frames_cost.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO.parent / "shared" / "data" / "sunnybrook"
sys.path.insert(0, str(REPO))

from workflow_scripts.config import default_config  # noqa: E402
from workflow_scripts.layout import Layout  # noqa: E402
from workflow_scripts.raw.links import read_link_table  # noqa: E402
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom  # noqa: E402
from workflow_scripts.study.build import build_study  # noqa: E402
from workflow_scripts.study.options import BuildOptions  # noqa: E402


def build_all(data_dir: Path, out_dir: Path, frames: str) -> tuple[float, int, int]:
    """(seconds, bytes written, of which cines) to build every study of ``data_dir``."""
    config = default_config(
        data_dir=str(data_dir), out_dir=str(out_dir), contours=["i", "o"], frames=frames
    )
    layout, options = Layout.from_config(config), BuildOptions.from_config(config)
    links = read_link_table(data_dir / "link.csv")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records = [build_study(link, layout, options) for link in links]
    seconds = time.perf_counter() - start
    outputs = {
        name: entry["size"] for record in records for name, entry in record["outputs"].items()
    }
    cines = sum(size for name, size in outputs.items() if name.startswith("cines/"))
    return seconds, sum(outputs.values()), cines


def best_of(data_dir: Path, work: Path, repeats: int):
    """Best times and the bytes of (labelled, all), the builds alternating so that a busy
    machine slows both alike."""
    times = {"labelled": [], "all": []}
    sizes = {}
    for run in range(repeats):
        for frames in times:
            seconds, total, cines = build_all(data_dir, work / f"{frames}{run}", frames)
            times[frames].append(seconds)
            sizes[frames] = (total, cines)
    return min(times["labelled"]), min(times["all"]), sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sources = []
        if (REAL_DATA / "link.csv").is_file():
            sources.append(("real studies", REAL_DATA))
        phantom = write_phantom(work / "phantom", PhantomSpec.with_defaults(faults=False))
        sources.append(("phantom (20 x 20 DICOMs)", phantom))
        print(
            f"{'data':26} {'labelled s':>10} {'all s':>7} {'ratio':>6} "
            f"{'labelled MB':>11} {'all MB':>8} {'(cines MB)':>10} {'ratio':>6}"
        )
        for name, data_dir in sources:
            base, every, sizes = best_of(data_dir, work / name.split()[0], args.repeats)
            (base_bytes, _), (all_bytes, cine_bytes) = sizes["labelled"], sizes["all"]
            print(
                f"{name:26} {base:10.2f} {every:7.2f} {every / base:6.2f} "
                f"{base_bytes / 1e6:11.1f} {all_bytes / 1e6:8.1f} {cine_bytes / 1e6:10.1f} "
                f"{all_bytes / base_bytes:6.2f}"
            )


if __name__ == "__main__":
    main()
