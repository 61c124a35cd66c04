"""Batches of studies: deterministic assignment, independent of link.csv's line order, and a
setting of how to run that never reaches the dataset's identity."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow_scripts.batches import BATCH_ID_PATTERN, assign_batches
from workflow_scripts.build_plan import plan_build
from workflow_scripts.config import default_config
from workflow_scripts.dataset.manifest import build_config, recorded_config
from workflow_scripts.raw.links import read_link_json, read_link_table, write_link_json
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom


def test_batches_are_chunks_of_the_sorted_study_ids():
    batches = assign_batches(["c", "a", "e", "b", "d"], 2)
    assert list(batches.values()) == [("a", "b"), ("c", "d"), ("e",)]
    assert [batch.split("-")[0] for batch in batches] == ["00000", "00001", "00002"]


@given(
    st.sets(st.text("ABCDEFG0123456789", min_size=1, max_size=6), min_size=1, max_size=60),
    st.integers(1, 70),
    st.randoms(),
)
def test_every_study_is_in_exactly_one_batch_whatever_the_input_order(ids, size, random):
    shuffled = list(ids)
    random.shuffle(shuffled)
    batches = assign_batches(shuffled, size)
    assert batches == assign_batches(sorted(ids), size)
    members = [study for batch in batches.values() for study in batch]
    assert sorted(members) == sorted(ids) and len(members) == len(ids)
    assert all(len(batch) == size for batch in list(batches.values())[:-1])
    assert 1 <= len(list(batches.values())[-1]) <= size
    assert all(re.fullmatch(BATCH_ID_PATTERN, batch) for batch in batches)


def test_batch_ids_change_when_membership_does():
    before = assign_batches(["a", "b", "c", "d"], 2)
    after = assign_batches(["a", "b", "bb", "c", "d"], 2)
    # the first batch keeps its members and id; the others have new members and new ids
    first, *rest_before = before
    first_after, *rest_after = after
    assert first == first_after
    assert not set(rest_before) & set(rest_after)
    assert set(assign_batches(["a", "b", "c", "d"], 3)).isdisjoint(before)


def test_studies_per_job_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        assign_batches(["a"], 0)


@pytest.fixture
def raw(tmp_path) -> Path:
    return write_phantom(tmp_path / "raw", PhantomSpec.with_defaults(studies=5, slices=6, size=32))


def _plan(raw: Path, tmp_path: Path, **overrides):
    return plan_build(default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"), **overrides))


def test_reordering_link_csv_lines_changes_no_job_parameter(raw, tmp_path):
    before = _plan(raw, tmp_path, studies_per_job=2)
    lines = (raw / "link.csv").read_text().splitlines()
    (raw / "link.csv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    after = _plan(raw, tmp_path, studies_per_job=2)
    assert [link.patient_id for link in after.links] != [
        link.patient_id for link in before.links
    ]  # the file order did change
    assert after.batches == before.batches
    for batch in before.batches:
        assert after.batch_studies(batch) == before.batch_studies(batch)
        assert after.batch_fingerprint(batch) == before.batch_fingerprint(batch)


def test_the_recorded_link_table_does_not_depend_on_line_order(raw, tmp_path):
    links = read_link_table(raw / "link.csv")
    write_link_json(links, tmp_path / "a.json")
    write_link_json(list(reversed(links)), tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    recorded = read_link_json(tmp_path / "a.json")
    assert [(link.patient_id, link.original_id) for link in recorded] == sorted(
        (link.patient_id, link.original_id) for link in links
    )
    assert all(link.line is None for link in recorded)


def test_a_changed_file_changes_only_its_batch_fingerprint(raw, tmp_path):
    plan = _plan(raw, tmp_path, studies_per_job=2)
    before = {batch: plan.batch_fingerprint(batch) for batch in plan.batches}
    contour = next((raw / "contourfiles" / "PH-HF-3" / "i-contours").iterdir())
    contour.write_text(contour.read_text() + "\n")
    plan = _plan(raw, tmp_path, studies_per_job=2)
    changed = [batch for batch in plan.batches if plan.batch_fingerprint(batch) != before[batch]]
    assert changed == [batch for batch, members in plan.batches.items() if "PHANTOM0003" in members]


def test_studies_per_job_is_neither_identity_nor_recorded():
    config = default_config(studies_per_job=7)
    assert "studies_per_job" not in build_config(config, phantom=True)
    assert "studies_per_job" not in recorded_config(config)
    assert recorded_config(config) == recorded_config(default_config(studies_per_job=1))
    assert build_config(config, True) == build_config(default_config(studies_per_job=1), True)
