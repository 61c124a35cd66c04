"""``python -m loader``: look at, check and list built datasets.

Commands (exit codes: 0 ok, 1 problems found, 2 not a finished dataset or bad usage):

- ``info DIR``: samples, studies, splits, slice shapes, dtypes, mask coverage.
- ``peek DIR [--epochs 2] [--batch-size 8] [--seed 0] [--split S] ...``: the sample indices
  (rows of index.parquet) of each batch of each epoch, as the BatchLoader would serve them.
- ``verify DIR [--full]``: compare the files with the manifest (sizes; sha256 with ``--full``)
  and check the index; prints every problem, or that all is well.
- ``versions OUT_DIR``: the finished versions (subfolders with a manifest), with their sample
  counts and build times.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from loader.batch_loader import BatchLoader
from loader.index import DatasetIndex
from loader.index_columns import INDEX_NAME, DatasetIndexError
from loader.manifest import (
    MANIFEST_NAME,
    DatasetNotFinishedError,
    DatasetVerificationError,
    read_manifest,
    verify_dataset,
)
from loader.sample_file import SampleFileError, read_sample

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
_DATASET_PARTS = (INDEX_NAME, "slices", "pairs", "qc", "validation.parquet")


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (DatasetVerificationError, DatasetIndexError, SampleFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except (FileNotFoundError, ValueError, TypeError) as exc:
        # no manifest (DatasetNotFinishedError), no such folder, or an option value refused
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loader",
        description="Look at, check and list built datasets.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="what a dataset version holds")
    info.add_argument("dataset", type=Path, metavar="DIR", help="the version folder")
    info.set_defaults(run=_info)

    peek = commands.add_parser("peek", help="sample indices of each batch, per epoch")
    peek.add_argument("dataset", type=Path, metavar="DIR", help="the version folder")
    peek.add_argument("--epochs", type=int, default=2, help="epochs to show (default 2)")
    peek.add_argument("--first-epoch", type=int, default=0, help="first epoch shown (default 0)")
    peek.add_argument("--batch-size", type=int, default=8, help="default 8")
    peek.add_argument("--seed", type=int, default=0, help="default 0")
    peek.add_argument("--split", default=None, help="train, val or test (default: all samples)")
    peek.add_argument("--no-shuffle", action="store_true", help="index order")
    peek.add_argument("--drop-last", action="store_true", help="leave out short batches")
    peek.add_argument("--rank", type=int, default=0, help="default 0")
    peek.add_argument("--world-size", type=int, default=1, help="default 1")
    peek.set_defaults(run=_peek)

    verify = commands.add_parser("verify", help="check a dataset against its manifest")
    verify.add_argument("dataset", type=Path, metavar="DIR", help="the version folder")
    verify.add_argument("--full", action="store_true", help="also compare sha256 (reads all)")
    verify.set_defaults(run=_verify)

    versions = commands.add_parser("versions", help="list the finished versions in OUT_DIR")
    versions.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="e.g. results")
    versions.set_defaults(run=_versions)
    return parser


def _info(args: argparse.Namespace) -> int:
    index = DatasetIndex(args.dataset, verify="none")
    manifest = index.manifest
    rows = index.rows()
    print(f"dataset    {index.root}")
    print(f"version    {index.version} (built {manifest.get('built_at', 'unknown')})")
    print(f"samples    {len(index)} from {len(set(index.study_id.tolist()))} studies")
    for split, count in sorted(index.split_counts().items()):
        studies = len(set(index.study_id[index.split == split].tolist()))
        print(f"  {split:8} {count} samples from {studies} studies")
    shapes = ", ".join(f"{h}x{w} ({n})" for (h, w), n in index.shapes(rows).most_common())
    print(f"shapes     {shapes or 'none'}")
    dtypes = ", ".join(f"{name} ({n})" for name, n in index.dtypes(rows).most_common())
    print(f"dtypes     images {dtypes or 'none'}; masks bool")
    coverage = _mask_coverage(index)
    if len(coverage):
        print(
            "masks      coverage (mask pixels / slice pixels): "
            f"mean {coverage.mean():.2%}, min {coverage.min():.2%}, max {coverage.max():.2%}, "
            f"{int((coverage == 0).sum())} empty"
        )
    if index.has_omask is not None:
        print(f"omasks     {int(index.has_omask.sum())} samples also have an o-contour mask")
    problems = manifest.get("counts", {}).get("problems", {})
    if problems:
        listed = ", ".join(f"{code} ({n})" for code, n in sorted(problems.items()))
        print(f"problems   {sum(problems.values())} in validation.parquet: {listed}")
    return EXIT_OK


def _mask_coverage(index: DatasetIndex) -> np.ndarray:
    """Share of each slice inside its mask, from the index's mask_pixels (or the files)."""
    if index.mask_pixels is not None:
        pixels = index.mask_pixels
    else:
        pixels = np.array(
            [int(read_sample(index.path(r))["mask"].sum()) for r in range(len(index))]
        )
    return pixels / (index.height * index.width)


