"""Which studies one job builds: batches, the workflow's unit of work.

Batches are consecutive chunks of ``studies_per_job`` studies in sorted study-id order, so the
same studies and setting always give the same batches, whatever the order of link.csv's lines.
A batch's id is its position and a digest of its members (``00003-1f2e3d4c``): any change of
membership (a study added or removed, another ``studies_per_job``) gives new ids, so a batch
record on disk always describes exactly the studies its name stands for, whatever rerun
triggers Snakemake is given.

How many studies go in a batch is a setting of how to run, not of what is built: every study's
files are the same whichever batch builds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["BATCH_ID_PATTERN", "assign_batches"]

#: The workflow's ``{batch}`` wildcard constraint.
BATCH_ID_PATTERN = r"[0-9]+-[0-9a-f]{8}"


def assign_batches(study_ids: Iterable[str], studies_per_job: int) -> dict[str, tuple[str, ...]]:
    """Batch id -> its study ids (sorted), for every study, in batch order.

    Args:
        study_ids: the studies of the build (unique; any order).
        studies_per_job: at most this many studies per batch (>= 1); every batch but the last
            has exactly this many.
    """
    if studies_per_job < 1:
        raise ValueError(f"studies_per_job must be at least 1, got {studies_per_job}")
    ordered = sorted(study_ids)
    batches = {}
    for position, start in enumerate(range(0, len(ordered), studies_per_job)):
        members = tuple(ordered[start : start + studies_per_job])
        digest = hashlib.sha256("\n".join(members).encode()).hexdigest()[:8]
        batches[f"{position:05d}-{digest}"] = members
    return batches
