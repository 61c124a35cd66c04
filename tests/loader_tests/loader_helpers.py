"""Small synthetic dataset versions in the on-disk layout the workflow writes, for loader tests.

``build_dataset`` writes ``slices/{study}/{slice:04d}.npz`` with
``loader.sample_file.encode_sample``, an ``index.parquet`` with the contract's columns (sorted by
study and slice), and a ``manifest.json`` in the workflow's format (written here with ``json`` and
``hashlib``, independently of the code that reads it). Images are random and distinct per
sample, and each mask is ``image > 0``, so a test can tell samples apart by content and check
that a transform hit image and mask alike.
The benchmark uses the same builder (imported by path).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loader.sample_file import encode_sample

SPLIT_CYCLE = ("train", "train", "val", "test")
#: The geometry columns of index.parquet and their Arrow types (the contract of DESIGN.md).
GEOMETRY_TYPES = {
    "pixel_spacing_row": pa.float64(),
    "pixel_spacing_col": pa.float64(),
    "slice_thickness": pa.float64(),
    "slice_location": pa.float64(),
    "image_position": pa.list_(pa.float64(), 3),
    "image_orientation": pa.list_(pa.float64(), 6),
}


@dataclass
class BuiltDataset:
    """What was written: the folder and, per row of index.parquet, the arrays and columns."""

    root: Path
    study_ids: list[str] = field(default_factory=list)
    slices: list[int] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    npz: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    #: The o-contour mask of each row, None where the sample has none.
    omasks: list[np.ndarray | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.npz)

    def rows_of_split(self, split: str) -> list[int]:
        return [row for row, s in enumerate(self.splits) if s == split]

    def rows_with_omask(self) -> list[int]:
        return [row for row, omask in enumerate(self.omasks) if omask is not None]

    def row_of(self, image: np.ndarray) -> int:
        """The row whose stored image equals ``image`` (by value)."""
        if not hasattr(self, "_lookup"):
            self._lookup = {im.astype(np.float64).tobytes(): r for r, im in enumerate(self.images)}
        return self._lookup[np.asarray(image, dtype=np.float64).tobytes()]


def build_dataset(
    out_dir: str | Path,
    study_sizes: Sequence[int] = (3, 4, 2, 5),
    *,
    version: str = "1.0.0",
    shape: tuple[int, int] = (8, 8),
    shapes: dict[int, tuple[int, int]] | None = None,
    splits: Sequence[str] | None = None,
    image_dtype: str = "int16",
    omask_every: int = 2,
    omask_rows: Collection[int] | None = None,
    nested: bool = True,
    flags: Mapping[int, str] | None = None,
    spacings: Sequence[tuple[float, float] | None] | None = None,
    seed: int = 0,
    keep_arrays: bool = True,
    manifest: bool = True,
    built_at: str = "2026-01-01T00:00:00Z",
) -> BuiltDataset:
    """Write a finished dataset version ``{out_dir}/{version}`` and describe it.

    Args:
        out_dir: parent folder of the version folder.
        study_sizes: slices per study; study ``i`` is ``SCD{i:07d}`` with slices numbered from 10.
        version: version folder name and manifest version.
        shape: (height, width) of every slice, unless ``shapes`` gives one for a study number.
        splits: split of each study; default cycles train, train, val, test.
        image_dtype: stored dtype of the images (``int16``, or ``float32`` as for rescaled DICOMs).
        omask_every: every n-th sample also gets an ``omask`` member (0: none).
        omask_rows: the rows that get an ``omask`` (overrides ``omask_every``).
        nested: the o-contour mask (``image > -500``) contains the mask (``image > 0``); False
            leaves the brightest pixels (``image > 800``) out of it, so that some mask pixels
            lie outside the o-contour, as where hand-drawn contours cross.
        flags: the ``flags`` text of rows (comma-separated codes); every other row has "".
        spacings: (row, col) pixel spacing in mm per study, None for unknown (null); writes the
            geometry columns (spacings, thickness 8 mm, location and position from the slice
            number, axial orientation). None (default) writes no geometry column, as the
            datasets built before the workflow recorded them.
        seed: seed of the random pixel values.
        keep_arrays: keep the written arrays in the result (turn off for big benchmark sets).
        manifest: write manifest.json (False leaves an unfinished version folder).
        built_at: the manifest's build time.
    """
    root = Path(out_dir) / version
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    built = BuiltDataset(root=root)
    names = [
        "version",
        "study_id",
        "original_id",
        "slice",
        "npz",
        "qc",
        "split",
        "height",
        "width",
        "image_dtype",
        "has_omask",
        "mask_pixels",
        "flags",
    ]
    if spacings is not None:
        names += [*GEOMETRY_TYPES]
    columns: dict[str, list] = {name: [] for name in names}
    row = 0
    for number, size in enumerate(study_sizes):
        study = f"SCD{number:07d}"
        split = splits[number] if splits is not None else SPLIT_CYCLE[number % len(SPLIT_CYCLE)]
        height, width = (shapes or {}).get(number, shape)
        for slice_number in range(10, 10 + size):
            image = rng.integers(-1000, 1000, size=(height, width)).astype(image_dtype)
            if image_dtype.startswith("float"):
                image += np.asarray(0.25, dtype=image_dtype)  # not representable as integers
            mask = image > 0
            arrays = {"image": image, "mask": mask}
            if omask_rows is not None:
                has_omask = row in omask_rows
            else:
                has_omask = bool(omask_every) and row % omask_every == 0
            omask = None
            if has_omask:
                omask = image > -500 if nested else (image > -500) & (image <= 800)
                arrays["omask"] = omask
            relpath = f"slices/{study}/{slice_number:04d}.npz"
            (root / relpath).parent.mkdir(parents=True, exist_ok=True)
            (root / relpath).write_bytes(encode_sample(arrays))
            values = {
                "version": version,
                "study_id": study,
                "original_id": f"SC-TEST-{number}",
                "slice": slice_number,
                "npz": relpath,
                "qc": f"qc/{study}/{slice_number:04d}.png",
                "split": split,
                "height": height,
                "width": width,
                "image_dtype": image_dtype,
                "has_omask": has_omask,
                "mask_pixels": int(mask.sum()),
                "flags": (flags or {}).get(row, ""),
            }
            if spacings is not None:
                spacing = spacings[number]
                values.update(
                    pixel_spacing_row=None if spacing is None else spacing[0],
                    pixel_spacing_col=None if spacing is None else spacing[1],
                    slice_thickness=8.0,
                    slice_location=10.0 * slice_number,
                    image_position=[-150.0, -140.0, 10.0 * slice_number],
                    image_orientation=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                )
            for name, value in values.items():
                columns[name].append(value)
            built.study_ids.append(study)
            built.slices.append(slice_number)
            built.splits.append(split)
            built.npz.append(relpath)
            built.flags.append(values["flags"])
            if keep_arrays:
                built.images.append(image)
                built.masks.append(mask)
                built.omasks.append(omask)
            row += 1
    write_index(root, columns)
    if manifest:
        write_test_manifest(root, version, built_at, studies=len(study_sizes), samples=row)
    return built


def write_index(root: Path, columns: dict[str, list]) -> None:
    """Write index.parquet with the contract's column types."""
    types = {
        "slice": pa.int32(),
        "height": pa.int32(),
        "width": pa.int32(),
        "has_omask": pa.bool_(),
        "mask_pixels": pa.int64(),
        **GEOMETRY_TYPES,
    }
    table = pa.table(
        {
            name: pa.array(values, type=types.get(name, pa.string()))
            for name, values in columns.items()
        }
    )
    pq.write_table(table, root / "index.parquet")


