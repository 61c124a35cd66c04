"""Throughput of the BatchLoader against two baselines measured in the same run.

Builds a synthetic dataset (256 x 256 int16 slices, bool masks and o-contour masks, so that the
mask and the labels rows read the same files) or takes one with ``--dataset``, then prints
samples/s for one shuffled epoch at batch size 8 for:

- the np.load baseline: ``np.load`` of every file in the epoch's random order plus ``np.stack``,
  in one thread (what a user writes first);
- the BatchLoader cold (``prefetch=0``), with prefetch, and its cached epochs (``cache=True``);
- the BatchLoader serving ``targets="labels"`` (made from mask and omask per sample) beside the
  same settings serving masks, over the same samples;
- the in-memory gather baseline: a fancy-index gather from arrays preloaded in memory, in the
  stored dtype and in the loader's output dtype (float32);
- ``torch.utils.data.DataLoader`` (0 and 2 workers, one intra-op thread) over the same files,
  when torch is installed;
- ``loader.torch_dataset`` in a ``DataLoader`` with 1 and with 2 worker processes, with a short
  training step per batch that releases the GIL (``--worker-step-ms``, shorter than a worker's
  time per batch, so that the workers are the bottleneck);
- the wall time of an epoch with a simulated training step that releases the GIL (as a
  framework's compute does), without and with prefetch: what prefetching hides;

all in the same run, as ratios to the np.load baseline. Rows are measured in interleaved rounds
(each row once per round, ``--rounds`` rounds). The machine is shared and noisy, and noise only
ever slows a run down, so the ratios use each row's best round (as ``timeit`` advises); the
median is printed beside it. The labels and workers ratios are also measured as ``--pairs``
back-to-back pairs of epochs (the two rows of a pair see the same load on the machine), whose
median ratio is steadier than a ratio of two best rounds. Files are read once before timing, so
every row sees a warm page cache.

Then it measures the peak RSS of a fresh process running one uncached epoch (prefetch on) on two
dataset sizes, to show that memory does not grow with the dataset.

Augmentation (``--augment-only`` runs just this part): plain and ``augment=True`` epochs, cached
and uncached (``prefetch=0``: the reading and transforming work itself), as ratios augmented /
plain measured in the same interleaved rounds and as back-to-back pairs, and the uncached pairs
again over ``--instances`` identical loaders of each kind, beside plain / plain of two identical
loaders (two identical loaders differ by up to ~10%: that spread is the noise floor of one
pair of loaders); with ``--before REV``
(e.g. ``5fe20e6``) the same rows for the loader of that git revision (``git archive`` into the
work folder, imported as ``loader_before``), so before and after share the run. ``--source real``
builds the data from copies of the real studies (``../shared/data/sunnybrook``) with the
workflow's own functions (``benchmarks/workflow_scale.py``: ``--real-studies`` copies, 18.5
samples each on average: 208 give 3,848 real 256x256 slices); the default is the synthetic set.

Run: ``python benchmarks/loader_benchmark.py`` (about two minutes; ``--help`` for options);
``python benchmarks/loader_benchmark.py --augment-only --source real --before 5fe20e6``.

One script of about 570 lines, longer than this project's modules: its rows must be timed in the
same interleaved rounds of one process (the loader before a change too, imported beside the
current one), and the peak-RSS child runs this very file.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loader import BatchLoader, DatasetIndex  # noqa: E402
from loader.sample_file import read_sample  # noqa: E402
from loader.sampler import EpochSampler  # noqa: E402

BASELINE = "np.load baseline: np.load + np.stack, 1 thread"
GATHER32 = "in-memory gather baseline, float32"
GATHER16 = "in-memory gather baseline, int16 (stored)"


def load_helpers():
    """The dataset builder of the loader tests (tests/loader_tests/loader_helpers.py), by path."""
    spec = importlib.util.spec_from_file_location(
        "loader_helpers", ROOT / "tests/loader_tests/loader_helpers.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["loader_helpers"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def build(out_dir: Path, samples: int, version: str) -> Path:
    """A synthetic dataset of ``samples`` 256x256 int16 slices in studies of 20 slices."""
    sizes = [20] * (samples // 20) + ([samples % 20] if samples % 20 else [])
    built = load_helpers().build_dataset(
        out_dir, sizes, version=version, shape=(256, 256), keep_arrays=False, omask_every=1
    )
    return built.root


def build_real(out_dir: Path, studies: int) -> Path:
    """A version built from ``studies`` copies of the real studies, with the functions the
    workflow's jobs call (``benchmarks/workflow_scale.py``: raw copies, then its direct build)."""
    spec = importlib.util.spec_from_file_location(
        "workflow_scale", ROOT / "benchmarks/workflow_scale.py"
    )
    scale = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scale)
    if not (scale.REAL_DATA / "link.csv").is_file():
        raise SystemExit(f"--source real: no real data at {scale.REAL_DATA}")
    raw = scale.make_raw_dataset(out_dir / "raw", studies, "real")
    scale.direct_build(raw, out_dir / "out", processes=2)
    return out_dir / "out" / "1.0.0"


