"""Throughput of the BatchLoader against the raw reading limit and the in-memory ceiling.

Builds a synthetic dataset (256 x 256 int16 slices, bool masks, every other sample with an
o-contour mask, as the real data) or takes one with ``--dataset``, then prints samples/s for one
shuffled epoch at batch size 8 for:

- the raw limit: ``np.load`` of every file in the epoch's random order plus ``np.stack``, in
  one thread;
- the BatchLoader cold (``prefetch=0``), with prefetch, and its cached epochs (``cache=True``);
- the ceiling: a fancy-index gather from arrays preloaded in memory, in the stored dtype and in
  the loader's output dtype (float32);
- ``torch.utils.data.DataLoader`` (0 and 2 workers, one intra-op thread) over the same files,
  when torch is installed;
- the wall time of an epoch with a simulated training step that releases the GIL (as a
  framework's compute does), without and with prefetch: what prefetching hides;

all in the same run, as ratios to the raw limit. Rows are measured in interleaved rounds (each
row once per round, ``--rounds`` rounds). The machine is shared and noisy, and noise only ever
slows a run down, so the ratios use each row's best round (as ``timeit`` advises); the median is
printed beside it. Files are read once before timing, so every row sees a warm page cache.

Then it measures the peak RSS of a fresh process running one uncached epoch (prefetch on) on two
dataset sizes, to show that memory does not grow with the dataset.

Run: ``python benchmarks/loader_benchmark.py`` (about a minute; ``--help`` for options).
"""

from __future__ import annotations

import argparse
import importlib.util
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

