from collections import Counter

import pytest

from workflow_scripts.dataset.splits import assign_split, split_position

FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def test_assignment_is_stable_when_studies_are_added():
    before = {f"S{n}": assign_split(f"S{n}", FRACTIONS, 0) for n in range(100)}
    after = {f"S{n}": assign_split(f"S{n}", FRACTIONS, 0) for n in range(1000)}
    assert all(after[study] == split for study, split in before.items())


def test_fractions_are_respected_over_many_studies():
    counts = Counter(assign_split(f"STUDY{n:05d}", FRACTIONS, 0) for n in range(20000))
    assert counts["train"] / 20000 == pytest.approx(0.8, abs=0.01)
    assert counts["val"] / 20000 == pytest.approx(0.1, abs=0.01)
    assert counts["test"] / 20000 == pytest.approx(0.1, abs=0.01)


def test_seed_changes_the_assignment():
    studies = [f"S{n}" for n in range(200)]
    assert [assign_split(s, FRACTIONS, 0) for s in studies] != [
        assign_split(s, FRACTIONS, 1) for s in studies
    ]


def test_position_is_the_documented_hash():
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"0:SCD0000101").digest()[:8], "big") / 2**64
    assert split_position("SCD0000101", 0) == expected


def test_empty_split_never_receives_studies():
    fractions = {"train": 0.7, "val": 0.3, "test": 0.0}
    assert {assign_split(f"S{n}", fractions, 3) for n in range(2000)} == {"train", "val"}
