"""GPU benchmarks in one command: data, training, the challenge, saliency, localization and the claims.

    python bench/gpu.py --out bench/results/gpu.json                     # everything, IN-9's size, 224 px
    python bench/gpu.py --stages data,challenge,saliency,localize --train-per-class 1000 --out part.json
    python bench/gpu.py --scale check --out /tmp/gpu-check.json          # the same code on a handful of images
    python bench/gpu.py --lease --out $OUT/gpu.json                      # one GPU lease: at most --budget seconds
    python bench/gpu.py --lease --scale check --out /tmp/lease.json      # its rehearsal on the CPU

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

`--lease` fits everything into one command of `--budget` seconds (530 by default: one command of at most
9 minutes on one H100, leaving a lent machine's 15 minutes room for a second try). Its sizes are IN-9's
test set (450 images per class, 224 px, all eight variants) and 1,000 training images per class; every
stage gets the time left before the deadline: `claims` trains the Original ResNet-50 for as many epochs as
a fifth of the time left allows at the rate it measures first, `challenge` searches every test
foreground against every Only-BG-T test background in fp32 (TF32 off) until a minute before the deadline
(saying how many foregrounds it left undecided, if any) and times where its time goes (decoding, the
forward pass alone), `mixed_rand` trains the Mixed-Rand model only if the same epochs still fit, then
`saliency` and `localize`. A stage that overruns the deadline is stopped and recorded as such.
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
#: What one lease measures, in this order (the most wanted first: the challenge before Mixed-Rand).
LEASE_STAGES = ("data", "claims", "challenge", "mixed_rand", "saliency", "localize")
#: Seconds the lease keeps for the stages after the challenge (saliency, localize, process start-ups).
LEASE_RESERVE = 60
#: Sizes per scale: full = IN-9's, check = a handful of images (the CPU test of this script).
SCALES = {
    "full": dict(size=224, train_per_class=5045, test_per_class=450, batch_size=256, steps=200, epochs=2,
                 reference_per_class=2, maps=1024, workers=16, challenge_per_class=0, variants="all"),
    "check": dict(size=64, train_per_class=4, test_per_class=2, batch_size=8, steps=2, epochs=1,
                  reference_per_class=1, maps=8, workers=2, challenge_per_class=0, variants="all"),
}
#: The lease's sizes (`--lease`): IN-9's test set, a training set that fits, epochs from the budget (0).
LEASE = dict(size=224, train_per_class=1000, test_per_class=450, batch_size=256, steps=30, epochs=0,
             reference_per_class=1, maps=1024, workers=16, challenge_per_class=0, variants="all")


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
    from bgrepro.training.classifier import TrainConfig

    return TrainConfig(data=str(args.work / "variants"), variant=variant, on_the_fly=on_the_fly, arch=args.arch,
                       epochs=args.epochs, batch_size=args.batch_size, lr=0.1 * args.batch_size / 256,
                       weight_decay=1e-4, seed=0)


# ----------------------------------------------------------------------------- stages
def stage_data(args, device) -> dict:
    from bgrepro.data.build import build
    from bgrepro.data.sources import SyntheticSource
    from bgrepro.data.synth import SynthConfig, generate

    synth, variants = args.work / "synth", args.work / "variants"
    t0 = time.perf_counter()
    generate(synth, SynthConfig(size=args.size, train_per_class=args.train_per_class,
                                test_per_class=args.test_per_class, seed=0), progress=False)
    synth_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    from bgrepro.variants import parse as parse_variants

    chosen = parse_variants(args.variants)
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

    from bgrepro.data.datasets import BatchStream, load_variant

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


def _remaining(args) -> float:
    """Seconds left before the lease's deadline (infinite without one)."""
    return args.deadline - time.time() if args.deadline else float("inf")


def _train_rate(args, device) -> tuple[float, int]:
    """(images/s of a short training probe of the lease's model and batch, training images)."""
    import torch
    from train_throughput import make, step

    from bgrepro.data.datasets import BatchStream, load_variant

    data = load_variant(args.work / "variants", "original", "train")
    cuda = device.type == "cuda"
    model, opt = make(args.arch, device, cuda, len(data.classes))
    stream = BatchStream(data, args.batch_size, device=device)
    seen, t0 = 0, None
    for k, (x, y) in enumerate(stream.epoch(0, 0)):
        if k == 2:
            _sync(device)
            t0, seen = time.perf_counter(), 0
        step(model, opt, x, y, cuda)
        seen += len(y)
        if k + 1 >= 2 + args.steps:
            break
    _sync(device)
    rate = seen / (time.perf_counter() - t0) if t0 and seen else 1.0
    del model, opt, stream
    if cuda:
        torch.cuda.empty_cache()
    return rate, len(data)