RAW = "raw limit: np.load + np.stack, 1 thread"


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
        out_dir, sizes, version=version, shape=(256, 256), keep_arrays=False, omask_every=2
    )
    return built.root


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
    parser.add_argument("--min-seconds", type=float, default=0.3, help="per measurement (0.3)")
    parser.add_argument("--step-ms", type=float, default=1.0, help="simulated step (1.0 ms)")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS measurement")
    parser.add_argument("--workdir", type=Path, help="where to build (default: a temp folder)")
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        return rss_child(args.rss_child, args.batch_size)

    workdir = Path(tempfile.mkdtemp(prefix="loader-bench-", dir=args.workdir))
    try:
        if args.dataset:
            dataset = args.dataset
        else:
            start = time.perf_counter()
            dataset = build(workdir, args.samples, "bench")
            print(f"built {args.samples} samples in {time.perf_counter() - start:.1f} s")
        run(dataset, args)
        if not args.no_rss:
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

    def raw_limit(epoch: int) -> int:
        for positions in batches(epoch):
            images, masks = [], []
            for position in positions.tolist():
                with np.load(paths[position], allow_pickle=False) as arrays:
                    images.append(arrays["image"])
                    masks.append(arrays["mask"])
            np.stack(images), np.stack(masks)
        return count

    def loader_epochs(loader: BatchLoader) -> Callable[[int], int]:
        def run_epoch(epoch: int) -> int:
            served = 0
            for images, _ in loader:
                served += len(images)
            return served

        return run_epoch

    cold = BatchLoader(index, batch_size, seed=0, prefetch=0)
    prefetched = BatchLoader(index, batch_size, seed=0, prefetch=2)
    cached = BatchLoader(index, batch_size, seed=0, cache=True)
    cached16 = BatchLoader(index, batch_size, seed=0, cache=True, dtype=np.int16)
    start = time.perf_counter()
    for loader in (cached, cached16):  # the first epoch fills the cache
        for _ in loader:
            pass
    fill_seconds = (time.perf_counter() - start) / 2
    # The ceiling's arrays: every sample preloaded into one array per kind.
    samples = [read_sample(path) for path in paths]
    images16 = np.stack([sample["image"] for sample in samples])
    masks = np.stack([sample["mask"] for sample in samples])
    images32 = images16.astype(np.float32)
    del samples

    def ceiling(images: np.ndarray) -> Callable[[int], int]:
        def run_epoch(epoch: int) -> int:
            for positions in batches(epoch):
                images[positions], masks[positions]
            return count

        return run_epoch

    def step_epoch(loader: BatchLoader) -> Callable[[int], int]:
        pause = args.step_ms / 1000

        def run_epoch(epoch: int) -> int:
            served = 0
            for images, _ in loader:
                time.sleep(pause)  # a step that releases the GIL, as torch/keras compute does
                served += len(images)
            return served

        return run_epoch

    rows_to_time: dict[str, Callable[[int], int]] = {
        RAW: raw_limit,
        "BatchLoader cold (prefetch=0)": loader_epochs(cold),
        "BatchLoader prefetch=2": loader_epochs(prefetched),
        "BatchLoader cached epochs (cache=True)": loader_epochs(cached),
        "BatchLoader cached epochs, dtype=int16": loader_epochs(cached16),
        "ceiling: in-memory gather, float32": ceiling(images32),
        "ceiling: in-memory gather, int16 (stored)": ceiling(images16),
    }
    torch_rows = torch_loaders(paths, batches)
    if torch_rows is None:
        print("torch is not installed: its rows are skipped")
    else:
        rows_to_time.update(torch_rows)

    def step_alone(epoch: int) -> int:
        for _ in batches(epoch):
            time.sleep(args.step_ms / 1000)
        return count

    step_rows = {
        f"a {args.step_ms:g} ms step alone, per batch (the bound)": step_alone,
        f"with a {args.step_ms:g} ms step: BatchLoader prefetch=0": step_epoch(cold),
        f"with a {args.step_ms:g} ms step: BatchLoader prefetch=2": step_epoch(prefetched),
    }
    rows_to_time.update(step_rows)

    results: dict[str, list[float]] = {name: [] for name in rows_to_time}
    for _ in range(args.rounds):
        for name, run_epoch in rows_to_time.items():
            slow = name.startswith("torch")
            results[name].append(timed_epochs(run_epoch, 0 if slow else args.min_seconds))
    best = {name: max(values) for name, values in results.items()}
    medians = {name: statistics.median(values) for name, values in results.items()}
    raw = best[RAW]

    shape_text = ", ".join(f"{h}x{w}" for h, w in shapes)
    print(
        f"dataset {dataset}: {count} samples, {shape_text}, {', '.join(dtypes)}; "
        f"batch size {batch_size}; {args.rounds} interleaved rounds; warm page cache"
    )
    print(f"{'samples/s (best round; median)':52} {'best':>9} {'median':>9} {'x raw':>6}")
    for name, value in best.items():
        print(f"{name:52} {value:9.0f} {medians[name]:9.0f} {value / raw:6.2f}")
    print(
        f"(the cache-filling first epoch: {count / fill_seconds:.0f} samples/s, including the "
        "first touch of fresh memory, which is slow in a VM)"
    )
    ratios = [
        ("uncached, prefetch on / raw limit", "BatchLoader prefetch=2", RAW, 1.5),
        (
            "cached float32 / gather float32 ceiling",
            "BatchLoader cached epochs (cache=True)",
            "ceiling: in-memory gather, float32",
            0.8,
        ),
        (
            "cached int16 / gather int16 ceiling",
            "BatchLoader cached epochs, dtype=int16",
            "ceiling: in-memory gather, int16 (stored)",
            0.8,
        ),
    ]
    print()
    for label, numerator, denominator, target in ratios:
        ratio = best[numerator] / best[denominator]
        verdict = "met" if ratio >= target else "NOT met"
        print(f"{label} = {ratio:.2f} (target >= {target}: {verdict})")
    alone, without, with_prefetch = (best[name] for name in step_rows)
    print(
        f"with a {args.step_ms:g} ms step: prefetch=2 / prefetch=0 = "
        f"{with_prefetch / without:.2f}; prefetch=2 / step alone = {with_prefetch / alone:.2f}"
    )


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
