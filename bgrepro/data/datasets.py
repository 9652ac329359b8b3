"""Loaders over the official layout: decode once into uint8 tensors, then batch on the device.

`load_variant(root, variant, split)` decodes `<root>/<variant>/<split>/<class>/*` once (in parallel
threads) into an `ImageSet` (uint8 (N, 3, H, W), labels, ids), optionally with the foreground
masks of `fg_mask/`. `BatchStream` yields shuffled, augmented float batches on any device from it,
so epochs after the first do no decoding; with `mixed_rand=True` each batch's foregrounds are pasted
on the Only-BG-T of random training images on the device (the toolkit's torch compositing), an
on-the-fly alternative to the materialised Mixed-Rand set.

Memory: a set is decoded once into one uint8 tensor when it fits half the free host memory
(`$BGREPRO_HOST_CACHE_BYTES` overrides the budget), else into a memory-mapped file under
`results/cache/` (decoded once, reused by later runs while the images are unchanged). `BatchStream`
moves the whole set to the device when it fits half the device's free memory
(`$BGREPRO_DEVICE_CACHE_BYTES`), else streams each batch from the host (pinned, one batch ahead in a
background thread). Both routes give the same batches.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import layout
from ..io import read_image, read_mask
from ..layout import results_dir
from ..variants import ORIGINAL
from . import composite
from .sources import class_dirs


@dataclass
class ImageSet:
    """Decoded images of one variant and split."""

    images: torch.Tensor  # uint8 (N, 3, H, W)
    labels: torch.Tensor  # int64 (N,): indices into `classes`
    ids: list[str]  # "<class folder>/<file stem>": unique even where file names repeat across classes
    masks: torch.Tensor | None = None  # bool (N, H, W)
    #: The dataset's class folder names, in label order.
    classes: tuple[str, ...] = ()
    #: The size of the set this one was sampled from (None: not a sample).
    sampled_from: int | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device) -> ImageSet:
        """The same set on another device."""
        return ImageSet(self.images.to(device), self.labels.to(device), self.ids,
                        None if self.masks is None else self.masks.to(device), self.classes, self.sampled_from)

    def subset(self, keep) -> ImageSet:
        """The images at the given positions, in that order."""
        keep = torch.as_tensor(keep, dtype=torch.long)
        return ImageSet(self.images[keep], self.labels[keep], [self.ids[int(i)] for i in keep],
                        None if self.masks is None else self.masks[keep], self.classes, self.sampled_from)

    def first_positions(self, per_class: int) -> list[int]:
        """Positions of the first `per_class` images of each class, in set order."""
        keep = torch.cat([torch.nonzero(self.labels == c).flatten()[:per_class] for c in range(len(self.classes))])
        return keep.sort().values.tolist()

    def first_per_class(self, per_class: int | None) -> ImageSet:
        """The first `per_class` images of each class (all of them when None)."""
        return self if per_class is None else self.subset(self.first_positions(per_class))


def list_variant(root: Path, variant: str, split: str, classes: tuple[str, ...] | None = None
                 ) -> list[tuple[Path, int]]:
    """(image path, label) of every image of a variant and split, in a fixed order; labels index the
    dataset's classes (its sorted class folders, or `classes`)."""
    classes = classes or layout.class_folders(root)
    base = layout.split_dir(root, variant, split)
    if base.is_dir():
        layout.Scan([], layout.beside_classes(base)).strict()  # a file beside the class folders is not read
    items = [(p, label) for label, folder in class_dirs(base, classes, allow_missing=True)
             for p in layout.images_in(folder)]
    if not items:
        raise ValueError(f"{base}: no images")
    return items


def image_side(root: Path, default: int = 224) -> int:
    """The side of a dataset's images (its first Original test image's height; `default` when it has none): the
    size a model is adapted to (`registry.LoadedModel.for_data`)."""
    if not layout.split_dir(root, ORIGINAL, layout.TEST).is_dir():
        return default
    first = next(iter(list_variant(root, ORIGINAL, layout.TEST)), None)
    return read_image(first[0]).shape[0] if first is not None else default


