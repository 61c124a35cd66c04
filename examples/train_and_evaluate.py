"""From a dataset version to the challenge's figures: train a tiny model for a few steps with
the loader, write its predictions for one split with ``save_prediction``, and score them with
``python -m loader evaluate`` (here called as a function; the command line prints the same).

    python examples/train_and_evaluate.py results/1.0.0 --steps 150 --split test --out evaluation

The model is deliberately small (three convolutions, a few minutes on a CPU at most): the point
is the loop, not the model. Needs PyTorch (``pip install lv-dataset[frameworks,evaluate]``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from loader import BatchLoader, DatasetIndex, save_prediction
from loader.evaluation import evaluate, write_page
from loader.evaluation.report import format_summary


def tiny_model() -> torch.nn.Module:
    """Per-pixel logits of the blood pool from a 1-channel image: three convolutions at half
    resolution (a 42-pixel receptive field), the logits upsampled back."""
    return torch.nn.Sequential(
        torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(1, 8, 5, padding=2),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 5, padding=4, dilation=2),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=4, dilation=4),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 1, 1),
        torch.nn.Upsample(scale_factor=2, mode="bilinear"),
    )


def normalised(images: np.ndarray) -> torch.Tensor:
    """(B, H, W) images to (B, 1, H, W) float32, each image to zero mean and unit variance."""
    x = torch.from_numpy(np.asarray(images, dtype=np.float32))[:, None]
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = x.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    return (x - mean) / std


def mean_centre(version: Path) -> np.ndarray:
    """(row, col) of the training masks' centroids, averaged: where the heart usually is."""
    batches = BatchLoader(version, batch_size=16, shuffle=False, split="train")
    centres = [ndimage.center_of_mass(mask) for _, masks in batches for mask in masks]
    return np.nanmean(np.asarray(centres, dtype=np.float64), axis=0)


def keep_nearest_part(mask: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The connected part of ``mask`` whose centroid is nearest ``centre`` (a tiny model also
    lights up other bright structures)."""
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    centroids = np.asarray(ndimage.center_of_mass(mask, labels, range(1, count + 1)))
    nearest = int(np.argmin(np.hypot(*(centroids - centre).T))) + 1
    return labels == nearest


def train(version: Path, steps: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = tiny_model()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    batches = BatchLoader(version, batch_size=4, split="train", seed=seed, augment=True)
    for step, (images, masks) in zip(range(steps), batches.repeat(), strict=False):
        logits = model(normalised(images))
        target = torch.from_numpy(masks)[:, None].float()
        # the blood pool is ~2% of a slice: weigh its pixels up, or a few steps predict nothing
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target, pos_weight=torch.tensor(10.0)
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 25 == 0:
            print(f"step {step}: loss {loss.item():.4f}")
    return model


def predict(model: torch.nn.Module, version: Path, split: str, folder: Path) -> int:
    """Write one prediction file per sample of ``split``; returns how many."""
    index = DatasetIndex(version)
    centre = mean_centre(version)
    batches = BatchLoader(index, batch_size=8, shuffle=False, split=split, with_rows=True)
    written = 0
    with torch.no_grad():
        for images, _, rows in batches:
            masks = (model(normalised(images))[:, 0] > 0).numpy()
            for row, mask in zip(rows.tolist(), masks, strict=True):
                save_prediction(folder, index, row, mask=keep_nearest_part(mask, centre))
                written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", type=Path, help="the version folder, e.g. results/1.0.0")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--split", default="test", help="the split to predict and score")
    parser.add_argument("--predictions", type=Path, default=Path("predictions"))
    parser.add_argument("--out", type=Path, default=Path("evaluation"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model = train(args.version, args.steps, args.seed)
    count = predict(model, args.version, args.split, args.predictions)
    print(f"wrote {count} predictions into {args.predictions}")
    # the same as: python -m loader evaluate VERSION PREDICTIONS --split S --out OUT
    result = evaluate(args.version, args.predictions, split=args.split)
    print(format_summary(result))
    result.write(args.out)
    print(f"page: {write_page(result, args.out)}")
    print(f"Dice over good contours: {result.summary['dice_mean']}")


if __name__ == "__main__":
    main()
