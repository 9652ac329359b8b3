"""Training throughput: bgrepro's cached on-device pipeline vs a plain ImageFolder + DataLoader loop.

Same model, data, batch size, optimizer and augmentation (random shift/zoom and flip), same
device, in one process; reports images/s of each and their ratio. The baseline decodes every
image from disk each epoch and augments on the CPU (torchvision transforms); bgrepro decodes once
into a uint8 tensor (decode time included in its first epoch) and augments on the device.

    python bench/train_throughput.py --data data/variants-smoke --arch smallcnn --epochs 3
    python bench/train_throughput.py --data data/variants-full --arch resnet50 --batch-size 256   # on a GPU
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torchvision.transforms import v2

from bgrepro import layout
from bgrepro.data.datasets import BatchStream, load_variant
from bgrepro.inference import default_device
from bgrepro.registry import create_model


def step(model, opt, x, y, cuda: bool) -> None:
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        loss = F.cross_entropy(model(x).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def make(arch: str, device, cuda: bool, num_classes: int):
    torch.manual_seed(0)
    model = create_model(arch, num_classes).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def baseline(data: Path, arch: str, epochs: int, batch_size: int, workers: int, device) -> float:
    cuda = device.type == "cuda"
    size = torchvision.io.decode_image(str(next((data / "original" / "train").rglob("*.*")))).shape[-1]
    transform = v2.Compose([v2.ToImage(), v2.RandomAffine(0, translate=(0.0625, 0.0625), scale=(0.85, 1.0)),
                            v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
                            v2.Resize(size, antialias=True)])
    dataset = torchvision.datasets.ImageFolder(data / "original" / "train", transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         pin_memory=cuda, persistent_workers=workers > 0)
    model, opt = make(arch, device, cuda, len(dataset.classes))
    seen, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            step(model, opt, x.to(device, non_blocking=True), y.to(device, non_blocking=True), cuda)
            seen += len(y)
    if cuda:
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - t0)


def cached_pipeline(data: Path, arch: str, epochs: int, batch_size: int, device) -> tuple[float, float]:
    cuda = device.type == "cuda"
    model, opt = make(arch, device, cuda, len(layout.class_folders(data)))
    t0 = time.perf_counter()
    stream = BatchStream(load_variant(data, "original", "train"), batch_size, device=device)
    decode = time.perf_counter() - t0
    seen = 0
    for epoch in range(epochs):
        for x, y in stream.epoch(0, epoch):
            step(model, opt, x, y, cuda)
            seen += len(y)
    if cuda:
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    return seen / total, seen / (total - decode)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--arch", default="smallcnn")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--loader-workers", default="0,2", help="DataLoader worker counts for the baseline")
    args = ap.parse_args()
    device = default_device()
    print(f"device {device}, arch {args.arch}, {args.epochs} epochs, batch {args.batch_size}")
    base = {}
    for w in (int(v) for v in args.loader_workers.split(",")):
        base[w] = baseline(args.data, args.arch, args.epochs, args.batch_size, w, device)
        print(f"ImageFolder + DataLoader ({w} workers): {base[w]:.0f} images/s")
    with_decode, steady = cached_pipeline(args.data, args.arch, args.epochs, args.batch_size, device)
    print(f"bgrepro cached on-device: {with_decode:.0f} images/s including decoding ({steady:.0f} after it)")
    best = max(base.values())
    print(f"ratio vs the best baseline: {with_decode / best:.2f}x (after decoding: {steady / best:.2f}x)")


if __name__ == "__main__":
    main()