def _lease_epochs(args, device, share: float) -> dict:
    """Epochs that fit `share` of the time left, at the rate measured now (1 to --max-epochs)."""
    rate, images = _train_rate(args, device)
    left = _remaining(args)
    fit = int(share * left * rate / images) if left != float("inf") else args.max_epochs
    return {"epochs": max(1, min(args.max_epochs, fit)), "probe_images_per_second": round(rate, 1),
            "train_images": images, "seconds_left_when_planned": round(left, 1), "share_of_time_left": share}


def _claim(args, config) -> dict:
    from bgrepro.book.experiments import trained_model

    t0 = time.perf_counter()
    record = trained_model(config, progress=False)
    return {"seconds": round(time.perf_counter() - t0, 1), "train_seconds": record.train_seconds,
            "epochs": config.epochs, "final_train_accuracy": record.record.metrics.get("final_train_accuracy"),
            "accuracy": {k: round(100 * v, 2) for k, v in record.accuracy.items()},
            "bg_gap": round(100 * record.bg_gap, 2),
            "test_images_per_variant": record.record.metrics["evaluation"].get("n"),
            "model": f"{args.arch} trained on {config.variant}{' (on the fly)' if config.on_the_fly else ''}"}


def stage_claims(args, device) -> dict:
    if args.lease:  # the Original model alone, for as many epochs as a fifth of the time left allows
        plan = _lease_epochs(args, device, 0.2)
        args.epochs = plan["epochs"]
        (args.work / "lease-epochs.json").write_text(json.dumps(plan) + "\n")
        return {"plan": plan, "bg_gap": _claim(args, _config(args))}
    out = {"epochs": args.epochs, "note": f"{args.epochs} epochs per model (the full profile trains 30)"}
    for chapter, config in (("bg_gap", _config(args)), ("mixed_rand", _config(args, "mixed_rand", True))):
        out[chapter] = _claim(args, config)
    return out


def stage_mixed_rand(args, device) -> dict:
    """The lease's Mixed-Rand model (composited on the fly), with the Original model's epochs, if they fit."""
    plan = json.loads((args.work / "lease-epochs.json").read_text())
    args.epochs = plan["epochs"]
    needed = plan["epochs"] * plan["train_images"] / plan["probe_images_per_second"] * 1.3 + 30
    if needed > _remaining(args) - 30:
        return {"skipped": f"{plan['epochs']} epochs need about {needed:.0f} s; {_remaining(args):.0f} s were left"}
    return {"mixed_rand": _claim(args, _config(args, "mixed_rand", True))}


