"""How the workflow's cost grows with the number of studies, as ratios measured in one run.

Full builds (``--sizes``, default 10 100 1000), each against baselines of the same run:

- direct limit: the functions the workflow's jobs call, in a plain loop, no workflow engine:
  ``build_batch`` over every study (pairing, parsing, masking, npz, overlays; in the job's
  process, or a pool of 2 as a batch job with 2 threads), then the aggregate steps in the
  workflow's order: the tables (``index_dataset``), the version's QC (``plot_qc``), the manifest
  (``write_manifest``) and the report material (``summarize_qc``), each timed;
- plain loop (issue 22, target 1): the same npz and one overlay PNG per contoured slice, on a
  pool of 2, with the project's reading, masking and overlay functions and nothing else (no
  checks, QC plot, contact sheet, report page or record); once reading every DICOM's header as
  the build does for the cine (``plain 2p``), once only the contoured slices' DICOMs
  (``plain i``, the loop as the issue measured it); the workflow's full build is given as a
  multiple of each;
- workflow: ``snakemake --cores 2`` from scratch (for each ``--studies-per-job``, default the
  config's), the job graph (a dry run of the fresh build), a no-op rerun in the build's own
  folder (best of 3, as the floor), a rerun after touching one contour file (same content),
  which in a finished version must run nothing, and the same touch in the version made
  unfinished (its manifest removed), where the batches redone are counted and the dataset must
  stay byte-identical;
- the floor: a no-op of a 5-study dataset (the real studies, or 5 phantom ones), Snakemake's own
  start-up, parse and job graph; no-op and touch-one are also given as multiples of it;
- peak memory (RSS) of the Snakemake process and of any process it starts; the job count and
  Snakemake's metadata (files and bytes under ``.snakemake/metadata``).

Job graphs only (``--graph-sizes``, e.g. 20000): a raw set of the real studies copied under new
ids with only their contoured slices' DICOMs (~20 per study), and the dry run of a fresh build
(parse, immutability check, job graph) with Snakemake's peak memory. With ``--finished-noop N``
it also builds that many phantom studies of 32x32 pixels (10 contoured slices each: a finished
version without writing ~80 GB) in batches of N and times a no-op over the finished version.

The raw data are copies of the real studies under new ids when ``../shared/data/sunnybrook``
exists (``--source real``: 240-260 DICOMs and ~19 contoured slices per study), else phantom
studies; DICOM files are hard links into a pool inside the data folder (contour files are
copies, so touching one changes one study only).

    python benchmarks/workflow_scale.py [--sizes 10 100 1000] [--studies-per-job 25 ...]
        [--graph-sizes 20000] [--finished-noop STUDIES_PER_JOB] [--source real|phantom]
        [--skip-direct-1 | --skip-direct] [--work DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO.parent / "shared" / "data" / "sunnybrook"
sys.path.insert(0, str(REPO))

from loader.manifest import MANIFEST_TABLES  # noqa: E402
from workflow_scripts.config import default_config  # noqa: E402
from workflow_scripts.dataset.batch_tables import read_version_tables  # noqa: E402
from workflow_scripts.dataset.manifest import write_dataset_manifest  # noqa: E402
from workflow_scripts.dataset.tables import write_dataset_tables  # noqa: E402
from workflow_scripts.layout import Layout  # noqa: E402
from workflow_scripts.qc.summary import write_report_material  # noqa: E402
from workflow_scripts.qc.version_qc import write_version_qc  # noqa: E402
from workflow_scripts.raw.contours import parse_contour_name  # noqa: E402
from workflow_scripts.raw.links import read_link_table  # noqa: E402
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom  # noqa: E402
from workflow_scripts.study.batch import build_batch  # noqa: E402

# ----------------------------------------------------------------------------- raw data


def make_raw_dataset(
    root: Path, studies: int, source: str, contoured_only: bool = False, size: int = 256
) -> Path:
    """N studies in the raw layout: copies of template studies under new ids (DICOMs hard
    links, contour files copies); ``contoured_only``: only the DICOMs that have a contour."""
    templates = root / ".templates"
    if source == "real":
        template_links = read_link_table(REAL_DATA / "link.csv")
        template_dir = REAL_DATA
    else:
        spec = PhantomSpec.with_defaults(studies=4, slices=20, size=size, faults=False)
        write_phantom(templates, spec)
        template_links = read_link_table(templates / "link.csv")
        template_dir = templates
    present = [
        link for link in template_links if (template_dir / "dicoms" / link.patient_id).is_dir()
    ]
    pool = root / ".pool"  # DICOMs are hard-linked from here (inside the data folder)
    lines = ["patient_id,original_id"]
    for number in range(studies):
        template = present[number % len(present)]
        patient, original = f"BENCH{number:06d}", f"BENCH-{number:06d}"
        lines.append(f"{patient},{original}")
        source_contours = template_dir / "contourfiles" / template.original_id
        shutil.copytree(source_contours, root / "contourfiles" / original)
        wanted = None
        if contoured_only:
            wanted = {
                f"{parsed[0]}.dcm"
                for path in source_contours.rglob("*.txt")
                if (parsed := parse_contour_name(path.name))
            }
        target_dicoms = root / "dicoms" / patient
        target_dicoms.mkdir(parents=True)
        for dicom in (template_dir / "dicoms" / template.patient_id).iterdir():
            if wanted is not None and dicom.name not in wanted:
                continue
            pooled = pool / template.patient_id / dicom.name
            if not pooled.exists():
                pooled.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(dicom, pooled)
            os.link(pooled, target_dicoms / dicom.name)
    (root / "link.csv").write_text("\n".join(lines) + "\n")
    shutil.rmtree(templates, ignore_errors=True)
    return root


def make_floor_dataset(root: Path, source: str) -> Path:
    """The floor's 5-study dataset: the real studies (4 present, 5 listed), or 5 phantom ones."""
    if source == "real":
        return REAL_DATA
    return write_phantom(root, PhantomSpec.with_defaults(studies=4, slices=20))