def write_test_manifest(
    root: Path, version: str, built_at: str, studies: int, samples: int
) -> None:
    """manifest.json listing every file under ``root`` (except itself) with its digest."""
    outputs = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relpath = path.relative_to(root).as_posix()
        if relpath == "manifest.json":
            continue
        data = path.read_bytes()
        outputs[relpath] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    manifest = {
        "format": 1,  # the manifest format the loader reads (loader.manifest.MANIFEST_FORMAT)
        "version": version,
        "built_at": built_at,
        "config": {"data_dir": "", "out_dir": str(root.parent), "version": version},
        "code": {"package_version": "0.1.0", "git_commit": None, "git_dirty": None},
        "software": {"numpy": np.__version__},
        "inputs": {},
        "outputs": outputs,
        "counts": {"studies": studies, "samples": samples, "problems": {}},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def datasets_by_size(tmp_path_factory) -> Callable[[int], BuiltDataset]:
    """Datasets of ``n`` samples (studies of 5 slices), each built on first use, for property
    tests that draw the size (the builder of a module-scoped fixture)."""
    made: dict[int, BuiltDataset] = {}

    def get(n: int) -> BuiltDataset:
        if n not in made:
            sizes = [5] * (n // 5) + ([n % 5] if n % 5 else [])
            made[n] = build_dataset(tmp_path_factory.mktemp(f"n{n}"), study_sizes=sizes)
        return made[n]

    return get


def dihedral(array: np.ndarray) -> list[np.ndarray]:
    """The 8 symmetries of a square array, written out independently of loader.augment: quarter
    turns counter-clockwise 0 to 3, then the same each flipped left-right."""
    turns = [array, array.T[::-1], array[::-1, ::-1], array.T[:, ::-1]]
    return turns + [t[:, ::-1] for t in turns]


def collect(batches, limit=None):
    """(images, masks) of a pass, as lists; stops after ``limit`` batches."""
    out = []
    if limit == 0:
        return out
    for batch in batches:
        out.append(batch)
        if len(out) == limit:
            break
    return out


def rows_served(built: BuiltDataset, batches) -> list[int]:
    """The row of each served image, identified by content (the stored images are all distinct)."""
    return [built.row_of(image) for images, *_ in batches for image in images]