#: Environment variables that cap the bytes a decoded set may take in host or device memory.
HOST_BUDGET_ENV = "BGREPRO_HOST_CACHE_BYTES"
DEVICE_BUDGET_ENV = "BGREPRO_DEVICE_CACHE_BYTES"


def host_budget() -> int:
    """Bytes a decoded set may take in host memory: half of what is available now, or the env override."""
    if os.environ.get(HOST_BUDGET_ENV):
        return int(os.environ[HOST_BUDGET_ENV])
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


def device_budget(device) -> int:
    """Bytes a set may take on `device`: half its free memory (CUDA), the host budget otherwise."""
    device = torch.device(device)
    if os.environ.get(DEVICE_BUDGET_ENV):
        return int(os.environ[DEVICE_BUDGET_ENV])
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 2
    return host_budget()


def _disk_cache(items: list[tuple[Path, int]], shape: tuple[int, int, int, int], fill) -> torch.Tensor:
    """A uint8 tensor backed by a memory-mapped file, decoded once per unchanged listing."""
    listing = [(str(Path(p).resolve()), Path(p).stat().st_mtime_ns, Path(p).stat().st_size) for p, _ in items]
    key = hashlib.sha256(json.dumps([list(shape), listing]).encode()).hexdigest()[:20]
    path = results_dir() / "cache" / f"images-{key}.u8"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            fill(torch.from_numpy(np.lib.format.open_memmap(part, mode="w+", dtype=np.uint8, shape=shape)))
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)
    return torch.from_numpy(np.load(path, mmap_mode="c"))


def _decode_into(images: torch.Tensor, paths: Sequence[Path], threads: int, what: Path) -> None:
    """Decode `paths` into the uint8 tensor `images` (N, 3, H, W) in threads; every image must be H x W."""
    h, w = images.shape[2:]

    def one(i: int) -> None:
        array = read_image(paths[i])
        if array.shape != (h, w, 3):
            raise ValueError(f"{paths[i]}: image is {array.shape[1]}x{array.shape[0]} but the first image "
                             f"of {what} is {w}x{h}; a set needs one size")
        images[i] = torch.from_numpy(array).permute(2, 0, 1)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(len(paths))))


def _decode_masks(files: Sequence[Path], shape: tuple[int, int], threads: int) -> torch.Tensor:
    masks = torch.empty((len(files), *shape), dtype=torch.bool)

    def one_mask(i: int) -> None:
        masks[i] = torch.from_numpy(read_mask(files[i], shape))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one_mask, range(len(files))))
    return masks


def _threads(threads: int | None) -> int:
    return threads or min(16, os.cpu_count() or 1)  # decoders release the GIL


