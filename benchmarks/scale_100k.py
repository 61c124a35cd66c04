"""A finished version of 100,000 studies, made cheaply, and what rerunning, opening and reading
it costs, as ratios measured in one run.

How the version is made (``--studies N``, default 100,000; ``--templates T`` real builds):

1. T phantom studies of 32x32 pixels (20 DICOMs, 10 contoured slices each; no faults) are
   built through the workflow (``snakemake --cores 2``, one batch).
2. Raw data of N studies: study ``n`` is template ``n % T`` under the ids ``ST{n:06d}`` /
   ``ST-{n:06d}``, every DICOM and contour file a hard link to the template's (same bytes,
   size and modification time).
3. Each study's outputs (npz, QC pictures, pairs table, report page) are hard links to its
   template's, and its record is the template's with the ids rewritten and the listing
   digest recomputed (``list_study``) for its own folders. The npz, PNG and pairs bytes are
   the template's: inside them the template's id remains (the loader does not read it);
   every path, table, digest and record names the new ids.
4. Then the project's own functions finish the version as the workflow's jobs would:
   ``write_link_json``, ``write_dataset_tables`` (index, validation, measures; splits drawn
   for the N studies), ``write_version_qc``, ``write_dataset_manifest`` (whose stale-record
   check stats every input) and ``write_report_material``.
5. Snakemake's metadata: the template build's records, and one record per batch of the
   default ``studies_per_job`` (100) synthesized from the template's batch record with that
   batch's studies: what a build of N studies would leave (~1,010 records at 100,000).

Measured in one run: the floor (a no-op of the tests' real data, 4 studies present of the 5
listed, or 4 phantom ones; best of 3), the no-op over the finished N-study version (best of
``--repeats``; x floor; Snakemake's peak RSS), the parse's immutability check alone
(``check_finished_version`` in this process, and with ``--profile FILE`` its cProfile), with
``--old-format`` the same no-op over the version's manifest rewritten in format 1 (all JSON,
the reading path kept for versions finished before), ``DatasetIndex`` open for verify none
and fast (fresh processes) and full on a sample of studies (per file), the loader's memory
per sample (RSS of an opened ``BatchLoader`` over a bare Python with the loader imported),
the manifest's bytes (and format 1's, with ``--old-format``), and Snakemake's metadata
(files, bytes).

    python benchmarks/scale_100k.py [--studies 100000] [--templates 8] [--repeats 2]
        [--old-format] [--profile FILE] [--work /tmp/wtscale/scale] [--keep]
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from workflow_scale import REAL_DATA, measure_floor, metadata_size, snakemake  # noqa: E402

from loader.manifest import MANIFEST_TABLES, manifest_bytes, read_manifest  # noqa: E402
from workflow_scripts.batches import assign_batches  # noqa: E402
from workflow_scripts.config import default_config  # noqa: E402
from workflow_scripts.dataset.manifest import write_dataset_manifest  # noqa: E402
from workflow_scripts.dataset.tables import write_dataset_tables  # noqa: E402
from workflow_scripts.dataset.version_guard import check_finished_version  # noqa: E402
from workflow_scripts.layout import Layout  # noqa: E402
from workflow_scripts.qc.summary import write_report_material  # noqa: E402
from workflow_scripts.qc.version_qc import write_version_qc  # noqa: E402
from workflow_scripts.raw.links import StudyLink, read_link_table, write_link_json  # noqa: E402
from workflow_scripts.raw.listing import list_study  # noqa: E402
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom  # noqa: E402

VERSION = "1.0.0"


def build_templates(root: Path, templates: int) -> tuple[Path, Path]:
    """The template studies' raw folder and the workdir of their build (one batch)."""
    if not 1 <= templates <= 9:  # ids PH-HF-1..9: none is a prefix of another
        raise SystemExit("--templates must be 1..9")
    raw = write_phantom(
        root / "template_raw",
        PhantomSpec.with_defaults(studies=templates, slices=20, size=32, faults=False),
    )
    workdir = root / "template_work"
    workdir.mkdir()
    snakemake(workdir, raw, config=(f"studies_per_job={templates}",))
    return raw, workdir


