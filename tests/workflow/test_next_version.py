"""A version made from another (issue 18): ``--config from_version=1.0.0 version=1.1.0 ...``
starts from 1.0.0's recorded configuration, and only what the command line names changes it
(config.yaml, which the tests pass with --configfile, does not); the manifest records what it
was made from. A finished version's runs (``--report`` included) use its recorded
configuration too, and name a key the command line sets otherwise."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from build_helpers import tree_digests
from conftest import run_workflow
from loader.manifest import read_whole_manifest
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom

pytestmark = pytest.mark.workflow

TRACEBACK_LINE = re.compile(r'^\s*File ".*", line \d+', re.MULTILINE)


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """Version 1.0.0 of a small phantom built with o-contours (workdir/out/1.0.0)."""
    root = tmp_path_factory.mktemp("next")
    raw = write_phantom(root / "raw", PhantomSpec.with_defaults(studies=3, slices=8, size=64))
    workdir = root / "work"
    workdir.mkdir()
    run_workflow(workdir, "--config", f"data_dir={raw}", "out_dir=out", "contours=[i,o]")
    return workdir, raw


def index_rows(version_dir) -> set[tuple[str, int]]:
    index = pd.read_parquet(version_dir / "index.parquet")
    return set(zip(index["study_id"], index["slice"].astype(int), strict=True))


def test_the_exclusions_step_after_an_o_contour_build_keeps_the_o_masks(first):
    workdir, _ = first
    old = workdir / "out" / "1.0.0"
    study, slice_number = sorted(index_rows(old))[0]
    exclusions = workdir / "exclusions.csv"
    exclusions.write_text(f"study_id,slice,reason\n{study},{slice_number},blurred\n")
    # The README's review step, without data_dir or contours on the command line (out_dir,
    # where 1.0.0 is found, is this test's own).
    command = (
        "--config", "out_dir=out", "from_version=1.0.0", "version=1.1.0",
        f"exclusions={exclusions}",
    )  # fmt: skip
    run_workflow(workdir, *command)
    new = workdir / "out" / "1.1.0"
    manifest = read_whole_manifest(new / "manifest.json")
    old_manifest = read_whole_manifest(old / "manifest.json")
    assert manifest["config"]["contours"] == ["i", "o"]
    assert manifest["config"]["data_dir"] == old_manifest["config"]["data_dir"]
    assert "from_version" not in manifest["config"]
    assert manifest["derived_from"] == {
        "version": "1.0.0",
        "sha256": hashlib.sha256((old / "manifest.json").read_bytes()).hexdigest(),
    }
    assert "derived_from" not in old_manifest
    # the same samples but the excluded one, o-masks and all
    assert index_rows(new) == index_rows(old) - {(study, slice_number)}
    index = pd.read_parquet(new / "index.parquet")
    with_omask = index[index["has_omask"]]
    assert len(with_omask) > 0
    with np.load(new / with_omask["npz"].iloc[0], allow_pickle=False) as sample:
        assert sample["omask"].dtype == bool and sample["omask"].any()
    validation = pd.read_parquet(new / "validation.parquet")
    assert ((validation["code"] == "excluded_by_review") & (validation["study_id"] == study)).any()
    # the same command again: the version is finished, nothing runs, nothing changes
    before = tree_digests(new, exclude=())
    again = run_workflow(workdir, *command)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert tree_digests(new, exclude=()) == before


def refused(workdir, *config: str) -> str:
    result = run_workflow(workdir, "--config", *config, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert not TRACEBACK_LINE.search(output) and "Traceback" not in output, output
    return output


def test_a_from_version_that_is_missing_unfinished_or_unnamed_is_refused(first):
    workdir, _ = first
    out = workdir / "out"
    versions_before = sorted(path.name for path in out.iterdir())
    output = refused(workdir, "out_dir=out", "from_version=0.9.0", "version=1.2.0")
    assert "from_version: version '0.9.0' in out does not exist" in output
    assert re.search(r"Finished versions in out: 1\.0\.0(, 1\.1\.0)?\.", output), output
    (out / "0.5.0" / "slices").mkdir(parents=True)  # a build that never finished
    output = refused(workdir, "out_dir=out", "from_version=0.5.0", "version=1.2.0")
    assert "version '0.5.0' in out is not finished (it has no manifest)" in output
    for same_name in (("from_version=1.0.0",), ("from_version=1.0.0", "version=1.0.0")):
        output = refused(workdir, "out_dir=out", *same_name)
        assert "a version made from '1.0.0' needs a name of its own" in output
    (out / "0.5.0" / "slices").rmdir(), (out / "0.5.0").rmdir()
    assert sorted(path.name for path in out.iterdir()) == versions_before


def test_a_finished_version_runs_with_its_recorded_configuration(first):
    """config.yaml says contours: [i]; 1.0.0 was built with [i, o]. A run that does not name
    contours uses the record (and says config.yaml's value is not used); one that names
    another value is refused, naming the key."""
    workdir, raw = first
    result = run_workflow(workdir, "--config", f"data_dir={raw}", "out_dir=out")
    output = result.stdout + result.stderr
    assert "Nothing to be done" in output
    assert "config.yaml's contours differs from it and is not" in output
    output = refused(workdir, f"data_dir={raw}", "out_dir=out", "contours=[i]")
    assert "config contours: ['i', 'o'] -> ['i']" in output


def rulegraph(report: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """The rules and the (source, target) edges of the workflow picture a report embeds (the
    Vega data of Snakemake's html report: ``node-data``, and the edges in ``link-data`` and
    ``link-data-direct``)."""
    with zipfile.ZipFile(report) as archive:
        html = archive.read("report/report.html").decode("utf-8")
    spec = json.JSONDecoder().raw_decode(html[html.index("rulegraph_spec = ") + 17 :])[0]
    data = {item["name"]: item.get("values", []) for item in spec["data"]}
    nodes = {node["rule"] for node in data["node-data"]}
    links = data["link-data"] + data["link-data-direct"]
    edges = {(link["sourcerule"], link["targetrule"]) for link in links}
    return nodes, edges


def test_the_report_of_a_finished_version_uses_its_recorded_configuration(first):
    workdir, _ = first
    report = workdir / "report.zip"
    result = run_workflow(workdir, "--report", str(report), "--config", "out_dir=out", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # the workflow picture shows every stage of the build, build_studies included (issue 18)
    nodes, edges = rulegraph(report)
    stages = {"validate_link_table", "build_studies", "index_dataset", "plot_qc"}
    assert stages | {"write_manifest", "summarize_qc", "all"} <= nodes
    assert {("build_studies", "index_dataset"), ("index_dataset", "write_manifest")} <= edges
    output = refused(workdir, "out_dir=out", "contours=[i]", "--report", str(report))
    assert "config contours: ['i', 'o'] -> ['i']" in output
