"""The raw files now, as the immutability check sees them, measured in worker processes
(``raw_state``): the same sizes, times and listing digests as one process gives, and as
``os.stat`` and ``list_study`` give; a worker that fails or answers nonsense has its share done
in this process; a change in a worker's share is refused by the check like any other."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest
from snakemake.exceptions import WorkflowError

from build_helpers import copy_build, finished_phantom_build, phantom, stats_by_path
from workflow_scripts.build_plan import parse_processes
from workflow_scripts.config import default_config
from workflow_scripts.dataset import raw_state as raw_state_module
from workflow_scripts.dataset.raw_state import raw_state
from workflow_scripts.dataset.version_guard import VersionChangedError, check_finished_version
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import read_link_table
from workflow_scripts.raw.listing import list_study

REAL_DATA = Path(os.environ.get("LVDS_REAL_DATA", "../shared/data/sunnybrook"))
VERSION = "1"


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """Five phantom studies (with the phantom's faults), a study folder of link.csv that is
    missing, and a DICOM that is a folder."""
    raw = phantom(tmp_path_factory.mktemp("raw") / "raw", studies=5, slices=4, size=32)
    (raw / "dicoms" / "PHANTOM0003" / "3.dcm").unlink()
    (raw / "dicoms" / "PHANTOM0003" / "3.dcm").mkdir()
    shutil.rmtree(raw / "dicoms" / "PHANTOM0005")
    return raw


def study_inputs(root: Path, links) -> list[str]:
    """Every file the studies' builds read, sorted, plus link.csv and a path that is missing."""
    paths = {"link.csv", "dicoms/NOSUCH/1.dcm"}
    for link in links:
        listing = list_study(link, root, ("i", "o"), True)
        paths.update(listing.files_read())
        paths.update(f"{listing.dicom_dir}/{name}" for name, _ in listing.dicoms or ())
    return sorted(paths)


class Spy:
    """Records each worker's answer: a RawState, or None when its share was done here."""

    def __init__(self, monkeypatch):
        self.answers = []
        result = raw_state_module._Worker.result

        def recorded(worker):
            answer = result(worker)
            self.answers.append(answer)
            return answer

        monkeypatch.setattr(raw_state_module._Worker, "result", recorded)
        monkeypatch.setattr(raw_state_module, "PARALLEL_FROM", 1)
        monkeypatch.setattr(raw_state_module.os, "cpu_count", lambda: 8)


def expected(root: Path, links, paths: list[str], kinds=("i", "o")):
    sizes, times = stats_by_path(root, paths)
    digests = {link.patient_id: list_study(link, root, kinds, True).digest() for link in links}
    return sizes, times, digests


@pytest.mark.parametrize("processes", [2, 3, 7])
def test_workers_give_what_stat_and_list_study_give(raw, monkeypatch, processes):
    links = read_link_table(raw / "link.csv")
    paths = study_inputs(raw, links)
    spy = Spy(monkeypatch)
    state = raw_state(raw, pa.array(paths), links, ("i", "o"), True, processes=processes)
    sizes, times, digests = expected(raw, links, paths)
    assert state.sizes.tolist() == sizes and state.times.tolist() == times
    assert state.digests == digests
    assert len(spy.answers) == processes - 1
    assert all(answer is not None for answer in spy.answers)  # the workers did their shares
    assert -1 in sizes and len(set(sizes)) > 3  # the folder, the missing path; real sizes


@pytest.mark.realdata
def test_workers_give_what_stat_and_list_study_give_on_the_real_studies(monkeypatch):
    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(f"no real data at {REAL_DATA}")
    links = read_link_table(REAL_DATA / "link.csv")
    paths = study_inputs(REAL_DATA, links)
    spy = Spy(monkeypatch)
    state = raw_state(REAL_DATA, pa.array(paths), links, ("i", "o"), True, processes=2)
    sizes, times, digests = expected(REAL_DATA, links, paths)
    assert len(paths) > 900
    assert state.sizes.tolist() == sizes and state.times.tolist() == times
    assert state.digests == digests
    assert spy.answers and all(answer is not None for answer in spy.answers)


#: A worker that answers in the right form, a digest per study, but no size or time at all.
WELL_FORMED_BUT_SHORT = """
import json, sys
import pyarrow as pa
request = json.loads(sys.stdin.buffer.readline())
sys.stdin.buffer.read()
out = sys.stdout.buffer
out.write(json.dumps({"digests": ["0" * 64] * len(request["studies"])}).encode() + b"\\n")
schema = pa.schema([("size", pa.int64()), ("mtime_ns", pa.int64())])
with pa.ipc.new_stream(out, schema) as writer:
    writer.write_table(schema.empty_table())
"""


@pytest.mark.parametrize(
    "program",
    [
        "import sys; sys.exit(3)",  # fails
        "import sys; sys.stdin.buffer.read(); print('{\"digests\": [1]}')",  # nonsense
        "import sys; sys.stdin.buffer.read(); sys.stdout.write('not json')",
        WELL_FORMED_BUT_SHORT,
    ],
    ids=["fails", "wrong-answer", "not-json", "rows-missing"],
)
def test_a_worker_that_fails_or_answers_nonsense_has_its_share_done_here(
    raw, monkeypatch, tmp_path, program
):
    script = tmp_path / "python"
    script.write_text(f"#!{sys.executable}\n{program}\n")
    script.chmod(0o755)
    links = read_link_table(raw / "link.csv")
    paths = study_inputs(raw, links)
    spy = Spy(monkeypatch)
    monkeypatch.setattr(raw_state_module.sys, "executable", str(script))
    state = raw_state(raw, pa.array(paths), links, ("i", "o"), True, processes=2)
    assert spy.answers == [None]
    sizes, times, digests = expected(raw, links, paths)
    assert state.sizes.tolist() == sizes and state.times.tolist() == times
    assert state.digests == digests


def test_few_studies_or_one_process_stay_in_this_process(raw, monkeypatch):
    links = read_link_table(raw / "link.csv")
    started = []
    monkeypatch.setattr(raw_state_module._Worker, "start", lambda *a: started.append(a))
    paths = pa.array(study_inputs(raw, links))
    raw_state(raw, paths, links, ("i",), True, processes=2)  # 5 studies < PARALLEL_FROM
    monkeypatch.setattr(raw_state_module, "PARALLEL_FROM", 1)
    raw_state(raw, paths, links, ("i",), True, processes=1)

    def listed(link, kinds, follow):
        return list_study(link, raw, kinds, follow)

    raw_state(raw, paths, links, ("i",), True, processes=2, list_files=listed)
    assert started == []


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return finished_phantom_build(tmp_path_factory.mktemp("finished"), VERSION, studies=4)


@pytest.fixture
def build(finished, tmp_path) -> SimpleNamespace:
    return copy_build(finished, tmp_path)


def check_in_workers(build, monkeypatch) -> list:
    spy = Spy(monkeypatch)
    config = default_config(data_dir=str(build.raw), out_dir=str(build.out), version=VERSION)
    links = read_link_table(build.raw / "link.csv")
    check_finished_version(Layout.from_config(config), config, links, processes=2)
    return spy.answers


def test_an_unchanged_version_passes_with_workers(build, monkeypatch):
    answers = check_in_workers(build, monkeypatch)
    assert len(answers) == 1 and answers[0] is not None


def test_a_changed_input_in_a_workers_share_is_refused(build, monkeypatch):
    # Studies 3 and 4 are the second half of link.csv: the worker's share.
    dicom = build.raw / "dicoms" / "PHANTOM0004" / "2.dcm"
    data = bytearray(dicom.read_bytes())
    data[-1] ^= 0xFF
    dicom.write_bytes(bytes(data))
    with pytest.raises(VersionChangedError) as raised:
        check_in_workers(build, monkeypatch)
    assert "1 input file(s) changed or missing: dicoms/PHANTOM0004/2.dcm" in str(raised.value)


def test_a_file_added_in_a_workers_share_is_refused(build, monkeypatch):
    (build.raw / "dicoms" / "PHANTOM0003" / "notes.txt").write_text("added")
    with pytest.raises(VersionChangedError) as raised:
        check_in_workers(build, monkeypatch)
    message = str(raised.value)
    assert "1 study(ies) with files added, removed or renamed: PHANTOM0003" in message
    assert "input file(s)" not in message


class Workflow:
    def __init__(self, cores):
        self._value = cores

    @property
    def cores(self):
        if isinstance(self._value, Exception):
            raise self._value
        return self._value


def test_the_parse_uses_snakemakes_cores_up_to_the_machines(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert parse_processes(Workflow(2)) == 2
    assert parse_processes(Workflow(64)) == 4
    assert parse_processes(Workflow(WorkflowError("no --cores"))) == 1
    assert parse_processes(Workflow(None)) == 1
    assert parse_processes(Workflow(0)) == 1
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert parse_processes(Workflow(3)) == 1