@dataclass
class ImageListing:
    """A variant's split as files, decoded on demand chunk by chunk: a set read in constant memory.

    `sampled_from` is the size of the listing it was sampled from (None: not a sample)."""

    root: Path
    variant: str
    split: str
    items: list[tuple[Path, int]]
    classes: tuple[str, ...]
    sampled_from: int | None = None

    @classmethod
    def of(cls, root: Path, variant: str, split: str) -> ImageListing:
        classes = layout.class_folders(root)
        return cls(Path(root), variant, split, list_variant(root, variant, split, classes), classes)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([label for _, label in self.items], dtype=torch.long)

    @property
    def ids(self) -> list[str]:
        return [f"{p.parent.name}/{p.stem}" for p, _ in self.items]

    def shape(self) -> tuple[int, int]:
        """(H, W) of the first image (every image of a set has it)."""
        return read_image(self.items[0][0]).shape[:2]

    def subset(self, keep, sampled: bool = True) -> ImageListing:
        """The files at the given positions, in that order (a sample of this listing when `sampled`)."""
        return ImageListing(self.root, self.variant, self.split, [self.items[int(i)] for i in keep], self.classes,
                            (self.sampled_from or len(self)) if sampled else self.sampled_from)

    def decode(self, start: int = 0, stop: int | None = None, threads: int | None = None) -> torch.Tensor:
        """uint8 (n, 3, H, W) of the files from `start` to `stop`."""
        paths = [p for p, _ in self.items[start:stop]]
        h, w = self.shape()
        images = torch.empty((len(paths), 3, h, w), dtype=torch.uint8)
        _decode_into(images, paths, _threads(threads), layout.split_dir(self.root, self.variant, self.split))
        return images

    def chunks(self, size: int) -> Iterator[tuple[int, torch.Tensor]]:
        """(start, uint8 images) chunk by chunk, the next chunk decoded while this one is used."""
        starts = list(range(0, len(self), max(1, size)))
        with ThreadPoolExecutor(1) as pool:
            ahead = pool.submit(self.decode, starts[0], starts[0] + size) if starts else None
            for k, start in enumerate(starts):
                images = ahead.result()
                if k + 1 < len(starts):
                    ahead = pool.submit(self.decode, starts[k + 1], starts[k + 1] + size)
                yield start, images

    def load(self, with_masks: bool = False, threads: int | None = None) -> ImageSet:
        """Every file decoded into one ImageSet (with the fg_mask masks if asked)."""
        images = self.decode(threads=threads)
        masks = None
        if with_masks:
            files = [layout.mask_path(self.root, self.split, p.parent.name, p.stem) for p, _ in self.items]
            masks = _decode_masks(files, tuple(images.shape[2:]), _threads(threads))
        return ImageSet(images, self.labels, self.ids, masks, self.classes, self.sampled_from)


def load_variant(root: Path, variant: str, split: str, with_masks: bool = False,
                 threads: int | None = None) -> ImageSet:
    """Decode a variant's split once into uint8 (in memory, or memory-mapped when it does not fit),
    with fg_mask masks if asked."""
    classes = layout.class_folders(root)
    items = list_variant(root, variant, split, classes)
    threads = _threads(threads)
    h, w, _ = read_image(items[0][0]).shape
    shape = (len(items), 3, h, w)
    base = layout.split_dir(root, variant, split)
    paths = [p for p, _ in items]

    def fill(images: torch.Tensor) -> None:
        _decode_into(images, paths, threads, base)

    if np.prod(shape) <= host_budget():
        images = torch.empty(shape, dtype=torch.uint8)
        fill(images)
    else:
        images = _disk_cache(items, shape, fill)
    labels = torch.tensor([label for _, label in items], dtype=torch.long)
    ids = [f"{p.parent.name}/{p.stem}" for p, _ in items]
    masks = None
    if with_masks:
        masks = _decode_masks([layout.mask_path(root, split, p.parent.name, p.stem) for p, _ in items], (h, w),
                              threads)
    return ImageSet(images, labels, ids, masks, classes)


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


def augment(x: torch.Tensor, generator: torch.Generator | None, max_shift: float = 0.125,
            scale: tuple[float, float] = (1.0, 1.0), rand: torch.Tensor | None = None) -> torch.Tensor:
    """Random shift by whole pixels, optional zoom, and horizontal flip of a float batch, per image.

    Without zoom (the default) every output pixel is a copy of an input pixel (nearest sampling,
    reflection at the borders), so small images are not blurred; zoom resamples bilinearly. `rand`
    (N, 4) uniform numbers drawn ahead replace the draw from `generator`.
    """
    n, _, h, w = x.shape
    rand = (torch.rand(n, 4, generator=generator) if rand is None else rand).to(x.device)
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