def loader_of_revision(revision: str, workdir: Path):
    """The ``loader`` package of git ``revision``, imported as ``loader_before``."""
    target = workdir / "before"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "loader"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    package = target / "loader_before"
    (target / "loader").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"\b(from|import) loader\b", r"\1 loader_before", text)
        path.write_text(text)
    sys.path.insert(0, str(target))
    return importlib.import_module("loader_before")


def epoch_orders(count: int, batch_size: int) -> Callable[[int], list[np.ndarray]]:
    """The loader's shuffled batches of positions for epoch ``e`` (seed 0), memoised."""
    sampler = EpochSampler(count, batch_size, shuffle=True, seed=0)
    memo: dict[int, list[np.ndarray]] = {}

    def batches(epoch: int) -> list[np.ndarray]:
        if epoch not in memo:
            memo[epoch] = sampler.batches(epoch)
        return memo[epoch]

    return batches


def timed_epochs(run_epoch: Callable[[int], int], min_seconds: float) -> float:
    """Samples/s of ``run_epoch(e)`` (returns samples served), epochs repeated for min_seconds."""
    served, epoch = 0, 0
    start = time.perf_counter()
    while True:
        served += run_epoch(epoch)
        epoch += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return served / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, help="a built version folder to use")
    parser.add_argument("--samples", type=int, default=2000, help="synthetic size (2000)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--pairs", type=int, default=11, help="back-to-back pairs (11)")
    parser.add_argument("--min-seconds", type=float, default=0.3, help="per measurement (0.3)")
    parser.add_argument("--step-ms", type=float, default=1.0, help="simulated step (1.0 ms)")
    parser.add_argument(
        "--worker-step-ms", type=float, default=0.2, help="step in the worker rows (0.2 ms)"
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS measurement")
    parser.add_argument(
        "--augment-only", action="store_true", help="only the augmentation rows and ratios"
    )
    parser.add_argument(
        "--before", metavar="REV", help="also measure the augmentation rows of this revision"
    )
    parser.add_argument(
        "--instances", type=int, default=3, help="uncached loaders per augmentation row (3)"
    )
    parser.add_argument(
        "--source", choices=["synthetic", "real"], default="synthetic", help="data (synthetic)"
    )
    parser.add_argument(
        "--real-studies", type=int, default=208, help="copies of the real studies (208)"
    )
    parser.add_argument("--workdir", type=Path, help="where to build (default: a temp folder)")
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        return rss_child(args.rss_child, args.batch_size)

    workdir = Path(tempfile.mkdtemp(prefix="loader-bench-", dir=args.workdir))
    try:
        start = time.perf_counter()
        if args.dataset:
            dataset = args.dataset
        elif args.source == "real":
            dataset = build_real(workdir / "real", args.real_studies)
            print(
                f"built {args.real_studies} copies of the real studies in "
                f"{time.perf_counter() - start:.1f} s"
            )
        else:
            dataset = build(workdir, args.samples, "bench")
            print(f"built {args.samples} samples in {time.perf_counter() - start:.1f} s")
        if not args.augment_only:
            run(dataset, args)
        before = loader_of_revision(args.before, workdir) if args.before else None
        augmentation(dataset, args, before)
        if not args.no_rss and not args.augment_only:
            small = build(workdir, max(args.batch_size, len(DatasetIndex(dataset)) // 4), "small")
            print()
            print("peak RSS of a fresh process running one uncached epoch (prefetch=2):")
            for path in (small, dataset):
                samples, peak, before = measure_rss(path, args.batch_size)
                print(
                    f"  {samples:6d} samples: peak {peak / 1024:.1f} MiB "
                    f"(after imports and opening: {before / 1024:.1f} MiB)"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def run(dataset: Path, args: argparse.Namespace) -> None:
    index = DatasetIndex(dataset)
    rows = index.rows()
    paths = [str(index.path(row)) for row in rows.tolist()]
    count, batch_size = len(paths), args.batch_size
    batches = epoch_orders(count, batch_size)
    shapes, dtypes = index.shapes(rows), index.dtypes(rows)
    for path in paths:  # warm the page cache for every row alike
        Path(path).read_bytes()

    def np_load_baseline(epoch: int) -> int:
        for positions in batches(epoch):
            images, masks = [], []
            for position in positions.tolist():
                with np.load(paths[position], allow_pickle=False) as arrays:
                    images.append(arrays["image"])
                    masks.append(arrays["mask"])
            np.stack(images), np.stack(masks)
        return count

    def loader_epochs(loader, step_ms: float = 0.0) -> Callable[[int], int]:
        """One pass over ``loader`` (any iterable of batches), with a step per batch."""
        pause = step_ms / 1000

        def run_epoch(epoch: int) -> int:
            served = 0
            for images, *_ in loader:
                if pause:
                    time.sleep(pause)  # a step that releases the GIL, as torch/keras compute does
                served += len(images)
            return served

        return run_epoch

    cold = BatchLoader(index, batch_size, seed=0, prefetch=0)
    prefetched = BatchLoader(index, batch_size, seed=0, prefetch=2)
    cold_labels = BatchLoader(index, batch_size, seed=0, prefetch=0, targets="labels")
    labels = BatchLoader(index, batch_size, seed=0, prefetch=2, targets="labels")
    cached = BatchLoader(index, batch_size, seed=0, cache=True)
    cached16 = BatchLoader(index, batch_size, seed=0, cache=True, dtype=np.int16)
    start = time.perf_counter()
    for loader in (cached, cached16):  # the first epoch fills the cache
        for _ in loader:
            pass
    fill_seconds = (time.perf_counter() - start) / 2
    # The gather baseline's arrays: every sample preloaded into one array per kind.
    samples = [read_sample(path) for path in paths]
    images16 = np.stack([sample["image"] for sample in samples])
    masks = np.stack([sample["mask"] for sample in samples])
    images32 = images16.astype(np.float32)
    del samples

    def gather(images: np.ndarray) -> Callable[[int], int]:
        def run_epoch(epoch: int) -> int:
            for positions in batches(epoch):
                images[positions], masks[positions]
            return count

        return run_epoch

    rows_to_time: dict[str, Callable[[int], int]] = {
        BASELINE: np_load_baseline,
        "BatchLoader cold (prefetch=0)": loader_epochs(cold),
        "BatchLoader cold, targets='labels'": loader_epochs(cold_labels),
        "BatchLoader prefetch=2": loader_epochs(prefetched),
        "BatchLoader prefetch=2, targets='labels'": loader_epochs(labels),
        "BatchLoader cached epochs (cache=True)": loader_epochs(cached),
        "BatchLoader cached epochs, dtype=int16": loader_epochs(cached16),
        GATHER32: gather(images32),
        GATHER16: gather(images16),
    }
    workers = worker_rows(index, batch_size, args.worker_step_ms, loader_epochs)
    torch_rows = torch_loaders(paths, batches)
    if torch_rows is None:
        print("torch is not installed: its rows are skipped")
    else:
        rows_to_time.update(torch_rows)
        rows_to_time.update(workers)

    def step_alone(epoch: int) -> int:
        for _ in batches(epoch):
            time.sleep(args.step_ms / 1000)
        return count

    step_rows = {
        f"a {args.step_ms:g} ms step alone, per batch (the bound)": step_alone,
        f"with a {args.step_ms:g} ms step: BatchLoader prefetch=0": loader_epochs(
            cold, args.step_ms
        ),
        f"with a {args.step_ms:g} ms step: BatchLoader prefetch=2": loader_epochs(
            prefetched, args.step_ms
        ),
    }
    rows_to_time.update(step_rows)

    results: dict[str, list[float]] = {name: [] for name in rows_to_time}
    for _ in range(args.rounds):
        for name, run_epoch in rows_to_time.items():
            slow = "DataLoader" in name  # one epoch each: they take seconds
            results[name].append(timed_epochs(run_epoch, 0 if slow else args.min_seconds))
    best = {name: max(values) for name, values in results.items()}
    medians = {name: statistics.median(values) for name, values in results.items()}
    baseline = best[BASELINE]

    shape_text = ", ".join(f"{h}x{w}" for h, w in shapes)
    print(
        f"dataset {dataset}: {count} samples ({labels.num_samples} with an o-contour), "
        f"{shape_text}, {', '.join(dtypes)}; batch size {batch_size}; {args.rounds} "
        "interleaved rounds; warm page cache"
    )
    print(f"{'samples/s (best round; median)':60} {'best':>9} {'median':>9} {'x np.load':>9}")
    for name, value in best.items():
        print(f"{name:60} {value:9.0f} {medians[name]:9.0f} {value / baseline:9.2f}")
    print(
        f"(the cache-filling first epoch: {count / fill_seconds:.0f} samples/s, including the "
        "first touch of fresh memory, which is slow in a VM)"
    )
    ratios = [
        ("uncached, prefetch on / np.load baseline", "BatchLoader prefetch=2", BASELINE, 1.5),
        (
            "cached float32 / gather baseline float32",
            "BatchLoader cached epochs (cache=True)",
            GATHER32,
            0.8,
        ),
        (
            "cached int16 / gather baseline int16",
            "BatchLoader cached epochs, dtype=int16",
            GATHER16,
            0.8,
        ),
        (
            "labels / masks, prefetch=0",
            "BatchLoader cold, targets='labels'",
            "BatchLoader cold (prefetch=0)",
            0.9,
        ),
        (
            "labels / masks, prefetch=2",
            "BatchLoader prefetch=2, targets='labels'",
            "BatchLoader prefetch=2",
            0.9,
        ),
    ]
    if workers:
        one, two = workers
        ratios.append(("torch_dataset 2 workers / 1 worker", two, one, 1.6))
    print()
    print("ratios of best rounds:")
    for label, numerator, denominator, target in ratios:
        ratio = best[numerator] / best[denominator]
        verdict = "met" if ratio >= target else "NOT met"
        print(f"  {label} = {ratio:.2f} (target >= {target}: {verdict})")
    # Best rounds of two rows may come from different moments of a shared machine's load; pairs
    # measured back to back (in alternating order) see the same moment, so their ratios are
    # steadier. Each pair: one epoch of each row.
    print(f"ratios of {args.pairs} back-to-back pairs (median [quartiles]):")
    for label, numerator, denominator, target in ratios[-3 if workers else -2 :]:
        pair_ratios = paired_ratios(rows_to_time[numerator], rows_to_time[denominator], args.pairs)
        low, median, high = np.percentile(pair_ratios, [25, 50, 75])
        verdict = "met" if median >= target else "NOT met"
        print(f"  {label} = {median:.2f} [{low:.2f}, {high:.2f}] (target >= {target}: {verdict})")
    alone, without, with_prefetch = (best[name] for name in step_rows)
    print(
        f"with a {args.step_ms:g} ms step: prefetch=2 / prefetch=0 = "
        f"{with_prefetch / without:.2f}; prefetch=2 / step alone = {with_prefetch / alone:.2f}"
    )


def augmentation(dataset: Path, args: argparse.Namespace, before) -> None:
    """Plain and augmented epochs, cached and uncached, of this loader (and of ``before``'s)."""
    packages = {"after": sys.modules["loader"]}
    if before is not None:
        packages = {"before": before, **packages}
    rows: dict[str, Callable[[int], int]] = {}
    # Uncached rows also as --instances identical loaders: two identical loaders differ by up to
    # ~10% (their batch arrays sit at other addresses relative to the read buffers), a bias that
    # one pair of loaders carries into every ratio; cycling the pairs over instances averages it.
    instances: dict[str, list[Callable[[int], int]]] = {}
    fills: dict[str, float] = {}
    for name, package in packages.items():
        index = package.DatasetIndex(dataset)
        for cache in (False, True):
            for augment in (False, True):
                label = (
                    f"{name}: {'cached' if cache else 'uncached'}, "
                    f"{'augment=True' if augment else 'plain'}"
                )
                for _ in range(1 if cache else args.instances):
                    loader = package.BatchLoader(
                        index, args.batch_size, seed=0, prefetch=0, cache=cache, augment=augment
                    )
                    if cache:  # the first epoch fills the cache
                        start = time.perf_counter()
                        filled = sum(len(images) for images, *_ in loader)
                        fills[label] = filled / (time.perf_counter() - start)

                    def run_epoch(epoch: int, loader=loader) -> int:
                        return sum(len(images) for images, *_ in loader)

                    instances.setdefault(label, []).append(run_epoch)
                rows[label] = instances[label][0]
    results: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.rounds):
        for name, run_epoch in rows.items():
            results[name].append(timed_epochs(run_epoch, args.min_seconds))
    best = {name: max(values) for name, values in results.items()}
    count = len(packages[next(iter(packages))].DatasetIndex(dataset).rows())
    print()
    print(
        f"augmentation: {dataset}, {count} samples, batch size {args.batch_size}, prefetch=0, "
        f"{args.rounds} interleaved rounds"
    )
    print(f"{'samples/s':44} {'best':>9} {'median':>9}   cache-filling epoch")
    for name, values in results.items():
        fill = f"{fills[name]:9.0f}" if name in fills else ""
        print(f"{name:44} {best[name]:9.0f} {statistics.median(values):9.0f}   {fill}")
    print(f"augment=True / plain: best rounds; median [quartiles] of {args.pairs} pairs")
    for name in packages:
        for kind, target in (("cached", 0.6), ("uncached", 0.8)):
            augmented, plain = f"{name}: {kind}, augment=True", f"{name}: {kind}, plain"
            pairs = paired_ratios(rows[augmented], rows[plain], args.pairs)
            low, median, high = np.percentile(pairs, [25, 50, 75])
            verdict = "met" if median >= target else "NOT met"
            print(
                f"  {name:6} {kind:8} {best[augmented] / best[plain]:5.2f}; "
                f"{median:.2f} [{low:.2f}, {high:.2f}] (target >= {target}: {verdict})"
            )
    print(
        f"uncached over {args.instances} instances of each loader (pair i: instance i mod "
        f"{args.instances}), median [quartiles] of {args.pairs} pairs:"
    )
    for name in packages:
        plains = instances[f"{name}: uncached, plain"]
        others = plains[1:] + plains[:1]  # another instance of the same plain loader
        for label, numerators, denominators in (
            ("augment=True / plain", instances[f"{name}: uncached, augment=True"], plains),
            ("plain / plain (another instance)", plains, others),
        ):
            pairs = [
                paired_ratios(numerators[i % len(plains)], denominators[i % len(plains)], 1)[0]
                for i in range(args.pairs)
            ]
            low, median, high = np.percentile(pairs, [25, 50, 75])
            print(f"  {name:6} {label:34} {median:.2f} [{low:.2f}, {high:.2f}]")
    if before is not None:
        print("after / before, augment=True: best rounds; median of pairs")
        for kind in ("cached", "uncached"):
            after, earlier = f"after: {kind}, augment=True", f"before: {kind}, augment=True"
            pairs = paired_ratios(rows[after], rows[earlier], args.pairs)
            print(f"  {kind:8} {best[after] / best[earlier]:5.2f}; {np.median(pairs):.2f}")


def paired_ratios(
    numerator: Callable[[int], int], denominator: Callable[[int], int], pairs: int
) -> list[float]:
    """Ratios of samples/s of one epoch of each row, measured back to back, alternating which
    goes first."""
    ratios = []
    for pair in range(pairs):
        if pair % 2:
            below = timed_epochs(denominator, 0)
            above = timed_epochs(numerator, 0)
        else:
            above = timed_epochs(numerator, 0)
            below = timed_epochs(denominator, 0)
        ratios.append(above / below)
    return ratios


def worker_rows(
    index: DatasetIndex, batch_size: int, step_ms: float, loader_epochs
) -> dict[str, Callable[[int], int]]:
    """``torch_dataset`` in a DataLoader with 1 and 2 persistent workers, a step per batch.

    The workers' loaders do not prefetch themselves (``prefetch=0``): DataLoader already reads
    ahead (``prefetch_factor``), and a thread per worker would compete for the same two cores.
    """
    try:
        from torch.utils.data import DataLoader
    except ImportError:
        return {}
    from loader import torch_dataset

    rows = {}
    for workers in (1, 2):
        dataset = torch_dataset(BatchLoader(index, batch_size, seed=0, prefetch=0))
        data = DataLoader(dataset, batch_size=None, num_workers=workers, persistent_workers=True)
        for _ in data:  # start the workers and warm them up
            pass
        plural = "s" if workers > 1 else ""
        rows[f"torch_dataset DataLoader, {workers} worker{plural}, {step_ms:g} ms step"] = (
            loader_epochs(data, step_ms)
        )
    return rows


def torch_loaders(paths: list[str], batches) -> dict[str, Callable[[int], int]] | None:
    """DataLoader rows over the same files (np.load per sample, default collate)."""
    try:
        import torch
        import torch.utils.data as data
    except ImportError:
        return None
    # One intra-op thread: with two, collating on two shared cores stalled now and then (OpenMP
    # threads waiting on each other), which would understate torch here.
    torch.set_num_threads(1)

    class Files(data.Dataset):
        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, position: int):
            with np.load(paths[position], allow_pickle=False) as arrays:
                return arrays["image"], arrays["mask"]

    def rows(workers: int) -> Callable[[int], int]:
        def run_epoch(epoch: int) -> int:
            sampler = data.BatchSampler(
                np.concatenate(batches(epoch)).tolist(), batch_size=8, drop_last=False
            )
            served = 0
            for images, _ in data.DataLoader(Files(), batch_sampler=sampler, num_workers=workers):
                served += len(images)
            return served

        return run_epoch

    return {
        "torch DataLoader, 0 workers": rows(0),
        "torch DataLoader, 2 workers": rows(2),
    }


def measure_rss(dataset: Path, batch_size: int) -> tuple[int, int, int]:
    """(samples, peak RSS KiB, RSS KiB before the epoch) of a fresh process's uncached epoch."""
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--rss-child",
            str(dataset),
            "--batch-size",
            str(batch_size),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(output[0]), int(output[1]), int(output[2])


def rss_child(dataset: Path, batch_size: int) -> int:
    loader = BatchLoader(dataset, batch_size, seed=0, prefetch=2)
    before = _status_kib("VmRSS")
    for _ in loader:
        pass
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent through
    # fork and exec, so a child of a big benchmark process would report the parent's peak.
    print(loader.num_samples, _status_kib("VmHWM"), before)
    return 0


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{field}:"))


if __name__ == "__main__":
    sys.exit(main())
