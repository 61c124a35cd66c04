"""A batch rerun reuses the studies whose build would give the same bytes, and rebuilds the
others (workflow_scripts/study/reuse.py); the version's QC files are put back, not redrawn,
when their tables did not change (workflow_scripts/qc/version_qc.py).

What a reuse must give is checked against a clean build of the same raw files into another
folder (every file byte for byte, and the study records); whether a study was rebuilt, by the
inode and modification time of its files (every writer writes a new file and renames it).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from build_helpers import change_first_digit, phantom, tree_digests
from workflow_scripts.config import default_config
from workflow_scripts.dataset.batch_tables import batch_tables, load_records
from workflow_scripts.dataset.tables import write_dataset_tables
from workflow_scripts.layout import Layout
from workflow_scripts.qc import plots, version_qc
from workflow_scripts.qc.version_qc import write_version_qc
from workflow_scripts.raw.links import read_link_table
from workflow_scripts.study.batch import build_batch

BATCH = "00000-reuse"


def build(raw: Path, out: Path, **overrides) -> tuple[SimpleNamespace, str]:
    """Build every study of ``raw`` as one batch (in this process) into ``out``; the build
    and the batch's log."""
    config = default_config(data_dir=str(raw), out_dir=str(out), contours=["i", "o"])
    layout = Layout.from_config(config)
    links = read_link_table(raw / "link.csv")
    options = {key: config[key] for key in ("contours", "checks", "qc")}
    for key, value in overrides.items():
        options[key] = value
    log = io.StringIO()
    build_batch(
        BATCH,
        [[link.patient_id, link.original_id] for link in links],
        layout,
        options,
        workers=1,
        record_path=layout.batch_record(BATCH),
        log=log,
    )
    built = SimpleNamespace(layout=layout, config=config, studies=[s.patient_id for s in links])
    return built, log.getvalue()


def study_files(layout: Layout, study: str) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of every file the study's build wrote: its outputs, page, record."""
    paths = [
        *layout.slices_dir(study).glob("*"),
        *layout.qc_dir(study).glob("*"),
        layout.pairs_file(study),
        layout.report_page(study),
        layout.study_record(study),
    ]
    return {str(path): (os.stat(path).st_ino, os.stat(path).st_mtime_ns) for path in paths}


def all_files(built: SimpleNamespace) -> dict[str, dict]:
    return {study: study_files(built.layout, study) for study in built.studies}


def records(built: SimpleNamespace) -> dict[str, dict]:
    return {
        study: json.loads(built.layout.study_record(study).read_text()) for study in built.studies
    }


def assert_same_as_clean_build(built: SimpleNamespace, raw: Path, clean_out: Path) -> None:
    clean, _ = build(raw, clean_out)
    assert tree_digests(built.layout.version_dir) == tree_digests(clean.layout.version_dir)
    assert records(built) == records(clean)
    for study in built.studies:
        page = built.layout.report_page(study).read_bytes()
        assert page == clean.layout.report_page(study).read_bytes()


@pytest.fixture
def raw(tmp_path) -> Path:
    return phantom(tmp_path / "raw", studies=3, slices=4, size=32, faults=False)


def contour_of(raw: Path, built: SimpleNamespace, study: str) -> Path:
    record = records(built)[study]
    relpath = next(path for path in sorted(record["inputs"]) if "icontour" in path)
    return raw / relpath


def test_a_touched_input_rebuilds_nothing_and_the_record_gets_its_new_time(raw, tmp_path):
    built, _ = build(raw, tmp_path / "out")
    before, records_before = all_files(built), records(built)
    touched = contour_of(raw, built, built.studies[1])
    later = os.stat(touched).st_mtime_ns + 5_000_000_000
    os.utime(touched, ns=(later, later))

    built, log = build(raw, tmp_path / "out")

    assert log.count(": reused") == 3
    after = all_files(built)
    for study in built.studies:
        unchanged = {path: stat for path, stat in after[study].items() if "studies" not in path}
        assert unchanged == {p: s for p, s in before[study].items() if "studies" not in p}
    relpath = touched.relative_to(raw).as_posix()
    now = records(built)
    assert now[built.studies[1]]["inputs"][relpath]["mtime_ns"] == later
    now[built.studies[1]]["inputs"][relpath]["mtime_ns"] = records_before[built.studies[1]][
        "inputs"
    ][relpath]["mtime_ns"]
    assert now == records_before
    assert_same_as_clean_build(built, raw, tmp_path / "clean")


