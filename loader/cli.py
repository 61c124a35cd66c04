"""``python -m loader``: look at, check and list built datasets.

Commands:

- ``info DIR``: samples, studies, splits, o-contours, slice shapes, dtypes, pixel spacings, mask
  coverage, problem flags.
- ``peek DIR [--epochs 2] [--batch-size 8] [--seed 0] [--split S[,S]] [--studies ID[,ID]]
  [--exclude-flags CODE[,CODE]] [--targets T[,T]] ...``: the sample indices (rows of
  index.parquet) of each batch of each epoch, as the BatchLoader would serve them.
- ``verify DIR [--full]``: compare the files with the manifest (sizes; sha256 with ``--full``)
  and check the index; prints every problem, or that all is well.
- ``versions OUT_DIR``: the finished versions (subfolders with a manifest), with their sample
  counts and build times.

``DIR`` is a version folder (``OUT_DIR/1.0.0``); given a folder of versions instead, the
commands list the versions in it and say which to pass.

Exit codes: 0 ok; 1 problems found in a dataset; 2 not a finished dataset (or not the kind of
folder the command takes: a folder of versions for ``info``/``peek``/``verify``, a version
folder or a folder without finished versions for ``versions``) or bad usage; 141 (128 +
SIGPIPE, as Unix tools) when the reader of the output closed it early (``| head``), quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from loader.batch_loader import BatchLoader
from loader.index import DatasetIndex, counted
from loader.index_columns import INDEX_NAME, DatasetIndexError
from loader.manifest import (
    MANIFEST_NAME,
    DatasetVerificationError,
    finished_versions,
    read_manifest,
    verify_dataset,
)
from loader.sample_file import SampleFileError, read_sample

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_BROKEN_PIPE = 0, 1, 2, 141


class _WrongFolder(Exception):
    """The folder given is not the kind the command takes; the message says what to pass."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit where it cannot be handled
        return code
    except BrokenPipeError:
        # The reader went away (``peek ... | head``): stop quietly, as Unix tools do. Point
        # stdout at /dev/null so that Python's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (DatasetVerificationError, DatasetIndexError, SampleFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except (_WrongFolder, FileNotFoundError, ValueError, TypeError) as exc:
        # a folder of the wrong kind, no manifest (DatasetNotFinishedError), no such folder, or
        # an option value refused
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _names(text: str) -> list[str]:
    """A comma-separated option value as a list of names."""
    return [name.strip() for name in text.split(",") if name.strip()]


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
    peek.add_argument("--split", type=_names, help="split(s), e.g. train or train,val")
    peek.add_argument("--studies", type=_names, help="study ids, comma-separated")
    peek.add_argument("--exclude-flags", type=_names, help="problem codes, comma-separated")
    peek.add_argument(
        "--targets",
        type=_names,
        default=["mask"],
        help="mask (default), omask, labels or a list: omask and labels select the samples "
        "with an o-contour",
    )
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
    _check_version_folder(args.dataset, "info")
    index = DatasetIndex(args.dataset, verify="none")
    manifest = index.manifest
    rows = index.rows()
    print(f"dataset    {index.root}")
    print(f"version    {index.version} (built {manifest.get('built_at', 'unknown')})")
    print(f"samples    {len(index)} from {_studies(index.study_id)}")
    for split, count in sorted(index.split_counts().items()):
        in_split = index.split == split
        line = f"  {split:8} {counted(count, 'sample')} from {_studies(index.study_id[in_split])}"
        if index.has_omask is not None:
            line += f", {int(index.has_omask[in_split].sum())} with an o-contour"
        print(line)
    if index.has_omask is not None:
        with_omask = int(index.has_omask.sum())
        print(
            f"omasks     {with_omask} of {counted(len(index), 'sample')} "
            f"{'has' if with_omask == 1 else 'have'} an o-contour: targets 'omask' and 'labels' "
            "serve these"
        )
    shapes = ", ".join(f"{h}x{w} ({n})" for (h, w), n in index.shapes(rows).most_common())
    print(f"shapes     {shapes or 'none'}")
    dtypes = ", ".join(f"{name} ({n})" for name, n in index.dtypes(rows).most_common())
    print(f"dtypes     images {dtypes or 'none'}; masks bool")
    spacings = index.spacings(rows)
    unknown = spacings.pop(None, 0)
    listed = [f"{row!r}x{col!r} mm ({n})" for (row, col), n in spacings.most_common()]
    listed += [f"unknown ({unknown})"] if unknown else []
    print(f"spacing    {', '.join(listed)}")
    coverage = _mask_coverage(index)
    if len(coverage):
        print(
            "masks      coverage (mask pixels / slice pixels): "
            f"mean {coverage.mean():.2%}, min {coverage.min():.2%}, max {coverage.max():.2%}, "
            f"{int((coverage == 0).sum())} empty"
        )
    if index.flags is not None:
        codes = [code for text in index.flags.tolist() for code in text.split(",") if code]
        found = sorted({code: codes.count(code) for code in codes}.items())
        flagged = sum(1 for text in index.flags.tolist() if text)
        listed = ", ".join(f"{code} ({n})" for code, n in found)
        print(f"flags      {counted(flagged, 'sample')} flagged{': ' + listed if listed else ''}")
    problems = manifest.get("counts", {}).get("problems", {})
    if problems:
        listed = ", ".join(f"{code} ({n})" for code, n in sorted(problems.items()))
        print(f"problems   {sum(problems.values())} in validation.parquet: {listed}")
    return EXIT_OK


