"""Building a dataset version by calling the workflow's functions directly, as its rules do.

The unit tests build phantom studies in temporary folders with :func:`build_by_calls` (well
under a second for a few small studies) instead of running Snakemake; the end-to-end tests
compare what Snakemake builds with what these calls build. Also here: an independent
rasterizer and file digests, to check the workflow's outputs against.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from loader.manifest import MANIFEST_TABLES, read_whole_manifest
from workflow_scripts.build_plan import BuildPlan, plan_build
from workflow_scripts.config import default_config
from workflow_scripts.dataset.batch_tables import read_version_tables
from workflow_scripts.dataset.manifest import recorded_config, write_dataset_manifest
from workflow_scripts.dataset.tables import BATCH_TABLES_USED, write_dataset_tables
from workflow_scripts.layout import Layout
from workflow_scripts.qc.summary import write_report_material
from workflow_scripts.qc.version_qc import write_version_qc
from workflow_scripts.raw.links import read_link_json, read_link_table, write_link_json
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom
from workflow_scripts.study.batch import build_batch
from workflow_scripts.study.build import build_study
from workflow_scripts.study.options import BuildOptions


def phantom(root: Path, **fields) -> Path:
    """A phantom raw dataset under ``root`` (the schema's phantom defaults, ``fields`` changed)."""
    return write_phantom(root, PhantomSpec.with_defaults(**fields))


def build_studies(raw: Path, out: Path, **overrides) -> SimpleNamespace:
    """Build every study of link.csv with build_study (no tables, no manifest); returns the
    raw folder, the layout, the options, the links and the records by study id."""
    config = default_config(data_dir=str(raw), out_dir=str(out), **overrides)
    layout = Layout.from_config(config)
    options = BuildOptions.from_config(config)
    links = {link.patient_id: link for link in read_link_table(raw / "link.csv")}
    records = {
        study: build_study(link, layout, options, layout.study_log(study))
        for study, link in links.items()
    }
    return SimpleNamespace(
        raw=raw, config=config, layout=layout, options=options, links=links, records=records
    )


def report_paths(layout: Layout) -> tuple[Path, Path]:
    """The report's study pages and flagged overlays folders (as rules/qc.smk names them)."""
    return layout.report_dir / "studies", layout.report_dir / "flagged"


def read_link_table_of(layout: Layout):
    """link.csv of the build, or the phantom's (as rule validate_link_table reads it)."""
    return read_link_table(layout.data_dir / "link.csv")


def build_by_calls(config: dict, workdir: Path | None = None) -> BuildPlan:
    """Build ``config`` (validated, defaults filled) the way the workflow's rules do, without
    Snakemake: the plan, the phantom when data_dir is empty, every study, the tables, the
    version's QC files, the manifest and the report material. Relative paths in ``config``
    are taken from ``workdir`` (as Snakemake's ``--directory``); the returned plan's paths are
    then relative to it too.
    """
    with contextlib.chdir(workdir) if workdir is not None else contextlib.nullcontext():
        plan = plan_build(config)
        layout = plan.layout
        if layout.phantom and not layout.data_dir.exists():
            write_phantom(layout.data_dir, PhantomSpec(**config["phantom"]))
        write_link_json(read_link_table_of(layout), layout.link_table)
        for batch in plan.batches:
            build_batch(
                batch,
                plan.batch_studies(batch),
                layout,
                plan.job_options,
                workers=1,
                record_path=layout.batch_record(batch),
                exclusions=plan.batch_exclusions(batch),
                log=io.StringIO(),
            )
        batch_records = [layout.batch_record(batch) for batch in plan.batches]
        write_dataset_tables(
            tables=read_version_tables(layout, batch_records, BATCH_TABLES_USED),
            links=read_link_json(layout.link_table),
            data_dir=layout.data_dir,
            contour_kinds=plan.contour_kinds,
            version=config["version"],
            fractions=config["splits"],
            seed=config["split_seed"],
            index_path=layout.index_file,
            validation_path=layout.validation_file,
            assigned=plan.split_assignment,
            measures_path=layout.measures_file,
            frames_path=layout.frames_file if plan.all_frames else None,
        )
        tables = (layout.index_file, layout.validation_file)
        write_version_qc(
            layout,
            *tables,
            plan.all_exclusions_params,
            config["checks"]["area_outlier_factor"],
            measures_path=layout.measures_file,
        )
        write_dataset_manifest(
            layout,
            recorded_config(config),
            batch_records,
            *tables,
            qc_outputs=layout.version_qc,
            exclusions=plan.exclusions_input,
            splits_file=plan.splits_file_input,
            measures_path=layout.measures_file,
            frames_path=layout.frames_file if plan.all_frames else None,
        )
        write_report_material(
            layout, layout.index_file, sorted(plan.studies), *report_paths(layout)
        )
    return plan


def finished_phantom_build(root: Path, version: str, studies: int = 2) -> Path:
    """A finished version ``version`` of ``studies`` phantom studies (4 slices of 32 x 32, the
    phantom's faults) built by :func:`build_by_calls` in ``root`` (``raw/``, ``out/``)."""
    raw = phantom(root / "raw", studies=studies, slices=4, size=32)
    build_by_calls(default_config(data_dir=str(raw), out_dir=str(root / "out"), version=version))
    return root


def copy_build(finished: Path, to: Path) -> SimpleNamespace:
    """A copy of the build in ``finished`` (``raw/``, ``out/``; times and links kept) under
    ``to``, that a test may change: its ``raw`` and ``out`` folders."""
    shutil.copytree(finished / "raw", to / "raw", symlinks=True)
    shutil.copytree(finished / "out", to / "out", symlinks=True)
    return SimpleNamespace(raw=to / "raw", out=to / "out")


def stats_by_path(root: Path, relpaths: list[str]) -> tuple[list[int], list[int]]:
    """(sizes, mtime_ns) by ``os.stat`` of each path under ``root``, -1 where it fails or is
    no regular file: what the immutability check's stats must equal."""
    sizes, times = [], []
    for relpath in relpaths:
        try:
            status = os.stat(root / relpath)
        except OSError:
            status = None
        regular = status is not None and stat.S_ISREG(status.st_mode)
        sizes.append(status.st_size if regular else -1)
        times.append(status.st_mtime_ns if regular else -1)
    return sizes, times


def change_first_digit(contour: Path) -> None:
    """Change a contour file's content but not its size: its first character, a digit of the
    first vertex, becomes another digit."""
    data = bytearray(contour.read_bytes())
    data[0] = ord("9") if data[0] != ord("9") else ord("8")
    contour.write_bytes(bytes(data))


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


MANIFEST_FILES = ("manifest.json", *MANIFEST_TABLES.values())


def tree_digests(folder: Path, exclude: tuple[str, ...] = MANIFEST_FILES) -> dict[str, str]:
    """sha256 of every file under ``folder`` by POSIX relative path, but those named in
    ``exclude`` (a version's manifest and its tables: its build time differs, and the inputs'
    times where the raw data were copied; compare them with ``read_whole_manifest``) and the
    empty markers Snakemake puts in directory outputs."""
    return {
        path.relative_to(folder).as_posix(): sha256(path)
        for path in sorted(Path(folder).rglob("*"))
        if path.is_file() and path.name not in (*exclude, ".snakemake_timestamp")
    }


def reference_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The pixel-centre rule by brute force, independent of ``contour_to_mask``: a pixel (r, c)
    is in when a ray from its centre (x=c, y=r) to the right crosses the polygon's edges an odd
    number of times, an edge counting when exactly one end is at or below the ray (y <= r) and
    it crosses strictly right of the centre."""
    rows, columns = shape
    xa, ya = np.asarray(points, dtype=np.float64).T
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    r = np.arange(rows, dtype=np.float64)[:, None, None]
    c = np.arange(columns, dtype=np.float64)[None, :, None]
    spans = (ya <= r) != (yb <= r)  # (rows, 1, edges)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = xa + (r - ya) * (xb - xa) / (yb - ya)
    crossings = np.count_nonzero(spans & (x_cross > c), axis=2)
    return crossings % 2 == 1


def assert_same_build(out_dir: Path, reference_out_dir: Path, version: str = "1.0.0") -> None:
    """The builds under two out_dirs are the same: every file of the version folders byte for
    byte, the manifests but for their build time (and the inputs' modification times, which
    differ for two generated phantoms), and the QC report material."""
    built, reference = Path(out_dir) / version, Path(reference_out_dir) / version
    digests = tree_digests(built)
    assert any(name.endswith(".npz") for name in digests)
    different = sorted(set(digests.items()) ^ set(tree_digests(reference).items()))
    assert not different, f"files differ: {different[:10]}"
    manifests = [read_whole_manifest(folder / "manifest.json") for folder in (built, reference)]
    for manifest in manifests:
        del manifest["built_at"]
        for entry in manifest["inputs"].values():
            del entry["mtime_ns"]
    for key in manifests[0].keys() | manifests[1].keys():
        assert manifests[0].get(key) == manifests[1].get(key), f"manifest {key!r} differs"
    reports = [
        Path(folder) / "work" / version / "report" for folder in (out_dir, reference_out_dir)
    ]
    assert tree_digests(reports[0]) == tree_digests(reports[1]), "QC report differs"
