"""Patient-level train/val/test assignment.

A study's split is a pure function of (seed, study id): the id is hashed to a number u uniform in
[0, 1), and u falls into one of the consecutive intervals [0, train), [train, train + val),
[train + val, 1). Adding or removing studies never moves another study, and all slices of a
study share its split, so no patient straddles train and validation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

__all__ = ["SPLITS", "assign_split", "split_position"]

SPLITS = ("train", "val", "test")


def split_position(study_id: str, seed: int) -> float:
    """The study's hash position u in [0, 1) (first 64 bits of sha256 of "seed:study_id")."""
    digest = hashlib.sha256(f"{seed}:{study_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(study_id: str, fractions: Mapping[str, float], seed: int) -> str:
    """Return "train", "val" or "test" for a study, given the fractions (summing to 1)."""
    position = split_position(study_id, seed)
    upper = 0.0
    for split in SPLITS:
        upper += fractions[split]
        if position < upper:
            return split
    # Rounding can leave the fractions' sum a hair below 1: the last non-empty split takes it.
    return next(split for split in reversed(SPLITS) if fractions[split] > 0)