# ----------------------------------------------------------------------------- direct limit


def direct_build(raw: Path, out_dir: Path, processes: int) -> tuple[float, dict[str, float]]:
    """Seconds to build every study, the tables, the version's QC, the manifest and the report
    material with the functions the workflow's jobs call, in one process (``processes`` 2: the
    studies on a pool of 2, as a batch job with 2 threads); and the seconds of each step, by
    rule name. Also ``report``: :func:`report_material` of the build."""
    config = default_config(data_dir=str(raw), out_dir=str(out_dir))
    layout = Layout.from_config(config)
    steps: dict[str, float] = {}
    start = last = time.perf_counter()

    def step(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        steps[name], last = now - last, now

    links = read_link_table(raw / "link.csv")
    options = {key: config[key] for key in ("contours", "checks", "qc")}
    studies = [(link.patient_id, link.original_id) for link in links]
    record = layout.work_dir / "batches" / "direct.json"
    build_batch("direct", studies, layout, options, processes, record, log=io.StringIO())
    step("build_studies")
    index, validation = layout.index_file, layout.validation_file
    write_dataset_tables(
        read_version_tables(layout, [record]), links, raw, ("i",), "1.0.0", config["splits"], 0,
        index, validation,
    )  # fmt: skip
    step("index_dataset")
    factor = config["checks"]["area_outlier_factor"]
    write_version_qc(layout, index, validation, [], factor)
    step("plot_qc")
    write_dataset_manifest(layout, config, [record], index, validation, layout.version_qc)
    step("write_manifest")
    report = layout.report_dir
    ids = [link.patient_id for link in links]
    write_report_material(layout, index, ids, report / "studies", report / "flagged")
    step("summarize_qc")
    elapsed = time.perf_counter() - start
    steps["report"] = report_material(layout.work_dir)
    return elapsed, steps


# ----------------------------------------------------------------------------- plain loop


def plain_loop(raw: Path, out_dir: Path, processes: int, cine_headers: bool) -> float:
    """Seconds for the plain loop the full build is measured against (issue 22, target 1): on
    a pool of ``processes`` (forked), each study's contoured slices read (contour files and
    DICOM), masked and written as the same npz plus one overlay PNG per slice, with the
    project's own functions (pairing, ``parse_contour``, ``read_dicom_slice``,
    ``contour_to_mask``, ``encode_sample``, ``window_image``/``render_overlay``/``encode_png``;
    the caption without codes). No checks, no QC plot, contact sheet or report page, no
    records, no digests. ``cine_headers``: also read every DICOM of the study and parse its
    header (``read_dicom_header``), as the build does to place each slice in its cine (the
    index's position, phase and ED/ES: data, not QC); without, only the contoured slices'
    DICOMs are read (the loop as issue 22 measured it, before the cine existed)."""
    links = read_link_table(raw / "link.csv")
    jobs = [(link, raw, out_dir, cine_headers) for link in links]
    start = time.perf_counter()
    if processes > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(processes) as pool:
            for _ in pool.imap_unordered(_plain_study, jobs):
                pass
    else:
        for job in jobs:
            _plain_study(job)
    return time.perf_counter() - start


def _plain_study(job) -> int:
    """One study of :func:`plain_loop`; the number of samples written."""
    import warnings

    # The project's own reading, masking, sample and overlay functions (imported here: the
    # plain loop's code stays in one place).
    from loader.sample_file import encode_sample
    from workflow_scripts.qc.overlays import encode_png, render_overlay, window_image
    from workflow_scripts.raw.contours import parse_contour
    from workflow_scripts.raw.dicom_slice import read_dicom_header, read_dicom_slice
    from workflow_scripts.raw.listing import list_study
    from workflow_scripts.raw.pairing import pair_listing
    from workflow_scripts.study.masks import contour_to_mask

    link, raw, out_dir, cine_headers = job
    pairing = pair_listing(list_study(link, raw, ("i",)))
    data: dict[str, bytes] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's invalid-UID warnings on the real data
        if cine_headers:
            for pair in pairing.slices:
                if pair.dicom is not None:
                    data[pair.dicom] = (raw / pair.dicom).read_bytes()
                    read_dicom_header(data[pair.dicom])
        slices_dir = out_dir / "slices" / link.patient_id
        qc_dir = out_dir / "qc" / link.patient_id
        slices_dir.mkdir(parents=True)
        qc_dir.mkdir(parents=True)
        written = 0
        for pair in pairing.slices:
            if "i" not in pair.contours or pair.dicom is None:
                continue
            points = parse_contour((raw / pair.contours["i"]).read_text())
            dicom_bytes = data.pop(pair.dicom, None) or (raw / pair.dicom).read_bytes()
            dicom = read_dicom_slice(dicom_bytes, 2**26)
            mask = contour_to_mask(points, dicom.pixels.shape)
            name = f"{pair.slice:04d}"
            (slices_dir / f"{name}.npz").write_bytes(
                encode_sample({"image": dicom.pixels, "mask": mask})
            )
            grey = window_image(dicom.pixels, dicom.window)
            caption = [f"{link.patient_id} slice {pair.slice}"]
            overlay = render_overlay(grey, {"i": mask}, {"i": points}, caption)
            (qc_dir / f"{name}.png").write_bytes(encode_png(overlay))
            written += 1
    return written


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


def snakemake(
    workdir: Path, raw: Path | None, *flags: str, config: tuple[str, ...] = ()
) -> tuple[float, PeakMemory, str]:
    """Run the workflow as a user would (its default profile) in ``workdir``."""
    data = [f"data_dir={raw}"] if raw is not None else []
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(REPO / "config.yaml"),
        "--workflow-profile", str(REPO / "profiles" / "default"), "--directory", str(workdir),
        "--cores", "2", *flags, "--config", *data, "out_dir=out", *config,
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


def job_count(output: str) -> int:
    """The total of a dry run's job table."""
    match = re.search(r"^total\s+(\d+)", output, re.M)
    return int(match[1]) if match else 0


def rule_seconds(output: str) -> dict[str, float]:
    """Wall seconds per rule from Snakemake's console log (its timestamps have 1 s
    resolution): from the timestamp before ``rule X:`` to the one before its ``Finished``."""
    stamp = r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]\n"
    starts = {
        jobid: (rule, time.mktime(time.strptime(when, "%a %b %d %H:%M:%S %Y")))
        for when, rule, jobid in re.findall(
            stamp + r"(?:local)?rule (\w+):\n(?:    .*\n)*?    jobid: (\d+)", output
        )
    }
    seconds: dict[str, float] = {}
    for when, jobid in re.findall(stamp + r"Finished jobid: (\d+)", output):
        if jobid in starts:
            rule, start = starts[jobid]
            end = time.mktime(time.strptime(when, "%a %b %d %H:%M:%S %Y"))
            seconds[rule] = seconds.get(rule, 0) + end - start
    return seconds