def _link_tree(source: Path, target: Path) -> int:
    """Hard-link every file under ``source`` to the same place under ``target``."""
    count = 0
    for folder, _, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            os.link(Path(folder) / name, target / relative / name)
            count += 1
    return count


def make_version(root: Path, studies: int, template_raw: Path, template_work: Path) -> dict:
    """The N-study raw folder, and its finished version in ``root / "work" / "out"``."""
    started = time.perf_counter()
    templates = read_link_table(template_raw / "link.csv")
    raw, workdir = root / "raw", root / "work"
    raw.mkdir(parents=True)
    lines = ["patient_id,original_id"]
    links = []
    for number in range(studies):
        template = templates[number % len(templates)]
        patient, original = f"ST{number:06d}", f"ST-{number:06d}"
        lines.append(f"{patient},{original}")
        links.append(StudyLink(patient, original, number + 2))
        _link_tree(template_raw / "dicoms" / template.patient_id, raw / "dicoms" / patient)
        _link_tree(
            template_raw / "contourfiles" / template.original_id,
            raw / "contourfiles" / original,
        )
    (raw / "link.csv").write_text("\n".join(lines) + "\n")
    made = {"raw_s": time.perf_counter() - started}

    started = time.perf_counter()
    shutil.copytree(template_work / ".snakemake", workdir / ".snakemake", symlinks=True)
    os.chdir(workdir)  # out_dir=out, as the benchmark's snakemake runs use
    config = default_config(data_dir=str(raw), out_dir="out")
    layout = Layout.from_config(config)
    source = Layout.from_config(
        default_config(data_dir=str(template_raw), out_dir=str(template_work / "out"))
    )
    texts = {
        template.patient_id: source.study_record(template.patient_id).read_text()
        for template in templates
    }
    kinds = tuple(config["contours"])
    for number, link in enumerate(links):
        template = templates[number % len(templates)]
        for folder in ("slices", "qc"):
            _link_tree(source.version_dir / folder / template.patient_id,
                       layout.version_dir / folder / link.patient_id)  # fmt: skip
        pairs = layout.version_dir / "pairs" / f"{link.patient_id}.parquet"
        pairs.parent.mkdir(parents=True, exist_ok=True)
        os.link(source.version_dir / "pairs" / f"{template.patient_id}.parquet", pairs)
        page = source.work_dir / "studies" / f"{template.patient_id}.html"
        layout.study_record(link.patient_id).parent.mkdir(parents=True, exist_ok=True)
        os.link(page, layout.work_dir / "studies" / f"{link.patient_id}.html")
        # the template's ids end at a quote or a slash: PH-HF-1 is no prefix of another id
        text = re.sub(rf"{re.escape(template.original_id)}(?=[\"/])", link.original_id,
                      texts[template.patient_id])  # fmt: skip
        text = re.sub(rf"{re.escape(template.patient_id)}(?=[\"/.])", link.patient_id, text)
        record = json.loads(text)
        record["listing"] = list_study(link, raw, kinds).digest()
        text = json.dumps(record, indent=1, sort_keys=True)
        layout.study_record(link.patient_id).write_text(text)
    made["outputs_s"] = time.perf_counter() - started

    started = time.perf_counter()
    records = [layout.study_record(link.patient_id) for link in links]
    write_link_json(links, layout.work_dir / "link_table.json")
    measures = layout.measures_file
    write_dataset_tables(
        records, links, raw, kinds, VERSION, config["splits"], config["split_seed"],
        layout.index_file, layout.validation_file, measures_path=measures,
    )  # fmt: skip
    made["tables_s"] = time.perf_counter() - started
    started = time.perf_counter()
    factor = config["checks"]["area_outlier_factor"]
    write_version_qc(layout, layout.index_file, layout.validation_file, [], factor, measures)
    made["version_qc_s"] = time.perf_counter() - started
    started = time.perf_counter()
    write_dataset_manifest(
        layout, config, records, layout.index_file, layout.validation_file, layout.version_qc,
        measures_path=measures,
    )  # fmt: skip
    made["manifest_s"] = time.perf_counter() - started
    started = time.perf_counter()
    report = layout.report_dir
    ids = [link.patient_id for link in links]
    write_report_material(layout, layout.index_file, ids, report / "studies", report / "flagged")
    made["report_s"] = time.perf_counter() - started
    made["metadata_records"] = synthesize_batch_metadata(workdir, ids, config["studies_per_job"])
    os.chdir(REPO)
    return made