def _peek(args: argparse.Namespace) -> int:
    if args.epochs < 1 or args.first_epoch < 0:
        print("error: --epochs must be >= 1 and --first-epoch >= 0", file=sys.stderr)
        return EXIT_USAGE
    batches = BatchLoader(
        args.dataset,
        batch_size=args.batch_size,
        shuffle=not args.no_shuffle,
        seed=args.seed,
        drop_last=args.drop_last,
        rank=args.rank,
        world_size=args.world_size,
        split=args.split,
        verify="none",
    )
    print(f"{batches}: {len(batches)} batches per epoch")
    for epoch in range(args.first_epoch, args.first_epoch + args.epochs):
        print(f"epoch {epoch}")
        for number, rows in enumerate(batches.sample_indices(epoch)):
            print(f"  batch {number}: {' '.join(str(r) for r in rows.tolist())}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    root = args.dataset
    if not root.is_dir():
        print(f"error: {root}: no such folder", file=sys.stderr)
        return EXIT_USAGE
    manifest = read_manifest(root)  # DatasetNotFinishedError -> exit 2 in main()
    problems = verify_dataset(root, full=args.full)
    if not any(p.startswith(f"{INDEX_NAME}:") for p in problems):
        try:
            index = DatasetIndex(root, verify="none")
        except DatasetIndexError as exc:
            problems.append(str(exc))
        else:
            problems += index.unlisted_files()
    kind = "sizes and sha256" if args.full else "sizes"
    if problems:
        for problem in problems:
            print(problem)
        print(f"{root}: {len(problems)} problem(s) ({kind} checked)")
        return EXIT_PROBLEMS
    print(
        f"{root}: ok, version {manifest.get('version')}: "
        f"{len(manifest.get('outputs', {}))} files match the manifest ({kind} checked)"
    )
    return EXIT_OK


def _versions(args: argparse.Namespace) -> int:
    out_dir = args.out_dir
    if not out_dir.is_dir():
        print(f"error: {out_dir}: no such folder", file=sys.stderr)
        return EXIT_USAGE
    finished, unfinished = [], []
    for folder in sorted(p for p in out_dir.iterdir() if p.is_dir()):
        try:
            manifest = read_manifest(folder)
        except DatasetNotFinishedError:
            if any((folder / name).exists() for name in _DATASET_PARTS):  # a partial build
                unfinished.append(f"{folder.name} (no {MANIFEST_NAME}: not finished)")
            continue  # other folders (logs, work files) are not dataset versions
        except (ValueError, OSError) as exc:  # json.JSONDecodeError is a ValueError
            unfinished.append(f"{folder.name} (unreadable {MANIFEST_NAME}: {exc})")
            continue
        counts = manifest.get("counts", {})
        finished.append(
            (
                str(manifest.get("built_at", "")),
                str(manifest.get("version", folder.name)),
                folder.name,
                counts.get("samples", "?"),
                counts.get("studies", "?"),
            )
        )
    if finished:
        print(f"{'version':12} {'built_at':26} {'samples':>8} {'studies':>8}  folder")
        for built_at, version, name, samples, studies in sorted(finished):
            print(f"{version:12} {built_at or '?':26} {samples!s:>8} {studies!s:>8}  {name}")
    else:
        print(f"{out_dir}: no finished dataset versions")
    for line in unfinished:
        print(f"ignored: {line}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