def report_material(work_dir: Path) -> tuple[int, float, float, float]:
    """The report's material in a build's work folder: (files, MB they hold, MB of them that
    are copies rather than links to files written elsewhere, MB of the studies' pages the
    builds wrote beside their records)."""
    files = [p.stat() for p in (work_dir / "report").rglob("*") if p.is_file()]
    pages = [p.stat().st_size for p in (work_dir / "studies").glob("*.html")]
    copied = sum(stat.st_size for stat in files if stat.st_nlink == 1)
    held = sum(stat.st_size for stat in files)
    return len(files), held / 2**20, copied / 2**20, sum(pages) / 2**20


def metadata_size(workdir: Path) -> tuple[int, int]:
    """(files, bytes) of Snakemake's per-output metadata records."""
    files = [p for p in (workdir / ".snakemake" / "metadata").rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


# What a touch may change: the manifest (its build time) and, in format 2, its inputs table
# (the touched file's modification time, which format 1 kept inside manifest.json).
NOT_COMPARED = {"manifest.json", MANIFEST_TABLES["inputs"]}


def tree_digest(version_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(version_dir.rglob("*")):
        if path.is_file() and path.relative_to(version_dir).as_posix() not in NOT_COMPARED:
            digest.update(path.relative_to(version_dir).as_posix().encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def measure_floor(work: Path, source: str) -> float:
    """No-op of a 5-study dataset: Snakemake's start-up, parse and job graph."""
    workdir = work / "floor"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    raw = make_floor_dataset(workdir / "raw", source)
    snakemake(workdir, raw)
    runs = [snakemake(workdir, raw)[0] for _ in range(3)]
    return min(runs)


def measure(
    studies: int,
    source: str,
    work: Path,
    per_job: list[int | None],
    direct: bool = True,
    skip_direct_1: bool = False,
    skip_direct_2: bool = False,
) -> list[dict]:
    root = work / f"n{studies}"
    shutil.rmtree(root, ignore_errors=True)
    raw = make_raw_dataset(root / "raw", studies, source)
    contours = sum(1 for _ in (raw / "contourfiles").rglob("*-icontour-manual.txt"))
    base = {"studies": studies, "contours": contours}
    if direct:
        base["direct_1"], base["steps_1"] = (None, None) if skip_direct_1 else (
            direct_build(raw, root / "direct1", 1)
        )  # fmt: skip
        shutil.rmtree(root / "direct1", ignore_errors=True)
        base["direct_2"], base["steps_2"] = (None, None) if skip_direct_2 else (
            direct_build(raw, root / "direct2", 2)
        )  # fmt: skip
        shutil.rmtree(root / "direct2", ignore_errors=True)
        for name, cine_headers in (("plain", True), ("plain_labelled", False)):
            base[name] = plain_loop(raw, root / name, 2, cine_headers)
            shutil.rmtree(root / name)

    results = []
    for size in per_job:
        result = dict(base, per_job=size or default_config()["studies_per_job"])
        extra = (f"studies_per_job={size}",) if size else ()
        workdir = root / f"workflow-{size}"
        workdir.mkdir()
        result["dag"], _, output = snakemake(workdir, raw, "--dry-run", config=extra)
        result["jobs"] = job_count(output)
        result["full"], memory, _ = snakemake(workdir, raw, config=extra)
        result["snakemake_mb"], result["jobs_mb"] = memory.main / 2**20, memory.jobs / 2**20
        result["metadata"] = metadata_size(workdir)
        # best of 3, as the floor: a no-op is short enough for the machine's noise to matter
        noops = [snakemake(workdir, raw, config=extra) for _ in range(3)]
        assert all("Nothing to be done" in output for _, _, output in noops)
        result["noop"] = min(elapsed for elapsed, _, _ in noops)
        version_dir = workdir / "out" / "1.0.0"
        before, manifest = tree_digest(version_dir), (version_dir / "manifest.json").read_bytes()
        touched = next((raw / "contourfiles").rglob("*-icontour-manual.txt"))
        # A finished version is never rebuilt: the touched file passes by content, no job runs.
        os.utime(touched)
        touches = [snakemake(workdir, raw, config=extra) for _ in range(3)]  # no job: repeatable
        assert all("Nothing to be done" in output for _, _, output in touches)
        result["touch_finished"] = min(elapsed for elapsed, _, _ in touches)
        assert (version_dir / "manifest.json").read_bytes() == manifest
        # The same change in an unfinished version (this one, its manifest removed): only the
        # touched study's batch is rebuilt, then the aggregate steps finish the version.
        (version_dir / "manifest.json").unlink()
        os.utime(touched)
        result["touch"], _, output = snakemake(workdir, raw, config=extra)
        result["touch_batches"] = output.count("rule build_studies:")
        result["touch_identical"] = tree_digest(workdir / "out" / "1.0.0") == before
        result["touch_rules"] = rule_seconds(output)
        # The same touch without anything to reuse (the studies' reuse stamps and the kept
        # version QC files removed): what the touch cost before the batch jobs reused studies.
        (version_dir / "manifest.json").unlink()
        shutil.rmtree(workdir / "out" / "work" / "1.0.0" / "reuse")
        shutil.rmtree(workdir / "out" / "work" / "1.0.0" / "version_qc")
        os.utime(touched)
        result["touch_rebuild"], _, output = snakemake(workdir, raw, config=extra)
        result["touch_rebuild_identical"] = tree_digest(version_dir) == before
        result["touch_rebuild_rules"] = rule_seconds(output)
        # and once more, reusing again (the stamps were just written)
        (version_dir / "manifest.json").unlink()
        os.utime(touched)
        result["touch_again"], _, output = snakemake(workdir, raw, config=extra)
        result["touch_again_rules"] = rule_seconds(output)
        result["report"] = report_material(workdir / "out" / "work" / "1.0.0")
        shutil.rmtree(workdir)
        results.append(result)
    shutil.rmtree(root)
    return results


def measure_graph(studies: int, work: Path, finished_noop: int | None) -> dict:
    """Dry run of a fresh build of ``studies`` (real copies, contoured DICOMs only), and with
    ``finished_noop`` (a batch size) a no-op over a finished version of as many 32x32 phantom
    studies, built in batches of that size (fewer jobs to build it; the same bytes)."""
    root = work / f"graph{studies}"
    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    source = "real" if (REAL_DATA / "link.csv").is_file() else "phantom"
    raw = make_raw_dataset(root / "raw", studies, source, contoured_only=True)
    files = sum(len(files) for _, _, files in os.walk(raw / "dicoms"))
    files += sum(len(files) for _, _, files in os.walk(raw / "contourfiles"))
    result = {"studies": studies, "raw_files": files, "make_s": time.perf_counter() - start}
    workdir = root / "workflow"
    workdir.mkdir()
    result["dag"], memory, output = snakemake(workdir, raw, "--dry-run")
    result["dag_mb"] = memory.main / 2**20
    result["jobs"] = job_count(output)
    shutil.rmtree(raw)
    if finished_noop:
        raw = make_raw_dataset(root / "phantom", studies, "phantom", size=32)
        batches = (f"studies_per_job={finished_noop}",)
        start = time.perf_counter()
        snakemake(workdir, raw, config=batches)
        result["phantom_build_s"] = time.perf_counter() - start
        result["metadata"] = metadata_size(workdir)
        manifest = workdir / "out" / "1.0.0" / "manifest.json"
        result["manifest_mb"] = manifest.stat().st_size / 2**20
        result["noop"], memory, output = snakemake(workdir, raw, config=batches)
        assert "Nothing to be done" in output, output[-2000:]
        result["noop_mb"] = memory.main / 2**20
        result["noop_batch"] = finished_noop
    shutil.rmtree(root)
    return result


def print_touch_one(r: dict, floor: float) -> None:
    """The touch-one figures of a ``--touch-only`` run."""
    print(
        f"{r['studies']} studies, {r['jobs']} jobs, {r['touch_batches']} batch(es) redone after "
        f"a touch: build {r['full']:.1f} s, no-op "
        f"{r['noop']:.1f} s ({r['noop'] / floor:.2f}x floor), touch one contour of the "
        f"finished version {r['touch_finished']:.1f} s ({r['touch_finished'] / floor:.2f}x)"
    )
    for label, key in [
        ("reusing unchanged studies", "touch"),
        ("again", "touch_again"),
        ("nothing to reuse (stamps and kept QC removed: as before)", "touch_rebuild"),
    ]:
        jobs = ", ".join(f"{rule} {sec:.0f} s" for rule, sec in r[f"{key}_rules"].items())
        same = r.get(f"{key}_identical", r["touch_identical"] if key == "touch" else None)
        print(
            f"  touch one contour, unfinished, {label}: {r[key]:.1f} s = {r[key] / floor:.2f}x "
            f"floor{'' if same is None else ', byte-identical' if same else ', DIFFERS'} "
            f"({jobs}; 1 s resolution)",
            flush=True,
        )


def _seconds(value: float | None, width: int) -> str:
    return f"{value:{width - 1}.1f}s" if value is not None else f"{'-':>{width}}"


def _ratio(value: float, baseline: float | None) -> str:
    return f"{value / baseline:5.2f}x" if baseline is not None else f"{'-':>6}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument(
        "--studies-per-job", type=int, nargs="+", default=[None], help="default: config's"
    )
    parser.add_argument("--graph-sizes", type=int, nargs="*", default=[])
    parser.add_argument(
        "--finished-noop",
        type=int,
        metavar="STUDIES_PER_JOB",
        help="also build a finished phantom version of each graph size and time a no-op",
    )
    parser.add_argument(
        "--skip-direct-1", action="store_true", help="leave out the 1-process direct limit"
    )
    parser.add_argument(
        "--skip-direct",
        action="store_true",
        help="leave out both direct limits (the plain loops and the workflow only)",
    )
    parser.add_argument("--source", choices=["real", "phantom"], default=None)
    parser.add_argument(
        "--touch-only",
        action="store_true",
        help="only the workflow's build, no-op and touch-one runs (no direct-limit baselines)",
    )
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp)")
    args = parser.parse_args()
    source = args.source or ("real" if (REAL_DATA / "link.csv").is_file() else "phantom")
    work = args.work or Path(tempfile.mkdtemp(prefix="workflow-scale-"))
    print(f"source: {source} studies; scratch: {work}; {os.cpu_count()} CPUs")
    print(f"load before: {os.getloadavg()[0]:.2f}")
    floor = measure_floor(work, source)
    print(f"floor (no-op of a 5-study dataset, best of 3): {floor:.2f} s\n")
    if args.sizes:
        print(
            f"{'N':>5} {'i-cont.':>7} {'per job':>7} {'jobs':>5} {'direct 1p':>9} "
            f"{'direct 2p':>9} {'workflow':>8} {'ratio':>6} {'plain 2p':>8} {'wf/pl.':>6} "
            f"{'plain i':>7} {'wf/pl.i':>7} {'DAG':>6} {'no-op':>6} "
            f"{'x floor':>7} {'touch*':>6} {'x floor':>7} {'redone':>6} {'same':>4} "
            f"{'smk MB':>6} {'job MB':>6} {'metadata':>13}"
        )
    touch_rules = []
    if args.touch_only:
        for size in args.sizes:
            for r in measure(size, source, work, args.studies_per_job, direct=False):
                print_touch_one(r, floor)
        args.sizes = []
    for size in args.sizes:
        for r in measure(
            size,
            source,
            work,
            args.studies_per_job,
            skip_direct_1=args.skip_direct_1 or args.skip_direct,
            skip_direct_2=args.skip_direct,
        ):
            files, nbytes = r["metadata"]
            print(
                f"{r['studies']:5d} {r['contours']:7d} {r['per_job']:7d} {r['jobs']:5d} "
                f"{_seconds(r['direct_1'], 9)} {_seconds(r['direct_2'], 9)} {r['full']:7.1f}s "
                f"{_ratio(r['full'], r['direct_2'])} {r['plain']:7.1f}s "
                f"{r['full'] / r['plain']:5.2f}x {r['plain_labelled']:6.1f}s "
                f"{r['full'] / r['plain_labelled']:6.2f}x {r['dag']:5.1f}s {r['noop']:5.1f}s "
                f"{r['noop'] / floor:6.2f}x {r['touch']:5.1f}s {r['touch'] / floor:6.2f}x "
                f"{r['touch_batches']:6d} {'yes' if r['touch_identical'] else 'NO':>4} "
                f"{r['snakemake_mb']:6.0f} {r['jobs_mb']:6.0f} "
                f"{files:5d} f {nbytes / 1024:4.0f} kB",
                flush=True,
            )
            touch_rules.append(r)
    for r in touch_rules:
        print(
            f"touch one contour of the finished version at {r['studies']} studies: "
            f"{r['touch_finished']:.1f} s = {r['touch_finished'] / floor:.2f}x floor, no job run"
        )
    for r in touch_rules:
        jobs = ", ".join(f"{rule} {seconds:.0f} s" for rule, seconds in r["touch_rules"].items())
        print(
            f"touch one contour, unfinished, at {r['studies']} studies, {r['touch']:.1f} s: {jobs} "
            "(1 s resolution)"
        )
    for r in touch_rules:
        for processes in (1, 2):
            if r[f"steps_{processes}"] is None:
                continue
            steps = dict(r[f"steps_{processes}"])
            steps.pop("report")
            parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in steps.items())
            print(f"direct {processes}p at {r['studies']} studies, "
                  f"{r[f'direct_{processes}']:.1f} s: {parts}")  # fmt: skip
        reports = [("workflow", r["report"])]
        if r["steps_2"] is not None:
            reports.insert(0, ("direct 2p", r["steps_2"]["report"]))
        for who, (files, held, copied, pages) in reports:
            print(f"{who}'s report material at {r['studies']} studies: {files} files holding "
                  f"{held:.0f} MB, {copied:.0f} MB of them copies; study pages written by the "
                  f"builds {pages:.0f} MB")  # fmt: skip
    for size in args.graph_sizes:
        r = measure_graph(size, work, args.finished_noop)
        print(
            f"\njob graph at {r['studies']} studies ({r['raw_files']} raw files, made in "
            f"{r['make_s']:.0f} s): dry run {r['dag']:.1f} s = {r['dag'] / floor:.1f}x floor, "
            f"{r['jobs']} jobs, Snakemake peak {r['dag_mb']:.0f} MB",
            flush=True,
        )
        if "noop" in r:
            files, nbytes = r["metadata"]
            print(
                f"finished version of {r['studies']} phantom studies (32x32, batches of "
                f"{r['noop_batch']}, built in "
                f"{r['phantom_build_s']:.0f} s; manifest {r['manifest_mb']:.0f} MB; metadata "
                f"{files} files, {nbytes / 1024:.0f} kB): no-op {r['noop']:.1f} s = "
                f"{r['noop'] / floor:.1f}x floor, Snakemake peak {r['noop_mb']:.0f} MB",
                flush=True,
            )
    print(
        "\nratio: workflow full build / direct 2-process limit. plain 2p: the plain loop (2"
        " processes: every DICOM's header read for the cine, each contoured slice's npz and"
        " overlay PNG, no QC plot, sheet, page or record); wf/pl.: workflow / plain loop."
        " plain i, wf/pl.i: the same loop reading only the contoured slices' DICOMs."
        "\nDAG: dry run of the fresh build."
        "\nx floor: against the no-op of a 5-study dataset. touch*: touching one contour file"
        " of the version made unfinished (its manifest removed); redone: batch jobs rerun then;"
        " same: dataset byte-identical after it. (In the finished version the same touch runs"
        " nothing: its time is printed below.) MB: peak RSS."
        f"\nload after: {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