def synthesize_batch_metadata(workdir: Path, ids: list[str], per_job: int) -> int:
    """One Snakemake metadata record per batch of a build of ``ids`` in batches of
    ``per_job``, made from the template build's batch record; returns how many."""
    folder = workdir / ".snakemake" / "metadata"

    def name_of(path: str) -> str:
        return base64.urlsafe_b64encode(path.encode()).decode()

    batch_prefix = f"out/work/{VERSION}/batches/"
    template = next(
        p for p in folder.iterdir() if base64.urlsafe_b64decode(p.name).decode().startswith(
            batch_prefix)
    )  # fmt: skip
    record = json.loads(template.read_text())
    template.unlink()
    batches = assign_batches(ids, per_job)
    for batch, members in batches.items():
        params = list(record["params"])
        params[1] = repr([[study, "ST-" + study[2:]] for study in members])
        entry = {**record, "params": params}
        (folder / name_of(f"{batch_prefix}{batch}.json")).write_text(json.dumps(entry))
    return len(batches)


# ------------------------------------------------------------------------------ measures

_OPEN = """
import resource, sys, time
sys.path.insert(0, {repo!r})
start = time.perf_counter()
from loader.index import DatasetIndex
index = DatasetIndex({path!r}, verify={mode!r})
print(time.perf_counter() - start, len(index),
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""

_LOADER_MEMORY = """
import sys
sys.path.insert(0, {repo!r})
from loader import BatchLoader
import pyarrow, pyarrow.parquet, numpy

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

