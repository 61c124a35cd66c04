"""``python -m loader``: look at, check and list built datasets.

Commands:

- ``info DIR``: samples, studies, splits, o-contours, slice shapes, dtypes, pixel spacings, mask
  coverage, problem flags.
- ``peek DIR [--epochs 2] [--batch-size 8] [--seed 0] [--split S[,S]] [--studies ID[,ID]]
  [--exclude-flags CODE[,CODE]] [--targets T[,T]] ...``: the sample indices (rows of
  index.parquet) of each batch of each epoch, as the BatchLoader would serve them.
- ``verify DIR [--full]``: compare the files with the manifest (sizes; sha256 with ``--full``)
  and check the index; prints every problem, or that all is well.
- ``export DIR --format nnunet|monai --out EXPORT_DIR [--dataset-id N] [--name NAME]
  [--labels auto|blood_pool|blood_pool_myocardium] [--folds 5] [--exclude-flags CODE[,CODE]]
  [--studies ID[,ID]]``: an nnU-Net v2 raw dataset with the version's patient-level folds, or
  a MONAI datalist (``docs/exports.md``).
- ``versions OUT_DIR``: the finished versions (subfolders with a manifest), with their sample
  counts and build times.
- ``evaluate DIR PREDICTIONS [--split S] [--out OUT] [--contours-out FOLDER] [--algorithm NAME]``:
  score a model's predictions against the version (:mod:`loader.evaluation`): prints the
  challenge's summary; ``--out`` writes contours.parquet, studies.parquet, summary.json and the
  evaluation page; ``--contours-out`` writes the predicted contours for the challenge's
  evaluator.

``DIR`` is a version folder (``OUT_DIR/1.0.0``); given a folder of versions instead, the
commands list the versions in it and say which to pass.

Exit codes: 0 ok; 1 problems found in a dataset (or in the predictions); 2 not a finished
dataset (or not the kind of folder the command takes: a folder of versions for
``info``/``peek``/``verify``/``evaluate``, a version folder or a folder without finished versions
for ``versions``) or bad usage; 141 (128 + SIGPIPE, as Unix tools) when the reader of the output
closed it early (``| head``), quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from loader.batch_loader import BatchLoader
from loader.export.cases import LABEL_POLICIES
from loader.index import DatasetIndex, counted
from loader.index_columns import INDEX_NAME, DatasetIndexError
from loader.manifest import (
    MANIFEST_NAME,
    DatasetVerificationError,
    finished_versions,
    manifest_table,
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

    export = commands.add_parser("export", help="an nnU-Net dataset or a MONAI datalist")
    export.add_argument("dataset", type=Path, metavar="DIR", help="the version folder")
    export.add_argument("--format", required=True, choices=("nnunet", "monai"))
    export.add_argument(
        "--out",
        type=Path,
        required=True,
        help="nnunet: the folder for nnUNet_raw/ and nnUNet_preprocessed/; monai: the folder "
        "for datalist.json",
    )
    export.add_argument("--dataset-id", type=int, default=501, help="nnunet: default 501")
    export.add_argument("--name", help="nnunet: default SunnybrookLV_v{version}")
    export.add_argument(
        "--labels",
        choices=LABEL_POLICIES,
        default="auto",
        help="auto (default): blood_pool_myocardium when the version has o-contours (slices "
        "with an i-contour only are left out), else blood_pool (every slice)",
    )
    export.add_argument(
        "--folds", type=int, default=5, help="nnunet: patient-level folds (default 5)"
    )
    export.add_argument("--exclude-flags", type=_names, help="problem codes, comma-separated")
    export.add_argument("--studies", type=_names, help="study ids, comma-separated")
    export.set_defaults(run=_export)

    versions = commands.add_parser("versions", help="list the finished versions in OUT_DIR")
    versions.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="e.g. results")
    versions.set_defaults(run=_versions)

    evaluate = commands.add_parser("evaluate", help="score a model's predictions")
    evaluate.add_argument("dataset", type=Path, metavar="DIR", help="the version folder")
    evaluate.add_argument(
        "predictions",
        type=Path,
        metavar="PREDICTIONS",
        help="folder of {study_id}/{slice:04d}.npz and/or {study_id}.npy predictions",
    )
    evaluate.add_argument("--split", help="score only this split's samples (e.g. test)")
    evaluate.add_argument(
        "--out",
        type=Path,
        metavar="OUT",
        help="write contours.parquet, studies.parquet, summary.json and evaluation.html here",
    )
    evaluate.add_argument(
        "--contours-out",
        type=Path,
        metavar="FOLDER",
        help="write the predicted contours as FOLDER/{original_id}/contours-auto/NAME/"
        "IM-0001-nnnn-icontour-auto.txt (the challenge evaluator's layout)",
    )
    evaluate.add_argument(
        "--algorithm",
        default="auto2",
        metavar="NAME",
        help="the contours-auto subfolder for --contours-out (default auto2, the folder "
        "eval.m reads as distributed)",
    )
    evaluate.set_defaults(run=_evaluate)
    return parser


def _evaluate(args: argparse.Namespace) -> int:
    from loader.evaluation.contour_files import ContourExport
    from loader.evaluation.page import write_page
    from loader.evaluation.predictions import PredictionError
    from loader.evaluation.report import format_summary
    from loader.evaluation.scoring import evaluate

    _check_version_folder(args.dataset, "evaluate")
    export = None
    if args.contours_out is not None:
        resample = read_manifest(args.dataset).get("config", {}).get("resample")
        export = ContourExport(args.contours_out, args.algorithm, resampled=bool(resample))
    try:
        evaluation = evaluate(args.dataset, args.predictions, args.split, on_contour=export)
    except PredictionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(format_summary(evaluation))
    if args.out is not None:
        written = evaluation.write(args.out)
        page = write_page(evaluation, args.out)
        print(f"wrote {', '.join(p.name for p in written)} and {page.name} in {args.out}")
    if export is not None:
        print(
            f"wrote {counted(export.written, 'contour file')} under {args.contours_out} "
            f"(contours-auto/{args.algorithm}); {export.empty} empty prediction(s) have none"
            + (
                f"; {export.several_parts} had several parts (largest kept)"
                if export.several_parts
                else ""
            )
        )
        if export.unmeasured:
            print(
                f"note: the challenge's evaluator (v1.0) would not measure "
                f"{counted(len(export.unmeasured), 'of these file', 'of these files')} "
                "(<= 15 points, or touching the image border)"
            )
    return EXIT_OK


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
    files = len(manifest_table(root, manifest, "outputs", ["path"]))
    print(
        f"{root}: ok, version {manifest.get('version')}: {counted(files, 'file')} "
        f"{'matches' if files == 1 else 'match'} the manifest ({kind} checked)"
    )
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from loader.export import export_monai, export_nnunet

    _check_version_folder(args.dataset, "export")
    selection_options = {
        "labels": args.labels,
        "exclude_flags": args.exclude_flags,
        "studies": args.studies,
    }
    if args.format == "monai":
        done = export_monai(args.dataset, args.out, **selection_options)
        _print_selection(done.selection)
        print(f"datalist   {done.datalist}")
        print(f"transforms loader.monai_transforms(labels={done.selection.labels!r})")
        return EXIT_OK
    try:
        done = export_nnunet(
            args.dataset,
            args.out,
            dataset_id=args.dataset_id,
            name=args.name,
            folds=args.folds,
            **selection_options,
        )
    except ImportError as exc:
        print(f"error: {exc}; pip install 'lv-dataset[interop]'", file=sys.stderr)
        return EXIT_USAGE
    _print_selection(done.selection)
    print(f"dataset    {done.dataset_dir}")
    print(f"splits     {done.splits_file}: {counted(len(done.folds), 'fold')}", end="")
    if done.version_fold is not None:
        print(f"; fold {done.version_fold} is the version's own train/val split")
    else:
        print("; the version has no train/val split of its own (one of them is empty)")
    if done.default_thickness:
        print(
            f"note       {counted(done.default_thickness, 'case')} without a usable "
            "SliceThickness: through-plane spacing 999 x the in-plane (nnU-Net's 2D convention)"
        )
    out = args.out.resolve()
    print("next       export nnUNet_raw=" + str(out / "nnUNet_raw"))
    print("           export nnUNet_preprocessed=" + str(out / "nnUNet_preprocessed"))
    print("           export nnUNet_results=" + str(out / "nnUNet_results"))
    print(
        f"           nnUNetv2_plan_and_preprocess -d {args.dataset_id} -c 2d "
        "--verify_dataset_integrity"
    )
    fold = done.version_fold if done.version_fold is not None else 0
    print(f"           nnUNetv2_train {args.dataset_id} 2d {fold}")
    return EXIT_OK


def _print_selection(selection) -> None:
    cases = selection.cases
    splits = ", ".join(
        f"{split} {sum(c.split == split for c in cases)}"
        for split in ("train", "val", "test")
        if any(c.split == split for c in cases)
    )
    print(f"labels     {selection.labels}: {', '.join(selection.label_names)}")
    print(
        f"cases      {len(cases)} ({splits}) from {_studies(np.array([c.study_id for c in cases]))}"
    )
    if selection.left_out:
        reasons = {}
        for left in selection.left_out:
            reasons[left.reason] = reasons.get(left.reason, 0) + 1
        listed = ", ".join(f"{reason} ({n})" for reason, n in sorted(reasons.items()))
        print(f"left out   {counted(len(selection.left_out), 'sample')}: {listed}")


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
