"""GPU benchmarks in one command: data, training, the challenge, saliency, localization and the claims.

    python bench/gpu.py --out bench/results/gpu.json                     # everything, IN-9's size, 224 px
    python bench/gpu.py --stages data,challenge,saliency,localize --train-per-class 1000 --out part.json
    python bench/gpu.py --scale check --out /tmp/gpu-check.json          # the same code on a handful of images

Each stage runs in its own process (so its peak host memory is its own) and writes its numbers to
`WORK/stage-<name>.json`; the driver merges them, with `provenance` (the GPU's name, torch, the
commit), into `--out` after every stage, so a run cut short keeps what it measured. Stages:

- `data`: the synthetic IN-9 at full size (5045 train + 450 test images per class, 224 px) and all
  eight variants of its test split (exact masks); the training split is used as generated.
- `train`: images/s of bgrepro's decoded-once pipeline (ResNet-50, bf16, channels_last, the set on
  the GPU), of the same pipeline streaming batches from the host, of torchvision's ImageFolder +
  DataLoader (16 workers, same model, precision and augmentation) and of the same step on random
  tensors already on the GPU; decode time and peak memory.
- `claims`: the experiments of the BG-Gap and Mixed-Rand chapters at IN-9's size (a ResNet-50 trained
  on Original, and on Mixed-Rand composited on the fly, `--epochs` each), with each chapter's wall time.
- `challenge`: the backgrounds challenge of the Original-trained ResNet-50 on every test foreground
  against every test background (bgrepro's search, bf16 and fp32), and the official script's method on
  a stratified subset of foregrounds, scaled to the whole set (said so in the output), with the fp32
  fooled sets compared on that subset.
- `saliency`, `localize`: batched Grad-CAM maps/s; RPS estimation and map images/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

STAGES = ("data", "train", "claims", "challenge", "saliency", "localize")
#: Sizes per scale: full = IN-9's, check = a handful of images (the CPU test of this script).
SCALES = {
    "full": dict(size=224, train_per_class=5045, test_per_class=450, batch_size=256, steps=200, epochs=2,
                 reference_per_class=2, maps=1024, workers=16, challenge_per_class=0, variants="all"),
    "check": dict(size=64, train_per_class=4, test_per_class=2, batch_size=8, steps=2, epochs=1,
                  reference_per_class=1, maps=8, workers=2, challenge_per_class=0, variants="all"),
}


def _peaks(device) -> dict:
    import torch

    out = {"peak_host_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _config(args, variant: str = "original", on_the_fly: bool = False):
    from bgrepro.train import TrainConfig

    return TrainConfig(data=str(args.work / "variants"), variant=variant, on_the_fly=on_the_fly, arch=args.arch,
                       epochs=args.epochs, batch_size=args.batch_size, lr=0.1 * args.batch_size / 256,
                       weight_decay=1e-4, seed=0)


# ----------------------------------------------------------------------------- stages
def stage_data(args, device) -> dict:
    from bgrepro.build import build
    from bgrepro.sources import SyntheticSource
    from bgrepro.synth import SynthConfig, generate

    synth, variants = args.work / "synth", args.work / "variants"
    t0 = time.perf_counter()
    generate(synth, SynthConfig(size=args.size, train_per_class=args.train_per_class,
                                test_per_class=args.test_per_class, seed=0), progress=False)
    synth_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    from bgrepro.build import parse_variants
    from bgrepro.classes import VARIANTS

    chosen = VARIANTS if args.variants == "all" else parse_variants(args.variants)
    report = build(SyntheticSource(synth), variants, chosen, splits=("val",), progress=False)
    build_seconds = time.perf_counter() - t0
    # the training split as generated: the variants folder reads it through links (no copy)
    for part in ("original", "fg_mask"):
        link = variants / part / "train"
        if not link.exists():
            link.symlink_to((synth / part / "train").resolve(), target_is_directory=True)
    n = 9 * (args.train_per_class + args.test_per_class)
    return {"images": n, "size": args.size, "synth_seconds": round(synth_seconds, 1),
            "synth_images_per_second": round(n / synth_seconds, 1), "build_test_seconds": round(build_seconds, 1),
            "build_test_files": sum(report.counts.values())}


def stage_train(args, device) -> dict:
    import torch
    from train_throughput import make, step

    from bgrepro.datasets import BatchStream, load_variant

    cuda = device.type == "cuda"
    data_root = args.work / "variants"
    t0 = time.perf_counter()
    data = load_variant(data_root, "original", "train")
    decode = time.perf_counter() - t0
    out = {"arch": args.arch, "batch_size": args.batch_size, "steps": args.steps, "images": len(data),
           "image_size": int(data.images.shape[-1]), "precision": "bf16" if cuda else "fp32",
           "decode_seconds": round(decode, 1), "decoded_gb": round(data.images.numel() / 1e9, 2)}

    classes = len(data.classes)

    def timed(batches, warmup: int = 5) -> float:
        model, opt = make(args.arch, device, cuda, classes)
        seen, t = 0, None
        for k, (x, y) in enumerate(batches):
            if k == warmup:
                _sync(device)
                t, seen = time.perf_counter(), 0
            step(model, opt, x, y, cuda)
            seen += len(y)
            if k + 1 >= warmup + args.steps:
                break
        _sync(device)
        return seen / (time.perf_counter() - t)

    def epochs(stream):
        for e in range(1000):
            yield from stream.epoch(0, e)

    out["images_per_second"] = round(timed(epochs(BatchStream(data, args.batch_size, device=device))), 1)
    if cuda:
        out["peak_gpu_mb_resident"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        streaming = BatchStream(data, args.batch_size, device=device, resident=False)
        out["streaming_images_per_second"] = round(timed(epochs(streaming)), 1)
    x = torch.rand(args.batch_size, 3, args.size, args.size, device=device)
    y = torch.randint(0, classes, (args.batch_size,), device=device)
    out["gpu_only_images_per_second"] = round(timed((x, y) for _ in range(10**9)), 1)
    del data
    out["baseline_images_per_second"] = round(_baseline(args, device, timed), 1)
    out["baseline"] = f"torchvision ImageFolder + DataLoader, {args.workers} workers, pin_memory, same augmentation"
    out["ratio_vs_baseline"] = round(out["images_per_second"] / out["baseline_images_per_second"], 2)
    out["share_of_gpu_only"] = round(out["images_per_second"] / out["gpu_only_images_per_second"], 3)
    return out


def _baseline(args, device, timed) -> float:
    import torch
    import torchvision
    from torchvision.transforms import v2

    transform = v2.Compose([v2.ToImage(), v2.RandomAffine(0, translate=(0.125, 0.125)), v2.RandomHorizontalFlip(),
                            v2.ToDtype(torch.float32, scale=True)])
    dataset = torchvision.datasets.ImageFolder(args.work / "variants" / "original" / "train", transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                         num_workers=args.workers, pin_memory=device.type == "cuda",
                                         persistent_workers=True, prefetch_factor=4)

    def batches():
        while True:
            for x, y in loader:
                yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    return timed(batches())


def stage_claims(args, device) -> dict:
    from bgrepro.experiments import trained_model

    out = {"epochs": args.epochs, "note": f"{args.epochs} epochs per model (the full profile trains 30)"}
    for chapter, config in (("bg_gap", _config(args)), ("mixed_rand", _config(args, "mixed_rand", True))):
        t0 = time.perf_counter()
        record = trained_model(config, progress=False)
        acc = record.accuracy
        out[chapter] = {"seconds": round(time.perf_counter() - t0, 1), "train_seconds": record.train_seconds,
                        "accuracy": {k: round(100 * v, 2) for k, v in acc.items()},
                        "bg_gap": round(100 * record.bg_gap, 2),
                        "model": f"{args.arch} trained on {config.variant}"
                                 f"{' (on the fly)' if config.on_the_fly else ''}"}
    return out


def stage_challenge(args, device) -> dict:
    import torch

    from bgrepro.adversarial import challenge, challenge_reference, load_challenge_data
    from bgrepro.experiments import trained_model

    torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32 here (cuDNN would use TF32 for convolutions)
    record = trained_model(_config(args), progress=False)
    model = record.load(device)
    root = args.work / "variants"
    out = {"clean_accuracy": round(100 * record.accuracy["original"], 2)}
    precision = "bf16" if device.type == "cuda" else "fp32"  # the search's default on each device
    t0 = time.perf_counter()
    fgs, bgs = load_challenge_data(root)
    if args.challenge_per_class:  # a stratified share of the foregrounds, each against every background
        fgs = fgs.first_per_class(args.challenge_per_class)
    full = challenge(model, fgs, bgs, device=device, precision=precision, progress=False)
    _sync(device)
    seconds = time.perf_counter() - t0
    out.update({"precision": precision, "foregrounds": len(fgs), "backgrounds": len(bgs),
                "seconds": round(seconds, 2), "search_seconds": round(full.seconds, 2), "composites": full.composites,
                "composites_per_second": round(full.composites / full.seconds, 1),
                "challenge_accuracy": round(100 * full.challenge_accuracy, 2)})
    # the official method on a stratified subset (the first foregrounds of every class), and bgrepro in
    # fp32 on the same subset: the fooled sets must be identical
    everything = load_challenge_data(root)[0]
    subset = everything.first_positions(args.reference_per_class)
    reference = challenge_reference(model, root, device=device, subset=subset)
    sub = everything.subset(subset)
    exact = challenge(model, sub, bgs, device=device, precision="fp32", progress=False)
    per_fg = reference.seconds / len(subset)
    out["official_method"] = {
        "subset_foregrounds": len(subset), "subset_seconds": round(reference.seconds, 2),
        "seconds_scaled_to_all": round(per_fg * len(fgs), 1),
        "how": f"the official method (per foreground, every background read from disk, fp32, batches of 32) "
               f"timed on {len(subset)} foregrounds ({args.reference_per_class} per class) against all {len(bgs)} "
               f"backgrounds, scaled by {len(fgs)}/{len(subset)}",
        "composites_per_second": round(reference.composites / reference.seconds, 1)}
    out["speedup_vs_official"] = round(per_fg * len(fgs) / seconds, 1)
    out["fp32_subset"] = {"seconds": round(exact.seconds, 2),
                          "composites_per_second": round(exact.composites / exact.seconds, 1),
                          "speedup_vs_official_same_subset": round(reference.seconds / exact.seconds, 1)}
    out["fooled_sets_identical"] = exact.fooled_ids == reference.fooled_ids
    out["subset_fooled"] = f"{int(exact.fooled.sum())} of {len(subset)}"
    searched = dict(zip(full.fg_ids, full.fooled))
    out["default_precision_vs_fp32_on_subset_differing"] = int(sum(searched[i] != f for i, f in
                                                                   zip(exact.fg_ids, exact.fooled)))
    return out


def stage_saliency(args, device) -> dict:
    from bgrepro.datasets import load_variant
    from bgrepro.experiments import trained_model
    from bgrepro.saliency import gradcam

    model = trained_model(_config(args), progress=False).load(device)
    images = load_variant(args.work / "variants", "original", "val").images[:args.maps]
    gradcam(model, images[:8], batch_size=8, device=device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    gradcam(model, images, batch_size=128, device=device)
    _sync(device)
    return {"maps": len(images), "maps_per_second": round(len(images) / (time.perf_counter() - t0), 1),
            "batch_size": 128, "precision": "fp32"}


def stage_localize(args, device) -> dict:
    from bgrepro import localize
    from bgrepro.datasets import load_variant
    from bgrepro.experiments import trained_model

    checkpoint = trained_model(_config(args), progress=False).checkpoint
    net = localize.backbone(f"checkpoint:{checkpoint}").to(device)
    train = load_variant(args.work / "variants", "original", "train").images
    test = load_variant(args.work / "variants", "original", "val").images
    localize.estimate(net, train[:64], device=device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    rps = localize.estimate(net, train, device=device)
    estimate_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    localize.activation_maps(net, test, rps, device=device)
    maps_seconds = time.perf_counter() - t0
    return {"estimate_images": len(train), "estimate_images_per_second": round(len(train) / estimate_seconds, 1),
            "map_images": len(test), "map_images_per_second": round(len(test) / maps_seconds, 1)}


# ----------------------------------------------------------------------------- driver
def run_stage(name: str, args) -> None:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    os.environ.setdefault("BGREPRO_RESULTS", str(args.work / "results"))
    t0 = time.perf_counter()
    out = globals()[f"stage_{name}"](args, device)
    out["stage_seconds"] = round(time.perf_counter() - t0, 1)
    out.update(_peaks(device))
    (args.work / f"stage-{name}.json").write_text(json.dumps(out, indent=2) + "\n")


def provenance(commit: str | None) -> dict:
    import platform

    import torch

    cuda = torch.cuda.is_available()
    if commit is None:
        try:
            commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                    cwd=BENCH).stdout.strip() or None
        except OSError:
            commit = None
    return {"device": torch.cuda.get_device_name(0) if cuda else f"cpu ({os.cpu_count()} cores)",
            "torch": torch.__version__, "commit": commit, "python": platform.python_version(),
            "cpu_cores": os.cpu_count(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "gpu.json")
    ap.add_argument("--work", type=Path, default=Path("results/bench-gpu"))
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--scale", choices=tuple(SCALES), default="full")
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--commit", default=None, help="the commit measured (default: git rev-parse HEAD)")
    ap.add_argument("--merge", action="store_true", help="keep the stages already in --out that this run skips")
    ap.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage in this process
    for key, value in SCALES["full"].items():  # sizes; the scale gives the ones not set
        ap.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None)
    args = ap.parse_args(argv)
    for key, value in SCALES[args.scale].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.stage:
        run_stage(args.stage, args)
        return 0
    stages = [s for s in args.stages.split(",") if s]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        ap.error(f"unknown stage {unknown[0]!r}; choose from {', '.join(STAGES)}")
    result = json.loads(args.out.read_text()) if args.merge and args.out.exists() else {}
    result["provenance"] = provenance(args.commit)
    result.setdefault("scale", {})[",".join(stages)] = {k: getattr(args, k) for k in SCALES["full"]}
    for name in stages:
        print(f"[bench-gpu] {name} ...", flush=True)
        t0 = time.perf_counter()
        forwarded = [a for a in (argv if argv is not None else sys.argv[1:])]
        proc = subprocess.run([sys.executable, __file__, *forwarded, "--stage", name])
        if proc.returncode != 0:
            result[name] = {"error": f"stage failed with exit code {proc.returncode}"}
        else:
            result[name] = json.loads((args.work / f"stage-{name}.json").read_text())
        print(f"[bench-gpu] {name}: {time.perf_counter() - t0:.0f} s: {json.dumps(result[name])[:400]}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all("error" not in result[s] for s in stages) else 1


if __name__ == "__main__":
    sys.exit(main())
