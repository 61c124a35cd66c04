"""A study's whole cine from a version built with ``frames: all``: :func:`load_cine`.

Such a version holds ``cines/{study_id}.npy``, every frame of the study as (P, T, H, W)
(positions x phases x rows x columns, in the stored dtype, zeros where a frame is missing), and
``frames.parquet``, one row per (study, position, phase) saying what each frame is
(``docs/frames.md``). The cine is a plain ``.npy``: it is memory-mapped by default, so opening a
study reads only its header, and a frame is read from disk when it is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from loader.manifest import read_manifest

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FRAMES_NAME", "CineError", "load_cine"]

FRAMES_NAME = "frames.parquet"


class CineError(ValueError):
    """A cine cannot be given: the version has none (built with ``frames: labelled``), the
    study is unknown or has no cine, or its file is missing or corrupt (the message names it)."""


def load_cine(
    version: str | Path, study_id: str, mmap: bool = True
) -> tuple[np.ndarray, pd.DataFrame]:
    """The study's cine and its frames table.

    Args:
        version: the version folder, ``{out_dir}/{version}`` (finished: it has a manifest).
        study_id: the study (``study_id`` of the index, e.g. ``SCD0000101``).
        mmap: memory-map the array read-only (default); False reads it into memory.

    Returns:
        ``images``: (P, T, H, W) array, ``images[position, phase]`` the frame's image as a
        sample's ``image`` holds it (on the resample grid when the version has one), zeros where
        the frame is missing; ``frames``: the study's rows of ``frames.parquet``, one per
        (position, phase) in that order (``present``, ``slice``, ``dicom``, ``trigger_time``,
        ``cardiac_phase``, ``index_row`` where the frame is a sample, geometry).

    Raises:
        DatasetNotFinishedError: the folder has no manifest.
        CineError: the version was built with ``frames: labelled``, the study is unknown to it
            or has no cine, or its cine file is missing, not listed in the manifest, of another
            size than recorded, or not a (P, T, H, W) array matching its frames table.
    """
    import pyarrow.parquet as pq  # deferred: importing the loader imports no pandas/pyarrow

    root = Path(version)
    manifest = read_manifest(root)
    frames_setting = manifest.get("build_config", {}).get("frames", "labelled")
    outputs = manifest.get("outputs", {})
    if frames_setting != "all" or FRAMES_NAME not in outputs:
        raise CineError(
            f"{root} was built with frames: labelled: it stores the labelled samples only, no "
            "cines. Build a version with every frame: snakemake --cores N --config "
            f"from_version={manifest.get('version', root.name)} version=NEW frames=all"
        )
    table = pq.read_table(root / FRAMES_NAME, filters=[("study_id", "==", study_id)])
    frames = table.to_pandas().sort_values(["position", "phase"], ignore_index=True)
    if frames.empty:
        if f"pairs/{study_id}.parquet" in outputs:
            raise CineError(
                f"{study_id} has no cine in {root}: none of its DICOMs has a slice position and "
                "phase (validation.parquet says why)"
            )
        studies = sorted(
            {
                path.split("/")[1][: -len(".parquet")]
                for path in outputs
                if path.startswith("pairs/")
            }
        )
        shown = ", ".join(studies[:5]) + (", ..." if len(studies) > 5 else "")
        raise CineError(f"unknown study {study_id!r} in {root} (its studies: {shown})")
    relpath = str(frames["cine"].iloc[0])
    path = root / relpath
    recorded = outputs.get(relpath)
    if recorded is None:
        raise CineError(f"{path}: not listed in the manifest of {root}")
    if not path.is_file():
        raise CineError(f"{path}: the cine file is missing (the version was changed by hand?)")
    if path.stat().st_size != recorded["size"]:
        raise CineError(
            f"{path}: {path.stat().st_size} bytes, the manifest recorded {recorded['size']}: "
            "the file was changed or truncated"
        )
    try:
        images = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise CineError(f"{path}: not a readable .npy file ({error})") from None
    positions, phases = int(frames["position"].max()) + 1, int(frames["phase"].max()) + 1
    if images.ndim != 4 or images.shape[:2] != (positions, phases):
        raise CineError(
            f"{path}: shape {images.shape}, its frames table says ({positions}, {phases}, H, W)"
        )
    return images, frames
