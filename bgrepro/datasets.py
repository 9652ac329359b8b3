"""Loaders over the official layout: decode once into uint8 tensors, then batch on the device.

`load_variant(root, variant, split)` decodes `<root>/<variant>/<split>/<class>/*` once (in parallel
threads) into an `ImageSet` (uint8 (N, 3, H, W), labels, ids), optionally with the foreground
masks of `fg_mask/`. `BatchStream` yields shuffled, augmented float batches on any device from it,
so epochs after the first do no decoding; with `mixed_rand=True` each batch's foregrounds are pasted
on the Only-BG-T of random training images on the device (the toolkit's torch compositing), an
on-the-fly alternative to the materialised Mixed-Rand set.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import composite
from .classes import CLASS_FOLDERS
from .io import read_image, read_mask
from .sources import class_dirs, images_in


@dataclass
class ImageSet:
    """Decoded images of one variant and split."""

    images: torch.Tensor  # uint8 (N, 3, H, W)
    labels: torch.Tensor  # int64 (N,)
    ids: list[str]
    masks: torch.Tensor | None = None  # bool (N, H, W)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device) -> ImageSet:
        """The same set on another device."""
        return ImageSet(self.images.to(device), self.labels.to(device), self.ids,
                        None if self.masks is None else self.masks.to(device))


def list_variant(root: Path, variant: str, split: str, classes=CLASS_FOLDERS) -> list[tuple[Path, int]]:
    """(image path, label) of every image of a variant and split, in a fixed order."""
    base = Path(root) / variant / split
    items = [(p, label) for label, folder in class_dirs(base, classes, allow_missing=True) for p in images_in(folder)]
    if not items:
        raise ValueError(f"{base}: no images")
    return items


def load_variant(root: Path, variant: str, split: str, with_masks: bool = False, threads: int = 4) -> ImageSet:
    """Decode a variant's split into memory (uint8), with fg_mask masks if asked."""
    items = list_variant(root, variant, split)
    with ThreadPoolExecutor(threads) as pool:
        arrays = list(pool.map(lambda item: read_image(item[0]), items))
    ref = arrays[0].shape
    for (path, _), array in zip(items, arrays):
        if array.shape != ref:
            raise ValueError(f"{path}: image is {array.shape[1]}x{array.shape[0]} but the first image of "
                             f"{Path(root) / variant / split} is {ref[1]}x{ref[0]}; a set needs one size")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([label for _, label in items], dtype=torch.long)
    ids = [p.stem for p, _ in items]
    masks = None
    if with_masks:
        mask_files = [Path(root) / "fg_mask" / split / CLASS_FOLDERS[label] / f"{p.stem}.npy" for p, label in items]
        with ThreadPoolExecutor(threads) as pool:
            mask_arrays = list(pool.map(lambda f: read_mask(f, arrays[0].shape[:2]), mask_files))
        masks = torch.from_numpy(np.stack(mask_arrays))
    return ImageSet(images, labels, ids, masks)


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Tight inclusive boxes (N, 4) of non-empty masks (N, H, W)."""
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    h, w = masks.shape[1:]
    ar_h, ar_w = torch.arange(h, device=masks.device), torch.arange(w, device=masks.device)
    y0 = torch.where(rows, ar_h, h).min(dim=1).values
    y1 = torch.where(rows, ar_h, -1).max(dim=1).values
    x0 = torch.where(cols, ar_w, w).min(dim=1).values
    x1 = torch.where(cols, ar_w, -1).max(dim=1).values
    return torch.stack([x0, y0, x1, y1], dim=1)


def augment(x: torch.Tensor, generator: torch.Generator, max_shift: float = 0.125,
            scale: tuple[float, float] = (1.0, 1.0)) -> torch.Tensor:
    """Random shift by whole pixels, optional zoom, and horizontal flip of a float batch, per image.

    Without zoom (the default) every output pixel is a copy of an input pixel (nearest sampling,
    reflection at the borders), so small images are not blurred; zoom resamples bilinearly.
    """
    n, _, h, w = x.shape
    rand = torch.rand(n, 4, generator=generator).to(x.device)
    zoom = scale != (1.0, 1.0)
    s = scale[0] + (scale[1] - scale[0]) * rand[:, 0] if zoom else torch.ones(n, device=x.device)
    flip = torch.where(rand[:, 1] < 0.5, -1.0, 1.0).to(x.device)
    dx = torch.round((rand[:, 2] * 2 - 1) * max_shift * w) * 2 / w  # whole pixels, normalised
    dy = torch.round((rand[:, 3] * 2 - 1) * max_shift * h) * 2 / h
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = s * flip, dx
    theta[:, 1, 1], theta[:, 1, 2] = s, dy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear" if zoom else "nearest", padding_mode="reflection",
                         align_corners=False)


class BatchStream:
    """Shuffled mini-batches of an ImageSet on a device; deterministic per (seed, epoch)."""

    def __init__(self, data: ImageSet, batch_size: int, device="cpu", train: bool = True,
                 mixed_rand: bool = False, rank: int = 0, world_size: int = 1) -> None:
        self.data = data.to(device)
        self.batch_size, self.device, self.train = batch_size, torch.device(device), train
        self.rank, self.world_size = rank, world_size
        self.mixed_rand = mixed_rand
        if mixed_rand:
            if data.masks is None:
                raise ValueError("on-the-fly Mixed-Rand needs foreground masks (load with with_masks=True)")
            boxes = mask_boxes(self.data.masks)
            self.only_bg_t = composite.only_bg_t_torch(self.data.images, boxes)  # every image's background

    def __len__(self) -> int:
        per_rank = -(-len(self.data) // self.world_size)
        return -(-per_rank // self.batch_size)

    def epoch(self, seed: int, epoch: int):
        """Yield (float images in [0, 1], labels) for one epoch."""
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        n = len(self.data)
        order = torch.randperm(n, generator=gen) if self.train else torch.arange(n)
        order = order[self.rank::self.world_size]
        for k in range(0, len(order), self.batch_size):
            idx = order[k:k + self.batch_size].to(self.device)
            images = self.data.images[idx]
            if self.mixed_rand:
                others = torch.randint(0, n - 1, (len(idx),), generator=gen).to(self.device)
                others = others + (others >= idx).long()  # any other image, never itself
                images = composite.paste_torch(images, self.data.masks[idx], self.only_bg_t[others])
            x = images.float().div_(255)
            if self.train:
                x = augment(x, gen)
            yield x, self.data.labels[idx]