def only_bg_t_all(images: torch.Tensor, boxes: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Only-BG-T of every image, in chunks (the index tensors of one call grow with the batch)."""
    out = torch.empty_like(images)
    for k in range(0, len(images), chunk):
        out[k:k + chunk] = composite.only_bg_t_torch(images[k:k + chunk], boxes[k:k + chunk])
    return out


class BatchStream:
    """Shuffled mini-batches of an ImageSet on a device; deterministic per (seed, epoch).

    The set lives on the device when it fits `device_budget` (or `resident=True`); otherwise each
    batch is gathered on the host, pinned and copied while the previous batch trains.
    """

    def __init__(self, data: ImageSet, batch_size: int, device="cpu", train: bool = True,
                 mixed_rand: bool = False, rank: int = 0, world_size: int = 1, resident: bool | None = None) -> None:
        self.device = torch.device(device)
        if resident is None:
            nbytes = data.images.numel() + (0 if data.masks is None else data.masks.numel())
            resident = self.device.type == "cpu" or nbytes * (2 if mixed_rand else 1) <= device_budget(self.device)
        self.resident = resident
        self.data = data.to(self.device) if resident else data
        self.labels = self.data.labels.to(self.device)
        self.batch_size, self.train = batch_size, train
        self.rank, self.world_size = rank, world_size
        self.mixed_rand = mixed_rand
        if mixed_rand:
            if data.masks is None:
                raise ValueError("on-the-fly Mixed-Rand needs foreground masks (load with with_masks=True)")
            self.boxes = mask_boxes(self.data.masks)
            # every image's background, once, when the set is on the device; per batch when streaming
            self.only_bg_t = only_bg_t_all(self.data.images, self.boxes) if resident else None

    def __len__(self) -> int:
        per_rank = -(-len(self.data) // self.world_size)
        return -(-per_rank // self.batch_size)

    def _gather(self, idx: torch.Tensor, others: torch.Tensor | None):
        """A batch's images, masks and partner backgrounds (uint8) on the device."""
        def move(t: torch.Tensor) -> torch.Tensor:
            if self.resident:
                return t
            if self.device.type == "cuda":
                t = t.pin_memory()
            return t.to(self.device, non_blocking=True)

        images = move(self.data.images[idx])
        if others is None:
            return images, None, None
        if self.resident:
            return images, self.data.masks[idx], self.only_bg_t[others]
        backgrounds = composite.only_bg_t_torch(move(self.data.images[others]), self.boxes[others].to(self.device))
        return images, move(self.data.masks[idx]), backgrounds

    def epoch(self, seed: int, epoch: int):
        """Yield (float images in [0, 1], labels) for one epoch."""
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        n = len(self.data)
        order = torch.randperm(n, generator=gen) if self.train else torch.arange(n)
        order = order[self.rank::self.world_size]
        plan, draws = [], []  # drawn ahead in the order of a batch-by-batch loop, so prefetching changes nothing
        for k in range(0, len(order), self.batch_size):
            idx = order[k:k + self.batch_size]
            others = None
            if self.mixed_rand:
                others = torch.randint(0, n - 1, (len(idx),), generator=gen)
                others = others + (others >= idx).long()  # any other image, never itself
            plan.append((idx, others))
            draws.append(torch.rand(len(idx), 4, generator=gen) if self.train else None)
        where = (lambda t: t.to(self.device)) if self.resident else (lambda t: t)
        with ThreadPoolExecutor(1) as pool:
            ahead = None if self.resident else pool.submit(self._gather, *plan[0]) if plan else None
            for k, (idx, others) in enumerate(plan):
                if self.resident:
                    images, masks, backgrounds = self._gather(where(idx), None if others is None else where(others))
                else:
                    images, masks, backgrounds = ahead.result()
                    if k + 1 < len(plan):
                        ahead = pool.submit(self._gather, *plan[k + 1])
                if self.mixed_rand:
                    images = composite.paste_torch(images, masks, backgrounds)
                x = images.float().div_(255)
                if self.train:
                    x = augment(x, None, rand=draws[k])
                yield x, self.labels[idx.to(self.device)]
