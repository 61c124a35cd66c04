"""Dataset versions with known masks and known volumes, for the evaluation tests.

``build_cine_version`` writes a finished version in the workflow's layout whose studies are
cines of ``positions`` x ``phases`` frames; samples (with i-contours) exist at the ED and ES
phases of every position, o-contours at ED. Every mask is a disc of a known radius, and the
index carries the cine columns of DESIGN.md (``position``, ``position_mm``, ``phase``,
``trigger_time``, ``cardiac_phase``); ``measures.parquet`` holds the manual volumes computed
here, by hand, from the disc pixel counts (the disc rule: sum of area x spacing).

``add_cine_columns`` gives a version the workflow built (today without cine columns) the same
columns and ``measures.parquet``, from a rule the caller gives (image number -> position,
phase), with ED/ES and volumes computed here from the manual contour polygons (shoelace), as the
cine branch of the workflow defines them. Both rewrite the manifest's entries of what they write.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loader.manifest import MANIFEST_TABLES, manifest_files, read_manifest
from loader.sample_file import encode_sample

DENSITY = 1.05


def workflow_build_helpers():
    """tests/workflow's build_helpers (building versions with the workflow's own functions)."""
    folder = str(Path(__file__).resolve().parent.parent / "workflow")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("build_helpers")


def disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    """Pixels whose centre lies within ``radius`` pixels of ``centre`` (row, col)."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius**2


@dataclass
class CineVersion:
    root: Path
    phases: int
    positions: int
    ed_phase: int
    es_phase: int
    spacing_between: float
    #: (study_id, slice) -> {"mask": ..., "omask": ...} as stored
    masks: dict[tuple[str, int], dict[str, np.ndarray]] = field(default_factory=dict)
    index: pd.DataFrame | None = None
    measures: pd.DataFrame | None = None


