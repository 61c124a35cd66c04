"""A BatchLoader's saved position (``state_dict``): its format, the fingerprint that keeps a
state from being restored into a loader over other samples or with other settings, and the
checks a state passes before it is restored.

A state is plain JSON: ``{"format": 1, "epoch": e, "batches_served": b, "fingerprint": {...}}``.
The order of an epoch is a pure function of the settings (``loader.sampler``), so the epoch and
the batches served are the whole position.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from loader.index import DatasetIndex
from loader.sampler import EpochSampler

__all__ = ["fingerprint", "restored_position", "saved_state"]

STATE_FORMAT = 1
#: What a state saved before these fingerprint fields existed was saved with.
_FINGERPRINT_DEFAULTS = {"studies": None, "exclude_flags": None, "targets": ["mask"]}


def fingerprint(
    index: DatasetIndex,
    rows: np.ndarray,
    sampler: EpochSampler,
    split: str | Iterable[str] | None,
    studies: str | Iterable[str] | None,
    exclude_flags: str | Iterable[str] | None,
    targets: Sequence[str],
) -> dict[str, Any]:
    """What identifies a loader's sequence of batches: the dataset version, the selection (as
    asked for, and a digest of the samples it gave), the targets and the order settings."""
    splits = _sorted_names(split)
    return {
        "version": index.version,
        # one split as a string, as states saved before lists of splits were allowed have it
        "split": splits[0] if splits is not None and len(splits) == 1 else splits,
        "studies": _sorted_names(studies),
        "exclude_flags": _sorted_names(exclude_flags),
        "targets": list(targets),
        "samples": len(rows),
        "samples_digest": index.digest(rows),
        "shuffle": sampler.shuffle,
        "seed": sampler.seed,
        "batch_size": sampler.batch_size,
        "drop_last": sampler.drop_last,
        "rank": sampler.rank,
        "world_size": sampler.world_size,
    }


def saved_state(epoch: int, batches_served: int, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe state of a loader at (epoch, batches served)."""
    return {
        "format": STATE_FORMAT,
        "epoch": epoch,
        "batches_served": batches_served,
        "fingerprint": dict(fingerprint),
    }


def restored_position(
    state: Any, fingerprint: dict[str, Any], batches_per_epoch: int
) -> tuple[int, int]:
    """(epoch, batches served) of ``state``, checked against this loader's ``fingerprint``.

    Raises:
        ValueError: the state is malformed, or was saved by a loader with another fingerprint
            (the message names each difference).
    """
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"not a BatchLoader state (format {STATE_FORMAT}): {state!r}")
    saved = state.get("fingerprint")
    saved = {**_FINGERPRINT_DEFAULTS, **saved} if isinstance(saved, dict) else {}
    if saved != fingerprint:
        differences = [
            f"{key}: saved {saved.get(key)!r}, this loader {value!r}"
            for key, value in fingerprint.items()
            if saved.get(key) != value
        ]
        raise ValueError(
            "the state was saved by a loader over other samples or with other settings: "
            + "; ".join(differences)
        )
    epoch, served = state.get("epoch"), state.get("batches_served")
    if type(epoch) is not int or epoch < 0:
        raise ValueError(f"state epoch must be an integer >= 0, got {epoch!r}")
    if type(served) is not int or not 0 <= served < batches_per_epoch:
        raise ValueError(
            f"state batches_served must be an integer in [0, {batches_per_epoch}), got {served!r}"
        )
    return epoch, served


def _sorted_names(value: str | Iterable[str] | None) -> list[str] | None:
    """A selection option as it goes into the fingerprint: sorted distinct names, or None."""
    if value is None:
        return None
    return sorted({value} if isinstance(value, str) else set(value))