base = rss()
loader = BatchLoader({path!r}, batch_size=32, verify="none")
opened = rss()
batch = next(iter(loader))
print(base, opened, rss(), len(loader.index))
"""


def python(code: str) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return [float(value) for value in done.stdout.split()]


def noop(workdir: Path, raw: Path, repeats: int) -> tuple[float, float]:
    """Best of ``repeats`` no-ops (seconds) and the largest peak RSS of Snakemake (MB)."""
    runs = []
    for _ in range(repeats):
        elapsed, memory, output = snakemake(workdir, raw)
        assert "Nothing to be done" in output, output[-2000:]
        runs.append((elapsed, memory.main / 2**20))
    return min(elapsed for elapsed, _ in runs), max(mb for _, mb in runs)


def guard_seconds(workdir: Path, raw: Path, profile: str | None) -> float:
    """``check_finished_version`` in this process (the no-op's parse-time check)."""
    os.chdir(workdir)
    config = default_config(data_dir=str(raw), out_dir="out")
    layout = Layout.from_config(config)
    links = read_link_table(raw / "link.csv")
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    assert check_finished_version(layout, config, links) is not None
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    os.chdir(REPO)
    return time.perf_counter() - start


def sample_full_check(version_dir: Path, studies: int) -> tuple[float, int]:
    """verify full over every file of ``studies`` studies: (seconds, files)."""
    from loader.manifest import verify_dataset

    manifest = read_manifest(version_dir)
    wanted = {f"ST{number:06d}" for number in range(studies)}
    paths = [
        path
        for path in manifest["outputs"]
        if path.count("/") >= 1 and path.split("/")[1].split(".")[0] in wanted
    ]
    start = time.perf_counter()
    problems = verify_dataset(version_dir, full=True, only=paths)
    assert not problems, problems[:5]
    return time.perf_counter() - start, len(paths)


def rewrite_as_format_1(version_dir: Path) -> tuple[int, bytes]:
    """Write the version's manifest in format 1 (the tables inline); returns its size and the
    format-2 manifest.json, to put back."""
    current = (version_dir / "manifest.json").read_bytes()
    manifest = read_manifest(version_dir)
    inline = {key: value for key, value in manifest.items() if key not in ("tables", "format")}
    for section in MANIFEST_TABLES:
        inline[section] = dict(manifest[section])
    inline["listing"] = {key: dict(value) for key, value in inline["listing"].items()}
    data = manifest_bytes(inline)
    (version_dir / "manifest.json").write_bytes(data)
    return len(data), current


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--templates", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--old-format", action="store_true")
    parser.add_argument("--profile")
    parser.add_argument("--work", type=Path, default=Path("/tmp/wtscale/scale"))
    parser.add_argument("--keep", action="store_true", help="keep the data (default: delete)")
    args = parser.parse_args()
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = "real" if (REAL_DATA / "link.csv").is_file() else "phantom"
    try:
        floor = measure_floor(work, source)
        print(f"floor (no-op of 5 {source} studies, best of 3): {floor:.2f} s", flush=True)
        template_raw, template_work = build_templates(work, args.templates)
        made = make_version(work / f"n{args.studies}", args.studies, template_raw, template_work)
        print("made: " + ", ".join(f"{k} {v:.0f}" for k, v in made.items()), flush=True)
        root = work / f"n{args.studies}"
        raw, workdir = root / "raw", root / "work"
        version_dir = workdir / "out" / VERSION
        sizes = {name: (version_dir / name).stat().st_size for name in
                 ("manifest.json", *MANIFEST_TABLES.values())}  # fmt: skip
        print("manifest bytes: " + ", ".join(f"{k} {v / 2**20:.1f} MB" for k, v in sizes.items()))
        files, size = metadata_size(workdir)
        print(f"snakemake metadata: {files} files, {size / 2**20:.2f} MB")

        elapsed, rss = noop(workdir, raw, args.repeats)
        print(f"no-op over the finished version: {elapsed:.1f} s = {elapsed / floor:.2f}x "
              f"floor, Snakemake peak RSS {rss:.0f} MB", flush=True)  # fmt: skip
        guard = guard_seconds(workdir, raw, args.profile)
        print(f"  of which check_finished_version (in-process): {guard:.1f} s", flush=True)
        for mode in ("none", "fast"):
            seconds, samples, peak = python(
                _OPEN.format(repo=str(REPO), path=str(version_dir), mode=mode)
            )
            print(f"DatasetIndex(verify={mode!r}): {seconds:.2f} s for {samples:.0f} samples "
                  f"(fresh process, imports included), peak RSS {peak / 2**20:.0f} MB",
                  flush=True)  # fmt: skip
        seconds, checked = sample_full_check(version_dir, min(200, args.studies))
        per_file = seconds / checked
        print(f"verify full on {checked} files of 200 studies: {seconds:.2f} s "
              f"({per_file * 1e6:.0f} µs per file)")  # fmt: skip
        base, opened, after, samples = python(
            _LOADER_MEMORY.format(repo=str(REPO), path=str(version_dir))
        )
        print(f"BatchLoader: {(opened - base) / samples:.0f} bytes per sample opened "
              f"({(opened - base) / 2**20:.0f} MB for {samples:.0f}; "
              f"{(after - base) / 2**20:.0f} MB after one batch)", flush=True)  # fmt: skip
        if args.old_format:
            size_1, current = rewrite_as_format_1(version_dir)
            print(f"format 1 manifest.json would be {size_1 / 2**20:.0f} MB")
            old, old_rss = noop(workdir, raw, args.repeats)
            print(f"no-op, manifest in format 1: {old:.1f} s = {old / floor:.2f}x floor, "
                  f"peak RSS {old_rss:.0f} MB", flush=True)  # fmt: skip
            (version_dir / "manifest.json").write_bytes(current)
    finally:
        os.chdir(REPO)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
