"""How the workflow's cost grows with the number of studies, against the direct limit.

For each N (default 10, 100, 1000) this makes a raw dataset of N studies, then measures, in the
same run:

- direct limit: ``build_study`` (pairing, parsing, masking, npz and QC) and the aggregate steps
  called in a plain loop, on 1 process and on 2 (a process pool), no workflow engine;
- workflow: ``snakemake --cores 2`` from scratch; the job-graph build (a dry run of the fresh
  build); a no-op rerun; a rerun after touching one contour file;
- peak memory (RSS) of the Snakemake process and of any job process it starts.

It prints a table with the ratio of the workflow's full build to the direct 2-process limit.

The raw data are copies of the real studies under new ids when ``../shared/data/sunnybrook``
exists (``--source real``: 240-260 DICOMs and ~19 contoured slices per study, as real archives),
else phantom studies; DICOM files are hard links into a pool inside the data folder (contour
files are copies, so touching one changes one study only).

    python benchmarks/workflow_scale.py [--sizes 10 100 1000] [--source real|phantom] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO.parent / "shared" / "data" / "sunnybrook"
sys.path.insert(0, str(REPO))

from workflow_scripts.config import Layout  # noqa: E402
from workflow_scripts.dataset.manifest import write_dataset_manifest  # noqa: E402
from workflow_scripts.dataset.tables import write_dataset_tables  # noqa: E402
from workflow_scripts.raw.links import read_link_table  # noqa: E402
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom  # noqa: E402
from workflow_scripts.study.build import BuildOptions, build_study  # noqa: E402

CONFIG = {
    "data_dir": "",
    "out_dir": "",
    "version": "1.0.0",
    "contours": ["i"],
    "splits": {"train": 0.8, "val": 0.1, "test": 0.1},
    "split_seed": 0,
    "checks": {},
    "qc": {},
}


# ----------------------------------------------------------------------------- raw data


def make_raw_dataset(root: Path, studies: int, source: str) -> Path:
    """N studies in the raw layout: copies of template studies under new ids."""
    templates = root / ".templates"
    if source == "real":
        template_links = read_link_table(REAL_DATA / "link.csv")
        template_dir = REAL_DATA
    else:
        write_phantom(templates, PhantomSpec.with_defaults(studies=4, slices=40, faults=False))
        template_links = read_link_table(templates / "link.csv")
        template_dir = templates
    present = [
        link for link in template_links if (template_dir / "dicoms" / link.patient_id).is_dir()
    ]
    pool = root / ".pool"  # DICOMs are hard-linked from here (inside the data folder)
    lines = ["patient_id,original_id"]
    for number in range(studies):
        template = present[number % len(present)]
        patient, original = f"BENCH{number:05d}", f"BENCH-{number:05d}"
        lines.append(f"{patient},{original}")
        source_dicoms = template_dir / "dicoms" / template.patient_id
        target_dicoms = root / "dicoms" / patient
        target_dicoms.mkdir(parents=True)
        for dicom in source_dicoms.iterdir():
            pooled = pool / template.patient_id / dicom.name
            if not pooled.exists():
                pooled.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(dicom, pooled)
            os.link(pooled, target_dicoms / dicom.name)
        shutil.copytree(
            template_dir / "contourfiles" / template.original_id, root / "contourfiles" / original
        )
    (root / "link.csv").write_text("\n".join(lines) + "\n")
    shutil.rmtree(templates, ignore_errors=True)
    return root


# ----------------------------------------------------------------------------- direct limit


def _build_one(args):
    link, layout, options = args
    build_study(link, layout, options)
    return link.patient_id


def direct_build(raw: Path, out_dir: Path, processes: int) -> float:
    """Seconds to build every study and the aggregate tables with plain function calls."""
    layout = Layout(raw, out_dir, "1.0.0", phantom=False)
    options = BuildOptions()
    config = {**CONFIG, "data_dir": str(raw), "out_dir": str(out_dir)}
    start = time.perf_counter()
    links = read_link_table(raw / "link.csv")
    jobs = [(link, layout, options) for link in links]
    if processes == 1:
        for job in jobs:
            _build_one(job)
    else:
        with ProcessPoolExecutor(processes) as pool:
            list(pool.map(_build_one, jobs, chunksize=max(1, len(jobs) // (processes * 8))))
    records = [layout.study_record(link.patient_id) for link in links]
    index, validation = (
        layout.version_dir / "index.parquet",
        layout.version_dir / "validation.parquet",
    )
    write_dataset_tables(
        records, links, raw, ("i",), "1.0.0", CONFIG["splits"], 0, index, validation
    )
    write_dataset_manifest(layout, config, records, index, validation)
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- workflow


class PeakMemory:
    """Samples the RSS of a process and of its descendants every 50 ms."""

    def __init__(self, pid: int):
        self.pid, self.main, self.jobs = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.main = max(self.main, _rss(self.pid))
            for child in _descendants(self.pid):
                self.jobs = max(self.jobs, _rss(child))
            time.sleep(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join()


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def snakemake(workdir: Path, raw: Path, *extra: str) -> tuple[float, PeakMemory, str]:
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(REPO / "config.yaml"), "--directory", str(workdir),
        "--cores", "2", "--config", f"data_dir={raw}", "out_dir=out", *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    memory = PeakMemory(process.pid)
    output, _ = process.communicate()
    elapsed = time.perf_counter() - start
    memory.stop()
    if process.returncode != 0:
        raise RuntimeError(f"snakemake failed:\n{output[-3000:]}")
    return elapsed, memory, output


def measure(studies: int, source: str, work: Path) -> dict:
    root = work / f"n{studies}"
    shutil.rmtree(root, ignore_errors=True)
    raw = make_raw_dataset(root / "raw", studies, source)
    contours = sum(1 for _ in (raw / "contourfiles").rglob("*-icontour-manual.txt"))
    result = {"studies": studies, "contours": contours}

    result["direct_1"] = direct_build(raw, root / "direct1", 1)
    shutil.rmtree(root / "direct1")
    result["direct_2"] = direct_build(raw, root / "direct2", 2)
    shutil.rmtree(root / "direct2")

    workdir = root / "workflow"
    workdir.mkdir()
    result["dag"], _, _ = snakemake(workdir, raw, "--dry-run")
    result["full"], memory, _ = snakemake(workdir, raw)
    result["snakemake_mb"], result["jobs_mb"] = memory.main / 2**20, memory.jobs / 2**20
    result["noop"], _, output = snakemake(workdir, raw)
    assert "Nothing to be done" in output, output[-2000:]
    touched = next((raw / "contourfiles").rglob("*-icontour-manual.txt"))
    os.utime(touched)
    result["touch"], _, output = snakemake(workdir, raw)
    result["touch_studies"] = output.count("rule build_study:")
    shutil.rmtree(root)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--source", choices=["real", "phantom"], default=None)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp)")
    args = parser.parse_args()
    source = args.source or ("real" if (REAL_DATA / "link.csv").is_file() else "phantom")
    work = args.work or Path(tempfile.mkdtemp(prefix="workflow-scale-"))
    print(f"source: {source} studies; scratch: {work}; {os.cpu_count()} CPUs\n")
    header = (
        f"{'N':>5} {'i-contours':>10} {'direct 1p':>9} {'direct 2p':>9} {'workflow':>9} "
        f"{'ratio':>6} {'DAG':>6} {'no-op':>6} {'touch':>6} {'redone':>6} "
        f"{'smk MB':>7} {'job MB':>7}"
    )
    print(header)
    for size in args.sizes:
        r = measure(size, source, work)
        print(
            f"{r['studies']:5d} {r['contours']:10d} {r['direct_1']:8.1f}s {r['direct_2']:8.1f}s "
            f"{r['full']:8.1f}s {r['full'] / r['direct_2']:5.2f}x {r['dag']:5.1f}s "
            f"{r['noop']:5.1f}s {r['touch']:5.1f}s {r['touch_studies']:6d} "
            f"{r['snakemake_mb']:7.0f} {r['jobs_mb']:7.0f}",
            flush=True,
        )
    print(
        "\nratio: workflow full build / direct 2-process limit. DAG: dry run of the fresh build."
        "\nredone: build_study jobs run after touching one contour file. MB: peak RSS."
    )


if __name__ == "__main__":
    main()