def _studies(study_ids: np.ndarray) -> str:
    return counted(len(set(study_ids.tolist())), "study", "studies")


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
    _check_version_folder(args.dataset, "peek")
    split = args.split[0] if args.split and len(args.split) == 1 else args.split
    batches = BatchLoader(
        args.dataset,
        batch_size=args.batch_size,
        shuffle=not args.no_shuffle,
        seed=args.seed,
        drop_last=args.drop_last,
        rank=args.rank,
        world_size=args.world_size,
        split=split,
        studies=args.studies,
        exclude_flags=args.exclude_flags,
        targets=args.targets,
        verify="none",
    )
    print(f"{batches}: {counted(len(batches), 'batch', 'batches')} per epoch")
    for epoch in range(args.first_epoch, args.first_epoch + args.epochs):
        print(f"epoch {epoch}")
        for number, rows in enumerate(batches.sample_indices(epoch)):
            print(f"  batch {number}: {' '.join(str(r) for r in rows.tolist())}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    root = args.dataset
    _check_version_folder(root, "verify")
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
        print(f"{root}: {counted(len(problems), 'problem')} ({kind} checked)")
        return EXIT_PROBLEMS
    files = len(manifest.get("outputs", {}))
    print(
        f"{root}: ok, version {manifest.get('version')}: {counted(files, 'file')} "
        f"{'matches' if files == 1 else 'match'} the manifest ({kind} checked)"
    )
    return EXIT_OK


def _versions(args: argparse.Namespace) -> int:
    out_dir = args.out_dir
    if not out_dir.is_dir():
        raise _WrongFolder(f"{out_dir}: no such folder")
    if (out_dir / MANIFEST_NAME).is_file():
        version = read_manifest(out_dir).get("version", out_dir.name)
        raise _WrongFolder(
            f"{out_dir} is a dataset version folder (version {version}), not a folder of "
            f"versions; pass its parent: python -m loader versions {out_dir.parent}"
        )
    finished, unfinished = finished_versions(out_dir)
    if finished:
        print(f"{'version':12} {'built_at':26} {'samples':>8} {'studies':>8}  folder")
        for built_at, version, name, samples, studies in finished:
            print(f"{version:12} {built_at or '?':26} {samples!s:>8} {studies!s:>8}  {name}")
    else:
        print(f"{out_dir}: no finished dataset versions")
    for line in unfinished:
        print(f"ignored: {line}")
    return EXIT_OK if finished else EXIT_USAGE


def _check_version_folder(path: Path, command: str) -> None:
    """Refuse a folder of versions given where a version folder is expected, listing them."""
    if not path.is_dir() or (path / MANIFEST_NAME).is_file():
        return  # DatasetIndex and read_manifest say what is wrong with these
    finished, _ = finished_versions(path)
    if finished:
        names = ", ".join(name for _, _, name, _, _ in finished)
        latest = finished[-1][2]
        raise _WrongFolder(
            f"{path} is a folder of dataset versions, not a version: it holds "
            f"{counted(len(finished), 'finished version')} ({names}). Pass one of them, e.g. "
            f"python -m loader {command} {path / latest}"
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