def test_a_changed_input_rebuilds_its_study_alone(raw, tmp_path):
    built, _ = build(raw, tmp_path / "out")
    before = all_files(built)
    changed_study = built.studies[0]
    contour = contour_of(raw, built, changed_study)
    change_first_digit(contour)

    built, log = build(raw, tmp_path / "out")

    after = all_files(built)
    assert f"{changed_study}: rebuilt: {contour.relative_to(raw).as_posix()} changed" in log
    assert log.count(": reused") == 2
    assert set(after[changed_study].values()).isdisjoint(before[changed_study].values())
    for study in built.studies[1:]:
        assert after[study] == before[study]
    assert_same_as_clean_build(built, raw, tmp_path / "clean")


def _overwrite(path: Path) -> None:
    path.write_bytes(b"not what the build wrote")


def _replace_keeping_size_and_time(path: Path) -> None:
    """Another content of the same size and modification time, written as a new file."""
    stat = os.stat(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    replacement = path.with_name(path.name + ".new")
    replacement.write_bytes(bytes(data))
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)


def _add_a_file(path: Path) -> None:
    shutil.copyfile(path, path.with_name("9999.npz"))


def _remove(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    "tamper", [_overwrite, _replace_keeping_size_and_time, _add_a_file, _remove]
)
def test_a_tampered_output_of_an_unchanged_study_is_noticed_and_rebuilt(raw, tmp_path, tamper):
    built, _ = build(raw, tmp_path / "out")
    before = all_files(built)
    study = built.studies[2]
    sample = next(iter(sorted(built.layout.slices_dir(study).glob("*.npz"))))
    tamper(sample)

    built, log = build(raw, tmp_path / "out")

    assert f"{study}: rebuilt: output" in log
    assert log.count(": reused") == 2
    assert study_files(built.layout, built.studies[0]) == before[built.studies[0]]
    assert_same_as_clean_build(built, raw, tmp_path / "clean")


def test_a_removed_report_page_or_stamp_rebuilds_the_study(raw, tmp_path):
    built, _ = build(raw, tmp_path / "out")
    built.layout.report_page(built.studies[0]).unlink()
    (built.layout.work_dir / "reuse" / f"{built.studies[1]}.json").unlink()

    built, log = build(raw, tmp_path / "out")

    assert f"{built.studies[0]}: rebuilt: report page changed" in log
    assert log.count(": reused") == 1
    assert_same_as_clean_build(built, raw, tmp_path / "clean")


def test_other_options_rebuild_every_study(raw, tmp_path):
    built, _ = build(raw, tmp_path / "out")
    checks = {**built.config["checks"], "area_outlier_factor": 2.5}

    built, log = build(raw, tmp_path / "out", checks=checks)

    assert log.count("rebuilt: options, exclusions or code changed") == 3
    assert ": reused" not in log


def test_the_version_qc_files_are_put_back_when_their_tables_did_not_change(
    raw, tmp_path, monkeypatch
):
    built, _ = build(raw, tmp_path / "out")
    layout = built.layout
    links = read_link_table(raw / "link.csv")
    tables = (layout.index_file, layout.validation_file, layout.measures_file)
    write_dataset_tables(
        batch_tables(raw, load_records(layout.study_record(study) for study in built.studies)),
        links,
        raw,
        ("i", "o"),
        "1.0.0",
        built.config["splits"],
        built.config["split_seed"],
        *tables[:2],
        measures_path=tables[2],
    )
    factor = built.config["checks"]["area_outlier_factor"]

    def draw(factor=factor):
        write_version_qc(layout, *tables[:2], [], factor, measures_path=tables[2])
        return {path.name: path.read_bytes() for path in version_qc._files(layout)}

    drawn = draw()
    for path in version_qc._files(layout):  # as Snakemake does before it runs the job
        path.unlink()
    with monkeypatch.context() as patched:
        patched.setattr(plots, "area_distribution_plot", None)  # drawing would fail
        assert draw() == drawn
    for path in version_qc._files(layout):
        kept = version_qc._kept_file(layout, path)
        assert os.stat(path).st_ino == os.stat(kept).st_ino
        assert os.stat(path).st_mtime_ns >= os.stat(layout.index_file).st_mtime_ns

    # from scratch (no kept files) the same bytes
    shutil.rmtree(layout.work_dir / "version_qc")
    assert draw() == drawn
    # another outlier factor (drawn as the thresholds): drawn again
    redrawn = draw(factor * 2)
    assert redrawn["area_to_median.png"] != drawn["area_to_median.png"]
    # a kept file changed on disk: drawn again
    kept = version_qc._kept_file(layout, layout.review_sheet)
    kept.unlink()
    kept.write_bytes(b"tampered")
    assert draw(factor * 2) == redrawn