def stage_challenge(args, device) -> dict:
    import torch

    from bgrepro.analyses.adversarial import SearchSettings, challenge, challenge_reference, load_challenge_data
    from bgrepro.book.experiments import trained_model
    from bgrepro.inference import Inference

    torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32 here (cuDNN would use TF32 for convolutions)
    torch.backends.cuda.matmul.allow_tf32 = False
    if args.lease:
        args.epochs = json.loads((args.work / "lease-epochs.json").read_text())["epochs"]
    record = trained_model(_config(args), progress=False)
    model = record.load(device)
    root = args.work / "variants"
    out = {"clean_accuracy": round(100 * record.accuracy["original"], 2), "model_epochs": args.epochs}
    # the lease asks for fp32 (the paper's number); the full benchmark times the search's bf16 on CUDA
    precision = "fp32" if args.lease or device.type != "cuda" else "bf16"
    t0 = time.perf_counter()
    fgs, bgs = load_challenge_data(root, stream=False)  # decoded up front: load_seconds holds all decoding
    load_seconds = time.perf_counter() - t0
    if args.challenge_per_class:  # a stratified share of the foregrounds, each against every background
        fgs = fgs.first_per_class(args.challenge_per_class)
    # the time left, less what the later stages and the official method's subset (~20 s a foreground) need
    reference_seconds = 20 * args.reference_per_class * len(fgs.classes)
    left = _remaining(args)
    limit = left - min(LEASE_RESERVE + reference_seconds, 0.4 * left) if args.deadline else None
    full = challenge(model, fgs, bgs, inference=Inference.at(device, precision), progress=False,
                     settings=SearchSettings(time_limit=limit))
    _sync(device)
    seconds = time.perf_counter() - t0
    out.update({"precision": precision, "tf32": False, "foregrounds": len(fgs), "backgrounds": len(bgs),
                "seconds": round(seconds, 2), "search_seconds": round(full.seconds, 2), "composites": full.composites,
                "load_seconds": round(load_seconds, 2),
                "composites_per_second": round(full.composites / full.seconds, 1),
                "challenge_accuracy": round(100 * full.challenge_accuracy, 2),
                "complete": full.undecided == 0, "undecided_foregrounds": full.undecided,
                "time_limit_seconds": None if limit is None else round(limit, 1),
                "fooled_ids": full.fooled_ids if args.lease else None,
                "forward_only_images_per_second": round(_forward_rate(model, fgs.images, device, precision), 1)})
    out["search_share_of_forward_rate"] = round(out["composites_per_second"] / out["forward_only_images_per_second"],
                                                3)
    # the official method on a stratified subset (the first foregrounds of every class), and bgrepro in
    # fp32 on the same subset: the fooled sets must be identical
    everything = load_challenge_data(root)[0]
    subset = everything.first_positions(args.reference_per_class)
    reference = challenge_reference(model, root, device=device, subset=subset)
    sub = everything.subset(subset)
    exact = challenge(model, sub, bgs, inference=Inference.at(device, "fp32"), progress=False)
    per_fg = reference.seconds / len(subset)
    out["official_method"] = {
        "subset_foregrounds": len(subset), "subset_seconds": round(reference.seconds, 2),
        "seconds_scaled_to_all": round(per_fg * len(fgs), 1),
        "how": f"the official method (per foreground, every background read from disk, fp32, batches of 32) "
               f"timed on {len(subset)} foregrounds ({args.reference_per_class} per class) against all {len(bgs)} "
               f"backgrounds, scaled by {len(fgs)}/{len(subset)}",
        "composites_per_second": round(reference.composites / reference.seconds, 1)}
    out["speedup_vs_official"] = round(per_fg * len(fgs) / seconds, 1) if full.undecided == 0 else None
    out["fp32_subset"] = {"seconds": round(exact.seconds, 2),
                          "composites_per_second": round(exact.composites / exact.seconds, 1),
                          "speedup_vs_official_same_subset": round(reference.seconds / exact.seconds, 1)}
    out["fooled_sets_identical"] = exact.fooled_ids == reference.fooled_ids
    out["subset_fooled"] = f"{int(exact.fooled.sum())} of {len(subset)}"
    searched = dict(zip(full.fg_ids, full.fooled))
    out["default_precision_vs_fp32_on_subset_differing"] = int(sum(searched[i] != f for i, f in
                                                                   zip(exact.fg_ids, exact.fooled)))
    return out


def _forward_rate(model, images, device, precision: str) -> float:
    """Images/s of the model's forward pass alone on batches already on the device (the challenge's bound)."""
    from bgrepro.inference import Inference

    inference = Inference.at(device, precision)
    net = inference.prepare(model)
    import torch

    x = inference.floats(images[:inference.batch_size].to(inference.device))
    with torch.inference_mode(), inference.autocast():
        net(x)
        _sync(inference.device)
        t0, runs = time.perf_counter(), 0
        while time.perf_counter() - t0 < 2.0 or runs < 2:
            net(x)
            runs += 1
        _sync(inference.device)
    return runs * len(x) / (time.perf_counter() - t0)


