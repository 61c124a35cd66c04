"""What reading every DICOM's header for the cine costs a study's build, as ratios in one run.

A study's build now reads the header of every DICOM of the study (``stop_before_pixels`` and
only the cine's tags, :func:`~workflow_scripts.raw.dicom_slice.read_dicom_header`), not only
those under a contour, to place each file in the cine. This builds the same studies
(``build_study``, the job's function, into temporary folders) with that pass, and with it
restricted to the labelled DICOMs (the baseline: the files the build read before; the rest of
the build, the cine's plot and checks included, is the same), each timed best of
``--repeats`` (5), and prints the ratio. Data: the real studies
(``../shared/data/sunnybrook``) and the default phantom (20 studies of 20 DICOMs, 256 px).

    python benchmarks/cine_cost.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO.parent / "shared" / "data" / "sunnybrook"
sys.path.insert(0, str(REPO))

from workflow_scripts.config import default_config  # noqa: E402
from workflow_scripts.layout import Layout  # noqa: E402
from workflow_scripts.raw.links import read_link_table  # noqa: E402
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom  # noqa: E402
from workflow_scripts.study import build  # noqa: E402
from workflow_scripts.study.options import BuildOptions  # noqa: E402

READ_CINE = build._read_cine


def build_all(data_dir: Path, out_dir: Path) -> float:
    """Seconds to build every study of ``data_dir`` with ``build_study``."""
    config = default_config(data_dir=str(data_dir), out_dir=str(out_dir), contours=["i", "o"])
    layout, options = Layout.from_config(config), BuildOptions.from_config(config)
    links = read_link_table(data_dir / "link.csv")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for link in links:
            build.build_study(link, layout, options)
    return time.perf_counter() - start


def _labelled_only(study_id, pairing, inputs, **options):
    """The cine of the labelled DICOMs only: the files a build read before every header was."""
    labelled = dataclasses.replace(
        pairing, slices=[pair for pair in pairing.slices if pair.contours]
    )
    return READ_CINE(study_id, labelled, inputs, **options)


def best_of(data_dir: Path, work: Path, repeats: int) -> tuple[float, float]:
    """Best times (baseline, every header), the two builds alternating so that a busy machine
    slows both alike."""
    base, cine = [], []
    for run in range(repeats):
        with mock.patch.object(build, "_read_cine", _labelled_only):
            base.append(build_all(data_dir, work / f"base{run}"))
        cine.append(build_all(data_dir, work / f"cine{run}"))
    return min(base), min(cine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sources = []
        if (REAL_DATA / "link.csv").is_file():
            sources.append(("real studies", REAL_DATA))
        phantom = write_phantom(work / "phantom", PhantomSpec.with_defaults(faults=False))
        sources.append(("phantom (20 x 20 DICOMs)", phantom))
        print(f"{'data':28} {'labelled only (s)':>18} {'every header (s)':>17} {'ratio':>6}")
        for name, data_dir in sources:
            base, cine = best_of(data_dir, work / name.split()[0], args.repeats)
            print(f"{name:28} {base:18.2f} {cine:17.2f} {cine / base:6.2f}")


if __name__ == "__main__":
    main()