def build_cine_version(
    out_dir: Path,
    studies: int = 3,
    positions: int = 4,
    phases: int = 20,
    ed_phase: int = 19,
    es_phase: int = 7,
    shape: tuple[int, int] = (64, 64),
    pixel_spacing: tuple[float, float] = (1.25, 1.25),
    spacing_between: float = 8.0,
    version: str = "1.0.0",
    splits: tuple[str, ...] = ("train", "val", "test"),
    cine_columns: bool = True,
    radii: tuple[float, float, float] = (16, 11, 2),
    seed: int = 0,
) -> CineVersion:
    """A version of ``studies`` cine studies; with ``radii`` = (ED, ES, step), the disc radius
    at position ``p`` is ``ED - step * p`` pixels at ED and ``ES - step * p`` at ES, the
    o-contour (ED) 4 pixels more, centred near the middle."""
    root = Path(out_dir) / version
    root.mkdir(parents=True)
    built = CineVersion(root, phases, positions, ed_phase, es_phase, spacing_between)
    rng = np.random.default_rng(seed)
    rows, measures = [], []
    pixel_area = pixel_spacing[0] * pixel_spacing[1]
    for s in range(studies):
        study = f"SCD{s + 1:07d}"
        centre = (shape[0] / 2 + 0.3 * s, shape[1] / 2 - 0.2 * s)
        volumes = {"ed": 0.0, "es": 0.0, "o": 0.0, "i_at_o": 0.0}
        for p in range(positions):
            ed_radius, es_radius, step = radii
            for phase, radius in (
                (ed_phase, ed_radius - step * p),
                (es_phase, es_radius - step * p),
            ):
                number = p * phases + phase + 1
                mask = disc(shape, centre, radius)
                arrays = {"mask": mask}
                image = rng.normal(100, 20, size=shape)
                if phase == ed_phase:
                    omask = disc(shape, centre, radius + 4)
                    arrays["omask"] = omask
                    image[omask] += 300
                    volumes["o"] += omask.sum() * pixel_area
                    volumes["i_at_o"] += mask.sum() * pixel_area
                image[mask] += 600
                stored = {"image": image.astype(np.int16), **arrays}
                relpath = f"slices/{study}/{number:04d}.npz"
                (root / relpath).parent.mkdir(parents=True, exist_ok=True)
                (root / relpath).write_bytes(encode_sample(stored))
                built.masks[(study, number)] = arrays
                volumes["ed" if phase == ed_phase else "es"] += mask.sum() * pixel_area
                row = {
                    "version": version,
                    "study_id": study,
                    "original_id": f"SC-HF-I-{s + 1}",
                    "slice": number,
                    "npz": relpath,
                    "split": splits[s % len(splits)],
                    "height": shape[0],
                    "width": shape[1],
                    "image_dtype": "int16",
                    "has_omask": "omask" in arrays,
                    "mask_pixels": int(mask.sum()),
                    "flags": "",
                    "pixel_spacing_row": pixel_spacing[0],
                    "pixel_spacing_col": pixel_spacing[1],
                    "source_spacing_row": pixel_spacing[0],
                    "source_spacing_col": pixel_spacing[1],
                    "grid_origin_row": 0.0,
                    "grid_origin_col": 0.0,
                }
                if cine_columns:
                    row.update(
                        position=p,
                        position_mm=p * spacing_between,
                        phase=phase,
                        trigger_time=phase * 40.0,
                        cardiac_phase="ED" if phase == ed_phase else "ES",
                    )
                rows.append(row)
        edv = volumes["ed"] * spacing_between / 1000
        esv = volumes["es"] * spacing_between / 1000
        myocardium = (volumes["o"] - volumes["i_at_o"]) * spacing_between / 1000
        measures.append(
            {
                "study_id": study,
                "ed_phase": ed_phase,
                "es_phase": es_phase,
                "positions_used": list(range(positions)),
                "spacing_mm": spacing_between,
                "edv_ml": edv,
                "esv_ml": esv,
                "sv_ml": edv - esv,
                "ef_percent": 100 * (edv - esv) / edv,
                "myocardium_ml": myocardium,
                "lv_mass_g": myocardium * DENSITY,
            }
        )
        if cine_columns:
            frames = [{"position": p, "phase": t} for p in range(positions) for t in range(phases)]
            (root / "pairs").mkdir(exist_ok=True)
            pd.DataFrame(frames).to_parquet(root / "pairs" / f"{study}.parquet", index=False)
    built.index = pd.DataFrame(rows).sort_values(["study_id", "slice"]).reset_index(drop=True)
    _write_parquet(built.index, root / "index.parquet")
    if cine_columns:
        built.measures = pd.DataFrame(measures)
        _write_parquet(built.measures, root / "measures.parquet")
    write_manifest(root, version)
    return built


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name in ("slice", "height", "width"):
        if name in table.column_names:
            at = table.column_names.index(name)
            table = table.set_column(at, name, table.column(name).cast(pa.int32()))
    pq.write_table(table, path)


def write_manifest(root: Path, version: str, config: dict | None = None) -> None:
    """manifest.json listing every file under ``root`` with its digest (as the workflow's);
    an existing manifest keeps its other fields (and its format: a format-2 one is rewritten
    with its tables)."""
    path = root / "manifest.json"
    manifest = (
        {key: value for key, value in read_manifest(root).items() if key != "tables"}
        if path.is_file()
        else {
            "format": 1,
            "version": version,
            "built_at": "2026-01-01T00:00:00Z",
            "config": {"data_dir": "", "out_dir": str(root.parent), "version": version},
            "code": {},
            "software": {},
            "inputs": {},
            "counts": {},
        }
    )
    if config:
        manifest["config"].update(config)
    own = {"manifest.json", *MANIFEST_TABLES.values()}
    outputs = {}
    for file in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in own):
        data = file.read_bytes()
        outputs[file.relative_to(root).as_posix()] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
    manifest["outputs"] = outputs
    if manifest["format"] == 1:
        path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return
    manifest = {key: value for key, value in manifest.items() if key != "format"}
    for name, data in manifest_files(manifest):
        (root / name).write_bytes(data)


