"""Throughput of `bgrepro build`: source images/s with 1 and N workers, as a ratio in one run.

Two workloads: the smoke synthetic set (all eight variants, PNG) and the GrabCut path (an
ImageNet-style fixture of 320x272 photos with Pascal VOC boxes -> resize 256, crop 224, GrabCut,
all eight variants as JPEG).

    python bench/build_throughput.py [--profile smoke] [--photos-per-class 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from bgrepro.data.build import build
from bgrepro.data.sources import ImageNetSource, SyntheticSource
from bgrepro.data.synth import SynthConfig, generate, render_sample
from bgrepro.in9 import CLASS_FOLDERS


def make_photos(root: Path, per_class: int) -> None:
    """ImageNet-style fixture: val/<class>/<id>.JPEG + Annotation/<class>/<id>.xml."""
    for c, folder in enumerate(CLASS_FOLDERS):
        (root / "val" / folder).mkdir(parents=True, exist_ok=True)
        (root / "Annotation" / folder).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            image, mask, _, _ = render_sample(c, c, 256, np.random.default_rng([c, k]))
            image = cv2.resize(image, (320, 272), interpolation=cv2.INTER_LINEAR)
            mask = cv2.resize(mask.astype(np.uint8), (320, 272), interpolation=cv2.INTER_NEAREST)
            ys, xs = np.nonzero(mask)
            Image.fromarray(image).save(root / "val" / folder / f"p{c}_{k}.JPEG", quality=95)
            (root / "Annotation" / folder / f"p{c}_{k}.xml").write_text(
                f"<annotation><size><width>320</width><height>272</height></size><object><bndbox>"
                f"<xmin>{xs.min()}</xmin><ymin>{ys.min()}</ymin><xmax>{xs.max()}</xmax><ymax>{ys.max()}</ymax>"
                "</bndbox></object></annotation>")


def timed_build(source, out: Path, workers: int) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    report = build(source, out, workers=workers, progress=False)
    seconds = time.perf_counter() - t0
    return seconds, sum(n for (v, _), n in report.counts.items() if v == "original") + sum(report.rejections.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--photos-per-class", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate(tmp / "synth", SynthConfig.from_profile(args.profile), progress=False)
        make_photos(tmp / "photos", args.photos_per_class)
        workloads = {
            f"synthetic {args.profile} (PNG, 8 variants)": SyntheticSource(tmp / "synth"),
            "GrabCut photos 320x272 -> 224 (JPEG, 8 variants)":
                ImageNetSource(tmp / "photos", tmp / "photos" / "Annotation"),
        }
        for name, source in workloads.items():
            rates = {}
            for w in (1, args.workers):
                seconds, n = timed_build(source, tmp / "out", w)
                rates[w] = n / seconds
                print(f"{name}: {w} worker(s): {n} source images in {seconds:.1f}s = {rates[w]:.1f} images/s "
                      f"({9 * rates[w]:.0f} files/s)")
            print(f"{name}: speed-up {args.workers} vs 1 workers = {rates[args.workers] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