def stage_saliency(args, device) -> dict:
    from bgrepro.analyses.saliency import gradcam
    from bgrepro.book.experiments import trained_model
    from bgrepro.data.datasets import load_variant

    _lease_model_epochs(args)
    model = trained_model(_config(args), progress=False).load(device)
    images = load_variant(args.work / "variants", "original", "val").images[:args.maps]
    gradcam(model, images[:8], batch_size=8, device=device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    gradcam(model, images, batch_size=128, device=device)
    _sync(device)
    return {"maps": len(images), "maps_per_second": round(len(images) / (time.perf_counter() - t0), 1),
            "batch_size": 128, "precision": "fp32"}


def _lease_model_epochs(args) -> None:
    """Under --lease, the Original model is the one `claims` trained (its epochs were planned there)."""
    if args.lease:
        args.epochs = json.loads((args.work / "lease-epochs.json").read_text())["epochs"]


def stage_localize(args, device) -> dict:
    from bgrepro import registry
    from bgrepro.analyses import rps
    from bgrepro.book.experiments import trained_model
    from bgrepro.data.datasets import load_variant

    _lease_model_epochs(args)
    checkpoint = trained_model(_config(args), progress=False).checkpoint
    net = registry.load(checkpoint).trunk().to(device)
    train = load_variant(args.work / "variants", "original", "train").images
    test = load_variant(args.work / "variants", "original", "val").images
    rps.estimate(net, train[:64], device=device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    predictor = rps.estimate(net, train, device=device)
    estimate_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    rps.activation_maps(net, test, predictor, device=device)
    maps_seconds = time.perf_counter() - t0
    return {"estimate_images": len(train), "estimate_images_per_second": round(len(train) / estimate_seconds, 1),
            "map_images": len(test), "map_images_per_second": round(len(test) / maps_seconds, 1)}


# ----------------------------------------------------------------------------- driver
#: A stage that never ends (a name; tests only): the lease's deadline must stop it and keep what came before.
STALL_ENV = "BGREPRO_BENCH_STALL"


def run_stage(name: str, args) -> None:
    if os.environ.get(STALL_ENV) == name:
        time.sleep(3600)
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
    ap.add_argument("--stages", default=None, help=f"comma list (default: {','.join(STAGES)}; with --lease: "
                    f"{','.join(LEASE_STAGES)})")
    ap.add_argument("--scale", choices=tuple(SCALES), default=None,
                    help="sizes: full (IN-9's; the default), check (a handful of images); --lease has its own")
    ap.add_argument("--lease", action="store_true",
                    help="everything in one command of --budget seconds on one GPU (see the module's docstring)")
    ap.add_argument("--budget", type=float, default=530.0, help="--lease: seconds for the whole command")
    ap.add_argument("--max-epochs", type=int, default=30, help="--lease: most epochs a model is trained")
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--commit", default=None, help="the commit measured (default: git rev-parse HEAD)")
    ap.add_argument("--merge", action="store_true", help="keep the stages already in --out that this run skips")
    ap.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage in this process
    ap.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)  # internal: the lease's end
    for key, value in SCALES["full"].items():  # sizes; the scale gives the ones not set
        ap.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None)
    args = ap.parse_args(argv)
    sizes = SCALES[args.scale] if args.scale else LEASE if args.lease else SCALES["full"]
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.stage:
        run_stage(args.stage, args)
        return 0
    stages = [s for s in (args.stages or ",".join(LEASE_STAGES if args.lease else STAGES)).split(",") if s]
    unknown = [s for s in stages if s not in (*STAGES, "mixed_rand")]
    if unknown:
        ap.error(f"unknown stage {unknown[0]!r}; choose from {', '.join(STAGES)} (and mixed_rand with --lease)")
    if "mixed_rand" in stages and not args.lease:
        ap.error("the mixed_rand stage is the lease's (the claims stage trains Mixed-Rand otherwise)")
    deadline = time.time() + args.budget if args.lease else None
    result = json.loads(args.out.read_text()) if args.merge and args.out.exists() else {}
    result["provenance"] = provenance(args.commit)
    result.setdefault("scale", {})[",".join(stages)] = {k: getattr(args, k) for k in SCALES["full"]}
    if args.lease:
        result["lease"] = {"budget_seconds": args.budget, "stages": stages, "started": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    forwarded = list(argv if argv is not None else sys.argv[1:])
    if deadline:
        forwarded += ["--deadline", repr(deadline)]
    for name in stages:
        print(f"[bench-gpu] {name} ...", flush=True)
        t0 = time.perf_counter()
        left = deadline - time.time() if deadline else None
        if left is not None and left < 5:
            result[name] = {"error": "not started: the lease's budget was spent"}
        else:
            try:
                proc = subprocess.run([sys.executable, __file__, *forwarded, "--stage", name], timeout=left)
                code = proc.returncode
            except subprocess.TimeoutExpired:
                code = None
            if code is None:
                result[name] = {"error": f"stopped at the lease's deadline after {time.perf_counter() - t0:.0f} s"}
            elif code != 0:
                result[name] = {"error": f"stage failed with exit code {code}"}
            else:
                result[name] = json.loads((args.work / f"stage-{name}.json").read_text())
        print(f"[bench-gpu] {name}: {time.perf_counter() - t0:.0f} s: {json.dumps(result[name])[:400]}", flush=True)
        if args.lease:
            result["lease"]["seconds"] = round(args.budget - (deadline - time.time()), 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all("error" not in result[s] for s in stages) else 1


if __name__ == "__main__":
    sys.exit(main())