def shoelace(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def read_points(path: Path) -> np.ndarray:
    return np.loadtxt(path, ndmin=2)


def add_cine_columns(
    root: Path,
    data_dir: Path,
    place: Callable[[int], tuple[int, int]],
    spacing_mm: Callable[[pd.DataFrame], float],
) -> pd.DataFrame:
    """Give a built version the cine columns and ``measures.parquet``.

    Args:
        root: the version folder.
        data_dir: the raw folder (for the manual contour polygons, index columns
            ``icontour``/``ocontour``).
        place: image number -> (position, phase).
        spacing_mm: a study's index rows -> spacing between positions, mm.

    Returns: measures (one row per study with two contoured phases).
    """
    index = pd.read_parquet(root / "index.parquet")
    placed = [place(int(n)) for n in index["slice"]]
    index["position"] = [p for p, _ in placed]
    index["phase"] = [t for _, t in placed]
    index["position_mm"] = np.nan
    index["trigger_time"] = np.nan
    index["cardiac_phase"] = ""
    measures = []
    for study, own in index.groupby("study_id", sort=True):
        pixel_area = own["source_spacing_row"] * own["source_spacing_col"]
        area = {
            (int(r.position), int(r.phase)): shoelace(read_points(data_dir / r.icontour)) * a
            for r, a in zip(own.itertuples(), pixel_area, strict=True)
        }
        phases = sorted({t for _, t in area})
        if len(phases) != 2:
            continue
        both = sorted(
            {p for p, t in area if t == phases[0]} & {p for p, t in area if t == phases[1]}
        )
        sums = {t: sum(area[(p, t)] for p in both) for t in phases}
        ed, es = max(phases, key=sums.get), min(phases, key=sums.get)
        index.loc[(index["study_id"] == study) & (index["phase"] == ed), "cardiac_phase"] = "ED"
        index.loc[(index["study_id"] == study) & (index["phase"] == es), "cardiac_phase"] = "ES"
        spacing = spacing_mm(own)
        index.loc[index["study_id"] == study, "position_mm"] = own["position"] * spacing
        edv, esv = sums[ed] * spacing / 1000, sums[es] * spacing / 1000
        walls = [r for r in own.itertuples() if int(r.phase) == ed and r.has_omask and r.ocontour]
        myocardium = None
        if walls:
            outer = sum(
                shoelace(read_points(data_dir / r.ocontour))
                * r.source_spacing_row
                * r.source_spacing_col
                for r in walls
            )
            inner = sum(area[(int(r.position), ed)] for r in walls)
            myocardium = (outer - inner) * spacing / 1000
        measures.append(
            {
                "study_id": study,
                "ed_phase": ed,
                "es_phase": es,
                "positions_used": both,
                "spacing_mm": spacing,
                "edv_ml": edv,
                "esv_ml": esv,
                "sv_ml": edv - esv,
                "ef_percent": 100 * (edv - esv) / edv,
                "myocardium_ml": myocardium,
                "lv_mass_g": None if myocardium is None else myocardium * DENSITY,
            }
        )
    pq.write_table(pa.Table.from_pandas(index, preserve_index=False), root / "index.parquet")
    for pairs_path in sorted((root / "pairs").glob("*.parquet")):
        pairs = pd.read_parquet(pairs_path)
        placed = [place(int(n)) for n in pairs["slice"]]
        pairs["position"] = [p for p, _ in placed]
        pairs["phase"] = [t for _, t in placed]
        pq.write_table(pa.Table.from_pandas(pairs, preserve_index=False), pairs_path)
    frame = pd.DataFrame(measures)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), root / "measures.parquet")
    write_manifest(root, "")
    return frame
