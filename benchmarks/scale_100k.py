"""A finished version of 100,000 studies, made cheaply, and what rerunning, opening and reading
it costs, as ratios measured in one run.

How the version is made (``--studies N``, default 100,000; ``--templates T`` real builds):

1. T phantom studies of 32x32 pixels (20 DICOMs, 10 contoured slices each; no faults) are
   built through the workflow (``snakemake --cores 2``, one batch).
2. Raw data of N studies: study ``n`` is template ``n % T`` under the ids ``ST{n:06d}`` /
   ``ST-{n:06d}``: its ``dicoms/`` and ``contourfiles/`` folders are symbolic links (inside
   the data folder, so followed as any link inside it) to the template's folders, copied to
   ``.templates/`` in the data folder: the same files, sizes and times; listing and stat'ing
   them costs more than real folders (each link resolved: 48 s of the 100,000-study no-op),
   so with ``--real-folders`` they are real folders holding hard links to the template's
   files (the honest layout; ~2.5 minutes at 100,000: 4 million links).
3. Each study's ``slices/`` and ``qc/`` folders in the version are symbolic links to its
   template's (``slices/`` real folders of hard links with ``--real-sample-folders`` or
   ``--real-folders``), its pairs table a hard link; its record is the template's with the ids
   rewritten and the listing digest recomputed (``list_study``) for its own folders. The npz,
   PNG and pairs bytes are the template's: inside them the template's id remains (the loader
   does not read it); every path, table, digest and record names the new ids.
4. The tables (index, validation, measures) are synthesized: each study's rows are its
   template's, split included, with the ids and paths rewritten (the project's table writer
   would flag every contour as a copy of the other studies' and draw splits anew); the
   version's QC pictures are the template build's. Then the project's own
   ``build_manifest`` and ``write_manifest_files`` write the manifest from the records'
   tables (the study records themselves are not written to the work folder: a finished
   version's no-op does not read them).
5. Snakemake's metadata: the template build's records, and one record per batch of the
   default ``studies_per_job`` (100) synthesized from the template's batch record with that
   batch's studies: what a build of N studies would leave (~1,010 records at 100,000).

Measured in one run: the floor (a no-op of the tests' real data, 4 studies present of the 5
listed, or 4 phantom ones; best of 3), the no-op over the finished N-study version (best of
``--repeats``; x floor; Snakemake's peak RSS), the parse's immutability check alone
(``check_finished_version`` in this process, in 2 processes as ``--cores 2`` runs it and in one;
with ``--profile FILE`` the cProfile of the one), with
``--old-format`` the same no-op over the version's manifest rewritten in format 1 (all JSON,
the reading path kept for versions finished before), ``DatasetIndex`` open for verify none
and fast (fresh processes) and full on a sample of studies (per file), the loader's memory
per sample (RSS of an opened ``BatchLoader`` over a bare Python with the loader imported),
the manifest's bytes (and format 1's, with ``--old-format``), and Snakemake's metadata
(files, bytes).

    python benchmarks/scale_100k.py [--studies 100000] [--templates 8] [--repeats 2]
        [--old-format] [--profile FILE] [--work /tmp/wtscale/scale] [--keep]
        [--real-folders | --real-sample-folders] [--open-only] [--digest-tables-only]
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from workflow_scale import REAL_DATA, measure_floor, metadata_size, snakemake  # noqa: E402

from loader.manifest import (  # noqa: E402
    MANIFEST_TABLES,
    manifest_bytes,
    manifest_table,
    read_manifest,
    read_whole_manifest,
)
from workflow_scripts.batches import assign_batches  # noqa: E402
from workflow_scripts.config import default_config  # noqa: E402
from workflow_scripts.dataset.batch_tables import batch_tables  # noqa: E402
from workflow_scripts.dataset.manifest import build_manifest, write_manifest_files  # noqa: E402
from workflow_scripts.dataset.version_guard import check_finished_version  # noqa: E402
from workflow_scripts.files import parquet_bytes  # noqa: E402
from workflow_scripts.layout import Layout  # noqa: E402
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


def make_version(
    root: Path,
    studies: int,
    template_raw: Path,
    template_work: Path,
    real_slices: bool = False,
    real_raw: bool = False,
) -> dict:
    """The N-study raw folder, and its finished version in ``root / "work" / "out"``;
    ``real_slices``: each study's ``slices/`` a folder of its own holding hard links to the
    template's files, not a symbolic link; ``real_raw``: likewise each study's ``dicoms/``
    and ``contourfiles/`` folders in the raw data (what the no-op's immutability check lists
    and stat's: the honest layout; links to folders cost a resolution per path)."""
    started = time.perf_counter()
    templates = read_link_table(template_raw / "link.csv")
    raw, workdir = root / "raw", root / "work"
    # the template studies' folders inside the data folder; each study's folders link to them
    pool = raw / ".templates"
    shutil.copytree(template_raw / "dicoms", pool / "dicoms")
    shutil.copytree(template_raw / "contourfiles", pool / "contourfiles")
    (raw / "dicoms").mkdir()
    (raw / "contourfiles").mkdir()
    lines = ["patient_id,original_id"]
    links = []
    for number in range(studies):
        template = templates[number % len(templates)]
        link = StudyLink(f"ST{number:06d}", f"ST-{number:06d}", number + 2)
        links.append(link)
        lines.append(f"{link.patient_id},{link.original_id}")
        if real_raw:
            _link_tree(pool / "dicoms" / template.patient_id, raw / "dicoms" / link.patient_id)
            _link_tree(pool / "contourfiles" / template.original_id,
                       raw / "contourfiles" / link.original_id)  # fmt: skip
            continue
        os.symlink(f"../.templates/dicoms/{template.patient_id}",
                   raw / "dicoms" / link.patient_id)  # fmt: skip
        os.symlink(f"../.templates/contourfiles/{template.original_id}",
                   raw / "contourfiles" / link.original_id)  # fmt: skip
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
    # what the manifest takes of a record (its batch_tables' inputs, outputs and studies)
    kept = ("study_id", "original_id", "inputs", "outputs", "counts")
    texts = {}
    for template in templates:
        record = json.loads(source.study_record(template.patient_id).read_text())
        texts[template.patient_id] = json.dumps({key: record[key] for key in kept})
    kinds = tuple(config["contours"])
    records, listings = [], {}
    (layout.version_dir / "pairs").mkdir(parents=True)
    for number, link in enumerate(links):
        template = templates[number % len(templates)]
        for folder in ("slices", "qc"):
            (layout.version_dir / folder).mkdir(exist_ok=True)
            if real_slices and folder == "slices":
                _link_tree(source.version_dir / folder / template.patient_id,
                           layout.version_dir / folder / link.patient_id)  # fmt: skip
                continue
            os.symlink(source.version_dir / folder / template.patient_id,
                       layout.version_dir / folder / link.patient_id)  # fmt: skip
        os.link(source.version_dir / "pairs" / f"{template.patient_id}.parquet",
                layout.version_dir / "pairs" / f"{link.patient_id}.parquet")  # fmt: skip
        record = json.loads(_renamed(texts[template.patient_id], template, link))
        # the study's folders hold the template's entries (they link to its folders): its
        # listing is the template's under its own ids (list_study on the first of each)
        if number < len(templates):
            listings[template.patient_id] = list_study(link, raw, kinds)
        record["listing"] = dataclasses.replace(listings[template.patient_id], link=link).digest()
        records.append(record)
    made["outputs_s"] = time.perf_counter() - started

    started = time.perf_counter()
    write_link_json(links, layout.link_table)
    synthesize_tables(source, layout, templates, links)
    for path in source.version_qc:  # the template's pictures (the manifest lists them)
        target = layout.version_dir / path.relative_to(source.version_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    made["tables_s"] = time.perf_counter() - started
    started = time.perf_counter()
    tables = [layout.index_file, layout.validation_file, layout.measures_file]
    problems = pq.read_table(layout.validation_file).to_pylist()
    manifest = build_manifest(
        layout, config, batch_tables(raw, records), problems, [*tables, *layout.version_qc]
    )
    write_manifest_files(layout, manifest)
    made["manifest_s"] = time.perf_counter() - started
    made["metadata_records"] = synthesize_batch_metadata(
        workdir, [link.patient_id for link in links], config["studies_per_job"]
    )
    os.chdir(REPO)
    return made


def _renamed(text: str, template: StudyLink, link: StudyLink) -> str:
    """``text`` with the template's ids replaced by the study's (the ids end at a quote, a
    slash or a dot; PH-HF-1 is no prefix of another template's id)."""
    for old, new in (
        (template.original_id, link.original_id),
        (template.patient_id, link.patient_id),
    ):
        for end in '"/.':
            text = text.replace(old + end, new + end)
    return text


def synthesize_tables(
    source: Layout, layout: Layout, templates: list[StudyLink], links: list[StudyLink]
) -> None:
    """index, validation and measures of the N studies: each study's rows are its template's
    (split included) with the ids and paths rewritten."""
    import pyarrow as pa

    for path_of in ("index_file", "validation_file", "measures_file"):
        table = pq.read_table(getattr(source, path_of))
        ids = table["study_id"].to_numpy(zero_copy_only=False)
        by_template = {t.patient_id: np.flatnonzero(ids == t.patient_id) for t in templates}
        rows, owners = [], []
        for number, link in enumerate(links):
            template = templates[number % len(templates)]
            rows.append(by_template[template.patient_id])
            owners += [(template, link)] * len(by_template[template.patient_id])
        taken = table.take(pa.array(np.concatenate(rows) if rows else [], pa.int64()))
        for name in taken.column_names:
            column = taken[name]
            if not pa.types.is_string(column.type):
                continue
            values = column.to_pylist()
            renamed = [
                value if value is None else _renamed(f'"{value}"', t, link)[1:-1]
                for value, (t, link) in zip(values, owners, strict=True)
            ]
            taken = taken.set_column(taken.column_names.index(name), name,
                                     pa.array(renamed, column.type))  # fmt: skip
        target = getattr(layout, path_of)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(parquet_bytes(taken))


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

# Peak RSS from VmHWM (this process's own peak): getrusage's ru_maxrss survives exec, so a
# child of the benchmark would report the benchmark's own peak (4.5 GB at 100,000 studies).
_OPEN = """
import sys, time
sys.path.insert(0, {repo!r})
start = time.perf_counter()
from loader.index import DatasetIndex
index = DatasetIndex({path!r}, verify={mode!r})
seconds = time.perf_counter() - start
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
print(seconds, len(index), peak)
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


def noop(workdir: Path, raw: Path, repeats: int, floor: tuple[Path, Path]) -> tuple[float, ...]:
    """Best of ``repeats`` no-ops (seconds), the largest peak RSS of Snakemake (MB), and the
    best of as many floor no-ops (``floor``: its workdir and raw folder), each run just before
    one of them: on a shared machine the load changes within minutes."""
    runs, floors = [], []
    for _ in range(repeats):
        floors.append(snakemake(*floor)[0])
        elapsed, memory, output = snakemake(workdir, raw)
        assert "Nothing to be done" in output, output[-2000:]
        runs.append((elapsed, memory.main / 2**20))
    return min(elapsed for elapsed, _ in runs), max(mb for _, mb in runs), min(floors)


def guard_seconds(workdir: Path, raw: Path, profile: str | None, processes: int) -> float:
    """``check_finished_version`` in this process (the no-op's parse-time check), with the
    raw files stat'ed and listed in up to ``processes`` processes (``--cores``)."""
    os.chdir(workdir)
    config = default_config(data_dir=str(raw), out_dir="out")
    layout = Layout.from_config(config)
    links = read_link_table(raw / "link.csv")
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    assert check_finished_version(layout, config, links, processes=processes) is not None
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    os.chdir(REPO)
    return time.perf_counter() - start


def sample_full_check(version_dir: Path, studies: int) -> tuple[float, int]:
    """verify full over every file of ``studies`` studies: (seconds, files)."""
    import pyarrow.compute as pc

    from loader.manifest import verify_dataset

    outputs = manifest_table(version_dir, read_manifest(version_dir), "outputs", ["path"])
    pattern = rf"^[a-z]+/ST0*({'|'.join(str(number) for number in range(studies))})[/.]"
    paths = outputs["path"].filter(pc.match_substring_regex(outputs["path"], pattern))
    paths = paths.to_pylist()
    start = time.perf_counter()
    problems = verify_dataset(version_dir, full=True, only=paths)
    assert not problems, problems[:5]
    return time.perf_counter() - start, len(paths)


def rewrite_as_format_1(version_dir: Path) -> tuple[int, bytes]:
    """Write the version's manifest in format 1 (the tables inline); returns its size and the
    format-2 manifest.json, to put back."""
    current = (version_dir / "manifest.json").read_bytes()
    data = manifest_bytes(read_whole_manifest(version_dir))
    (version_dir / "manifest.json").write_bytes(data)
    return len(data), current


def unique_digest_tables(studies: int, inputs_per_study: int, outputs_per_study: int) -> None:
    """The manifest's inputs and outputs tables at ``studies`` with a distinct sha256 per file
    (the version above repeats its templates' digests, which Parquet's dictionary encoding
    shrinks to almost nothing): their bytes, and the seconds to read and check one as the
    immutability check and DatasetIndex do (file bytes, sha256, the columns they use)."""
    import hashlib
    import io

    import pyarrow as pa

    from loader.manifest import _section_table

    for section, per_study, columns in (
        ("inputs", inputs_per_study, ["path", "size", "mtime_ns"]),
        ("outputs", outputs_per_study, ["path"]),
    ):
        count = studies * per_study
        paths = [f"dicoms/ST{n // per_study:06d}/{n % per_study}.dcm" for n in range(count)]
        digests = np.frombuffer(os.urandom(32 * count), dtype="S32")
        table = pa.table(
            {
                "path": pa.array(paths, pa.string()),
                "sha256": pa.array([d.hex() for d in digests.tolist()], pa.string()),
                "size": pa.array(np.full(count, 133266), pa.int64()),
            }
        )
        if section == "inputs":
            empty = _section_table("inputs", {})
            table = table.append_column("mtime_ns", pa.array(np.arange(count), pa.int64()))
            for name in ("link_target", "config_path"):
                table = table.append_column(name, pa.nulls(count, empty[name].type))
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        data = sink.getvalue()
        start = time.perf_counter()
        hashlib.sha256(data).hexdigest()
        pq.read_table(pa.BufferReader(data), columns=columns)
        seconds = time.perf_counter() - start
        print(f"  {section} table with distinct digests, {count:,} rows: "
              f"{len(data) / 2**20:.0f} MB, {seconds:.2f} s to hash and read {columns}",
              flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--templates", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--old-format", action="store_true")
    parser.add_argument("--profile")
    parser.add_argument("--work", type=Path, default=Path("/tmp/wtscale/scale"))
    parser.add_argument("--keep", action="store_true", help="keep the data (default: delete)")
    parser.add_argument(
        "--real-sample-folders",
        action="store_true",
        help="each study's slices/ a real folder of hard links, not a symbolic link",
    )
    parser.add_argument(
        "--real-folders",
        action="store_true",
        help="every study folder (raw dicoms/ and contourfiles/, and slices/) a real folder of "
        "hard links, not a symbolic link (implies --real-sample-folders)",
    )
    parser.add_argument(
        "--open-only",
        action="store_true",
        help="skip the no-ops and the immutability check: the manifest, DatasetIndex open, "
        "verify full on a sample, loader memory",
    )
    parser.add_argument(
        "--digest-tables-only",
        action="store_true",
        help="only measure the manifest tables with distinct digests (30 inputs, 23 outputs "
        "per study, as the phantom studies have)",
    )
    args = parser.parse_args()
    if args.digest_tables_only:
        unique_digest_tables(args.studies, 30, 23)
        return
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = "real" if (REAL_DATA / "link.csv").is_file() else "phantom"
    try:
        floor = measure_floor(work, source)
        floor_run = (work / "floor", REAL_DATA if source == "real" else work / "floor" / "raw")
        print(f"floor (no-op of 5 {source} studies, best of 3): {floor:.2f} s", flush=True)
        template_raw, template_work = build_templates(work, args.templates)
        made = make_version(
            work / f"n{args.studies}",
            args.studies,
            template_raw,
            template_work,
            real_slices=args.real_sample_folders or args.real_folders,
            real_raw=args.real_folders,
        )
        print("made: " + ", ".join(f"{k} {v:.0f}" for k, v in made.items()), flush=True)
        root = work / f"n{args.studies}"
        raw, workdir = root / "raw", root / "work"
        version_dir = workdir / "out" / VERSION
        sizes = {name: (version_dir / name).stat().st_size for name in
                 ("manifest.json", *MANIFEST_TABLES.values())}  # fmt: skip
        print("manifest bytes: " + ", ".join(f"{k} {v / 2**20:.1f} MB" for k, v in sizes.items()))
        files, size = metadata_size(workdir)
        print(f"snakemake metadata: {files} files, {size / 2**20:.2f} MB")

        if not args.open_only:
            elapsed, rss, near = noop(workdir, raw, args.repeats, floor_run)
            floor = min(floor, near)
            print(f"no-op over the finished version: {elapsed:.1f} s = {elapsed / floor:.2f}x "
                  f"floor (best floor so far {floor:.2f} s), Snakemake peak RSS {rss:.0f} MB",
                  flush=True)  # fmt: skip
            guards = [guard_seconds(workdir, raw, None, processes) for processes in (1, 2)]
            print(f"  of which check_finished_version (in-process): {guards[1]:.1f} s in 2 "
                  f"processes (--cores 2), {guards[0]:.1f} s in one", flush=True)  # fmt: skip
            if args.profile:
                guard_seconds(workdir, raw, args.profile, 1)
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
            old, old_rss, near = noop(workdir, raw, args.repeats, floor_run)
            floor = min(floor, near)
            print(f"no-op, manifest in format 1: {old:.1f} s = {old / floor:.2f}x floor "
                  f"(best floor so far {floor:.2f} s), peak RSS {old_rss:.0f} MB; format 2: "
                  f"{elapsed / floor:.2f}x", flush=True)  # fmt: skip
            (version_dir / "manifest.json").write_bytes(current)
    finally:
        os.chdir(REPO)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
