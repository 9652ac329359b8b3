"""Grad-CAM throughput: batched captum LayerGradCam vs a per-image loop, same model and images, one run.

Also times the one-pass RPS estimation (images/s) on the training set, and RPS mask writing
(`masks.write_masks`, the `localize --write-masks` path) batched against one image at a time
(batch size 1: the tool's rate before batching), on the Original test images' class folders.

    python bench/saliency_throughput.py --data data/variants-smoke --checkpoint results/runs/<hash>/checkpoint.pt
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bgrepro.analyses import masks, rps
from bgrepro.analyses.saliency import gradcam
from bgrepro.book.experiments import model_for_bench
from bgrepro.data.datasets import load_variant


def main() -> None:
    args, loaded, device = model_for_bench(description=__doc__.split("\n")[0], **{
        "--images": dict(type=int, default=256, help="images for the per-image loop (and the batched run)"),
        "--batch-size": dict(type=int, default=128)})
    model, meta = loaded.net, loaded.meta
    images = load_variant(args.data, "original", "val").images[:args.images]
    print(f"model {meta['arch']}, {len(images)} images of {tuple(images.shape[2:])}, device {device}")
    gradcam(model, images[:8], batch_size=8)  # warm-up
    t0 = time.perf_counter()
    loop = torch.cat([gradcam(model, images[i:i + 1], batch_size=1) for i in range(len(images))])
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    batched = gradcam(model, images, batch_size=args.batch_size)
    t_batch = time.perf_counter() - t0
    print(f"per-image loop: {len(images) / t_loop:.0f} maps/s; batched ({args.batch_size}): "
          f"{len(images) / t_batch:.0f} maps/s; ratio {t_loop / t_batch:.2f}x; "
          f"max difference {float((loop - batched).abs().max()):.2e}")
    train = load_variant(args.data, "original", "train").images
    net = loaded.trunk()
    t0 = time.perf_counter()
    rps.estimate(net, train, device=device)
    seconds = time.perf_counter() - t0
    print(f"RPS w* estimation: one pass over {len(train)} images in {seconds:.2f} s "
          f"({len(train) / seconds:.0f} images/s)")
    predictor = rps.estimate(net, train, device=device)
    folder = args.data / "original" / "val"
    side = int(images.shape[-1])
    rates, written = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (1, 64):
            t0 = time.perf_counter()
            masks.write_masks(net, predictor, folder, Path(tmp) / str(batch), side, progress=False, batch_size=batch)
            rates[batch] = sum(1 for _ in folder.rglob("*.*")) / (time.perf_counter() - t0)
            written[batch] = {p.relative_to(Path(tmp) / str(batch)): np.load(p)
                              for p in (Path(tmp) / str(batch)).rglob("*.npy")}
        same = sum(k in written[64] and np.array_equal(v, written[64][k]) for k, v in written[1].items())
    print(f"RPS masks: one image at a time {rates[1]:.0f} images/s; batched (64) {rates[64]:.0f} images/s; "
          f"ratio {rates[64] / rates[1]:.1f}x; {same} of {len(written[1])} masks identical")


if __name__ == "__main__":
    main()
