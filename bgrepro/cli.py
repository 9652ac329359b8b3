"""The `bgrepro` command line: one subcommand per stage."""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import logging
import math
import os
import signal
import sys
import time
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path

from . import layout
from .profiles import PROFILES
from .variants import ONLY_BG_T, ORIGINAL


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the option and what is wrong), exit code 2."""

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message}\n")


#: The largest count or seed an option takes (numpy and torch seed with at most 64 bits; no count of
#: images, epochs or workers comes near it).
_MAX_INT = 2**32 - 1


def _integer(low: int, what: str, high: int = _MAX_INT):
    """An option's integer in [low, high] (`what` says the lower bound in words)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
        if value > high:
            shown = text if len(text) < 24 else text[:20] + "..."
            raise argparse.ArgumentTypeError(f"must be at most {high:,}, got {shown}")
        return value
    return parse


_non_negative, _positive = _integer(0, "non-negative"), _integer(1, "positive")
#: Resamples of a bootstrap: 100,000 at most (beyond, the interval's own noise is far below its width, and
#: the resamples of a large test set would not fit in memory); `_resamples` cannot be turned off.
_bootstrap, _resamples = _integer(0, "non-negative", 100_000), _integer(1, "positive", 100_000)
#: How many seeds each model is trained with: 50 at most (each seed is two whole trainings).
_seeds = _integer(1, "positive", 50)
#: An image side in pixels.
_side = _integer(8, "at least 8 (pixels)")


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _number(inside, what: str):
    """An option's finite number for which `inside(value)` holds (`what` says the range in words)."""
    def parse(text: str) -> float:
        value = _finite(text)
        if not inside(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
        return value
    return parse


_positive_float = _number(lambda v: v > 0, "positive")
_non_negative_float = _number(lambda v: v >= 0, "non-negative")
_fraction = _number(lambda v: 0.0 <= v <= 1.0, "in [0, 1]")


def _triple(text: str) -> tuple[float, float, float]:
    """Three finite numbers R,G,B (mean or std of a model's normalisation)."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"must be three numbers R,G,B, got {text!r}")
    return tuple(_finite(p) for p in parts)


def _device(text: str) -> str:
    """A torch device that exists on this machine (cpu, cuda, cuda:N, mps)."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: no CUDA device on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA devices")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: no MPS device on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"unsupported device {text!r} (use cpu, cuda or cuda:N)")
    return text


def _add_synth(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="generate the synthetic IN-9 (the embedded default dataset)",
        description="Write the synthetic IN-9 in the official layout: original/{train,val}/<class>/, "
        "fg_mask/{train,val}/<class>/*.npy, annotations.csv. Resumable and deterministic.",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--profile", choices=sorted(PROFILES), default=None,
                   help="scale (default: $BGREPRO_PROFILE or smoke)")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--correlation", type=_fraction, default=None,
                   help="class-habitat correlation R in [0, 1] (default: the calibrated value)")
    p.add_argument("--size", type=_non_negative, default=None, help="image side in pixels")
    p.add_argument("--train-per-class", type=_non_negative, default=None)
    p.add_argument("--test-per-class", type=_non_negative, default=None)
    p.add_argument("--format", choices=("png", "jpeg"), default="png", help="image format (default png)")
    p.add_argument("--workers", type=_non_negative, default=None, help="processes (default: all cores)")
    p.add_argument("--preview", action="store_true",
                   help="also write preview.png (one row per class: image, mask, habitat) "
                   "and habitats.png into --out")
    p.add_argument("--overwrite", action="store_true", help="replace an --out that holds another synthetic dataset")
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from .data.synth import SynthConfig, generate
    from .in9 import CLASS_FOLDERS

    config = SynthConfig.from_profile(
        args.profile, seed=args.seed, correlation=args.correlation, size=args.size,
        train_per_class=args.train_per_class, test_per_class=args.test_per_class, fmt=args.format,
    )
    t0 = time.perf_counter()
    generate(args.out, config, workers=args.workers or None, overwrite=args.overwrite)
    seconds = time.perf_counter() - t0
    n = len(CLASS_FOLDERS) * (config.train_per_class + config.test_per_class)
    print(f"wrote {n} images ({config.size}px) to {args.out} in {seconds:.1f}s ({n / seconds:.0f} images/s)")
    if args.preview:
        from .data.previews import habitat_gallery, synth_preview

        split = "val" if config.test_per_class else "train"
        synth_preview(args.out, split=split, out=args.out / "preview.png")
        habitat_gallery(size=max(config.size, 64), seed=config.seed, out=args.out / "habitats.png")
        print(f"preview: {args.out / 'preview.png'}, {args.out / 'habitats.png'}")
    return 0


def _add_build(sub) -> None:
    p = sub.add_parser(
        "build",
        help="materialise IN-9 variants of a source in the official layout",
        description="Write DIR/<variant>/<split>/<class>/<id>, DIR/fg_mask/, DIR/manifest.csv and "
        "DIR/rejections.csv. Parallel, resumable (run the same command again after an interruption).",
    )
    p.add_argument("--source", required=True, choices=("synthetic", "in9", "imagenet", "folder"))
    p.add_argument("--in", dest="src", type=Path, required=True, help="the source folder")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    from .variants import NAMES

    p.add_argument("--variants", default="all", help=f"all, or a comma list of: {', '.join(NAMES)}")
    p.add_argument("--splits", default=None, help="comma list of train,val (default: all the source has)")
    p.add_argument("--seed", type=_non_negative, default=0, help="seed of the Mixed-* pairings")
    p.add_argument("--workers", type=_non_negative, default=None, help="processes (default: all cores)")
    p.add_argument("--format", choices=("png", "jpeg"), default=None,
                   help="output format (default: png for synthetic, jpeg for photo sources)")
    p.add_argument("--boxes", type=Path, default=None,
                   help="imagenet: folder of Pascal VOC XMLs; folder: CSV of path,xmin,ymin,xmax,ymax")
    p.add_argument("--masks", type=Path, default=None, help="folder: mirror tree of masks (PNG or NPY)")
    from .data.sources import PAPER_FILTERS

    for key, default in PAPER_FILTERS.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=_fraction, default=None,
                       help=f"imagenet/folder with boxes: the paper's filter threshold (default {default})")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="folder without train/ and val/: this share of each class becomes val (seeded by --seed), "
                        "the rest train")
    p.add_argument("--in9l", action="store_true", help="imagenet: IN-9L, every image of the 370 IN-9 classes "
                   "resized 256 and cropped 224, no box needed (Original only)")
    p.add_argument("--missing-masks", choices=("error", "reject"), default="error",
                   help="folder: an image without a mask stops the build (error) or is rejected as no_mask")
    p.add_argument("--size", type=_side, default=224, help="folder/imagenet: output side (default 224)")
    p.add_argument("--fg-masks", choices=("exact", "grabcut"), default="exact",
                   help="synthetic: the generator's exact masks, or GrabCut masks from the boxes (the paper's way)")
    p.add_argument("--preview", action="store_true",
                   help="also write variants.png: one image in all eight variants (the paper's Figure 1)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an --out built with other arguments (it is replaced only once the new build is done)")
    p.set_defaults(func=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    from . import variants as V
    from .data.build import build
    from .data.sources import PAPER_FILTERS, open_source

    variants = V.parse(args.variants)
    splits = tuple(s.strip() for s in args.splits.split(",")) if args.splits else None
    if splits and any(s not in layout.SPLITS for s in splits):
        raise ValueError(f"--splits must be a comma list of train,val, got {args.splits!r}")
    source = open_source(args.source, args.src, boxes=args.boxes, masks=args.masks, size=args.size,
                         fg_masks=args.fg_masks, missing_masks=args.missing_masks, in9l=args.in9l,
                         val_fraction=args.val_fraction, split_seed=args.seed,
                         filters={key: getattr(args, key) for key in PAPER_FILTERS})
    if args.in9l and args.variants == "all":
        variants = (ORIGINAL,)
    if args.in9l and args.preview:
        raise ValueError("--preview shows the eight variants, which IN-9L (--in9l, Original only) does not have")
    report = build(source, args.out, variants=variants, splits=splits, seed=args.seed,
                   workers=args.workers or None, fmt=args.format, overwrite=args.overwrite)
    from .distributed import is_main

    if not is_main():
        return 0
    print(report.summary())
    if args.preview:
        from .data.previews import variants_figure

        built = splits or tuple(source.splits())
        split = "val" if "val" in built else built[0]
        variants_figure(args.out, split=split, out=args.out / "variants.png")
        print(f"preview: {args.out / 'variants.png'}")
    return 0


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="download official datasets")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    f = data_sub.add_parser(
        "fetch",
        help="download, verify (sha256) and unpack a dataset's archives; resumes interrupted downloads",
    )
    f.add_argument("dataset", choices=("in9",))
    f.add_argument("--dest", type=Path, default=None, help="destination (default data/<dataset>)")
    f.add_argument("--only", default=None,
                   help="comma list of archive names from the manifest, or 'all' (default: the test sets)")
    f.add_argument("--manifest", type=Path, default=None, help="manifest JSON (default data/<dataset>.json)")
    f.set_defaults(func=_run_fetch)
    g = data_sub.add_parser(
        "forget", help="clear a recorded sha256 (and the downloaded file) so that the next fetch starts anew",
    )
    g.add_argument("dataset", choices=("in9",))
    g.add_argument("archives", nargs="+", help="archive names from the manifest")
    g.add_argument("--dest", type=Path, default=None, help="destination (default data/<dataset>)")
    g.add_argument("--manifest", type=Path, default=None, help="manifest JSON (default data/<dataset>.json)")
    g.set_defaults(func=_run_forget)


def _run_fetch(args: argparse.Namespace) -> int:
    from .data.download import default_manifest, fetch, read_manifest

    manifest = args.manifest or default_manifest(args.dataset)
    only = None
    if args.only == "all":
        only = tuple(a["name"] for a in read_manifest(manifest)["archives"])
    elif args.only:
        only = tuple(n.strip() for n in args.only.split(",") if n.strip())
    dest = args.dest or Path("data") / args.dataset
    names = fetch(manifest, dest, only=only)
    print(f"{args.dataset}: {', '.join(names)} ready in {dest}")
    return 0


def _run_forget(args: argparse.Namespace) -> int:
    from .data.download import default_manifest, forget

    dest = args.dest or Path("data") / args.dataset
    cleared = forget(args.manifest or default_manifest(args.dataset), dest, tuple(args.archives))
    print(f"{args.dataset}: cleared {', '.join(cleared) if cleared else 'nothing (no record or file)'} in {dest}")
    return 0


#: The options of `train` that replace its profile's training settings (a type, or the choices).
_TRAIN_OVERRIDES = {"--arch": str, "--epochs": _positive, "--batch-size": _positive, "--lr": _positive_float,
                    "--weight-decay": _non_negative_float, "--optimizer": ("sgd", "adamw"),
                    "--schedule": ("cosine", "step"), "--label-smoothing": _fraction}


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on one variant (resumable; DDP under torchrun)",
                       description="Train on DATA/<variant>/train; leaves RUN/checkpoint.pt and RUN/train_log.json. "
                       "Run the same command again to resume an interrupted run.")
    p.add_argument("--data", type=Path, required=True, help="dataset in the official layout (bgrepro build output)")
    p.add_argument("--variant", required=True, help="training variant, e.g. original, only_bg_t, mixed_rand")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--profile", choices=sorted(PROFILES), default=None)
    for option, kind in _TRAIN_OVERRIDES.items():  # each replaces the profile's value
        p.add_argument(option, default=None, **({"choices": kind} if isinstance(kind, tuple) else {"type": kind}))
    p.add_argument("--on-the-fly", action="store_true",
                   help="with --variant mixed_rand: composite foregrounds on random backgrounds on the device")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--pretrained", nargs="?", const="IMAGENET1K_V1", default=None, metavar="TAG_OR_FILE",
                   help="fine-tune: start a torchvision --arch from ImageNet weights (a torchvision weights tag, "
                        "IMAGENET1K_V1 when none is given, or a weights file), all but the class layer")
    p.add_argument("--offline", action="store_true", help="never download the --pretrained weights")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run folder of bgrepro's that was trained with another config")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .training.classifier import TrainConfig, train

    overrides = {o[2:].replace("-", "_"): getattr(args, o[2:].replace("-", "_")) for o in _TRAIN_OVERRIDES}
    config = TrainConfig.from_profile(args.data, args.profile, variant=args.variant, on_the_fly=args.on_the_fly or None,
                                      seed=args.seed, pretrained=args.pretrained, **overrides)
    checkpoint = train(config, args.out, offline=args.offline, overwrite=args.overwrite)
    print(f"checkpoint: {checkpoint}")
    return 0


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="accuracy on every variant and the BG-Gap",
                       description="Evaluate a checkpoint (or an ImageNet-pretrained model mapped to IN-9) on "
                       "every variant folder of DATA; prints a table and writes a JSON record.")
    _add_model_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--bootstrap", type=_bootstrap, default=1000,
                   help="resamples of the test images for the 95%% intervals of every accuracy and the BG-Gap "
                        "(paired); 0: none")
    p.add_argument("--seed", type=_non_negative, default=0, help="seed of the bootstrap")
    p.add_argument("--record", type=Path, default=None, help="where to write the JSON record "
                   "(default: results/eval/<model>-<hash>.json, never beside your model)")
    p.add_argument("--predictions", type=Path, default=None,
                   help="score predictions made outside bgrepro instead of a model: a CSV with `path` (relative "
                        "to --data) and `prediction` (class name or output index), or one logit column per class")
    p.add_argument("--list-images", action="store_true",
                   help="print every image to score (CSV column `path`, relative to --data) and stop")
    p.set_defaults(func=_run_eval)


def _add_model_args(p) -> None:
    """--data, the model (--checkpoint [--arch], or --arch --pretrained [--weights | --weights-tag]),
    --offline, --precision and --split."""
    from .registry import PAPER_WEIGHTS

    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, help="the model, in any format (read from the file): a bgrepro or "
                   "official checkpoint, a state dict (with --arch), TorchScript, torch.export (.pt2), ONNX, TFLite, "
                   "or a Hugging Face folder or hub id")
    p.add_argument("--arch", help="with --pretrained: an ImageNet architecture (torchvision or timm name); with "
                   "a state dict or an official --checkpoint: its architecture")
    p.add_argument("--classes", type=Path, default=None,
                   help="the model's class names, one per line in output order (when the model does not carry them)")
    p.add_argument("--class-map", type=Path, default=None,
                   help="JSON {model output index or name: data class}; outputs mapped to no class count as wrong")
    p.add_argument("--input-size", type=_side, default=None, help="the model's input side in pixels (default: "
                   "what the model carries, else the data's size)")
    p.add_argument("--mean", type=_triple, default=None, help="R,G,B normalisation mean (default: the model's, "
                   "else ImageNet's)")
    p.add_argument("--std", type=_triple, default=None, help="R,G,B normalisation std (default: the model's, "
                   "else ImageNet's)")
    p.add_argument("--pretrained", action="store_true", help="ImageNet weights, downloaded into the torch/timm "
                   "cache when missing (unless --offline)")
    p.add_argument("--weights", type=Path, default=None, help="ImageNet weights file (instead of the cache)")
    p.add_argument("--weights-tag", default=PAPER_WEIGHTS,
                   help=f"torchvision weights: {PAPER_WEIGHTS} (default: the paper's), IMAGENET1K_V2, DEFAULT, ...")
    p.add_argument("--offline", action="store_true", help="never download; fail with the missing file's name")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                   help="fp32 (default: every number compared with the paper); bf16/fp16 report how many "
                        "predictions they flip against fp32 on a sample")
    p.add_argument("--split", default="val")


def _model_inputs(args: argparse.Namespace) -> dict:
    """The files and folders a model command reads (what its outputs may not overlap)."""
    return {"--data": args.data, "--checkpoint": args.checkpoint, "--weights": args.weights}


@contextmanager
def _output_folder(args: argparse.Namespace, command: str, inputs: dict, option: str = "--out",
                   exclude: tuple[str, ...] = ()):
    """The folder a command writes its `option` output into (None when not asked): refused when it overlaps
    an input or is not bgrepro's output of this command; locked; written whole (`outputs.staged_output`)."""
    from .outputs import check_no_overlap, command_args, identity_of, staged_output

    path = getattr(args, option.removeprefix("--").replace("-", "_"))
    if path is None:
        yield None
        return
    from .distributed import main_first

    def stage():
        check_no_overlap(path, inputs, option)
        return staged_output(path, command, command_args(args, exclude), inputs=identity_of(inputs),
                             overwrite=args.overwrite, what=f"`bgrepro {command}` output", option=option)

    with main_first(stage) as work:  # under torchrun: rank 0 writes, the other ranks compute beside it
        yield work


def _load_model(args: argparse.Namespace):
    """(model adapted to the data, its name, what it is) from the model options of a command."""
    from . import registry
    from .data.datasets import image_side

    if args.checkpoint and args.pretrained:
        raise ValueError("--pretrained goes with --arch alone, not with --checkpoint")
    if not args.checkpoint and not (args.arch and args.pretrained):
        raise ValueError("pass --checkpoint FILE (any format) or --arch NAME --pretrained")
    if args.checkpoint:
        loaded = registry.load(args.checkpoint, arch=args.arch, offline=args.offline)
    else:  # an ImageNet architecture by name: its weights from a file, torchvision's cache (a tag) or timm's
        loaded = registry.load(args.arch, offline=args.offline, weights=args.weights, tag=args.weights_tag)
    loaded = loaded.for_data(list(layout.class_folders(args.data)), image_side(args.data), args.classes,
                             args.class_map, args.input_size, args.mean, args.std)
    info = loaded.info(command_options(build_parser(), args.command))
    if loaded.class_mapping and loaded.class_mapping.startswith("assumed"):
        print(f"note: classes {info['class_mapping']}", file=sys.stderr)
    return loaded.net, loaded.name, info


def _precision_check(model, images, args) -> dict | None:
    """fp32 flips of an opt-in lower precision on the first images of a set (None for fp32); `images` may be a
    function that gives them, called only then."""
    from .inference import Inference, precision_check

    if args.precision == "fp32":
        return None
    images = images() if callable(images) else images
    return precision_check(model, images, Inference.at(getattr(args, "device", None), args.precision))


def _run_eval(args: argparse.Namespace) -> int:
    from .analyses.evaluate import format_table, image_listing
    from .analyses.finegrained import shares
    from .analyses.groups import as_json
    from .distributed import is_main, on_main
    from .io import atomic_write_text
    from .outputs import check_file_output

    if args.list_images:
        if is_main():
            print("path")
            print("\n".join(image_listing(args.data, args.split)))
        return 0
    if args.predictions and (args.checkpoint or args.arch):
        raise ValueError("--predictions replaces the model: pass it without --checkpoint and --arch")
    inputs = {**_model_inputs(args), "--predictions": args.predictions}
    record = args.record or _default_record(args)
    on_main(lambda: check_file_output(record, "eval", inputs, "--record"))
    scored, result = _scored_predictions(args) if args.predictions else _scored_model(args)
    result["finegrained"] = shares(scored, args.data)
    result["groups"] = as_json(scored, args.data, args.split)
    result["written_by"] = "bgrepro eval"
    if is_main():
        atomic_write_text(record, json.dumps(result, indent=2, allow_nan=False) + "\n")
        print(json.dumps(result, allow_nan=False) if args.json else f"{format_table(result)}\nrecord: {record}")
    return 0


def _scored_predictions(args: argparse.Namespace):
    """(correctness, summary) of predictions made outside bgrepro."""
    from .analyses.evaluate import correctness_from_predictions, read_predictions
    from .registry import read_classes

    classes = list(layout.class_folders(args.data))
    outputs = read_classes(args.classes) if args.classes else None
    predicted = read_predictions(args.predictions, classes, outputs, args.class_map)
    scored = correctness_from_predictions(predicted, args.data, args.split, str(args.predictions))
    result = scored.summarize(args.bootstrap, args.seed)
    result.update(model=args.predictions.name, format="predictions", weights=str(args.predictions))
    return scored, result


def _scored_model(args: argparse.Namespace):
    """(correctness, summary) of the model the options name, with what it is and which file it was."""
    from .analyses.evaluate import correctness, test_set
    from .inference import Inference
    from .outputs import fingerprint

    model, name, info = _load_model(args)
    scored = correctness(model, args.data, None, args.split, Inference.at(None, args.precision), False, keep=False)
    result = scored.summarize(args.bootstrap, args.seed)
    result.update(model=name, **info, precision=args.precision,
                  precision_check=_precision_check(model, lambda: test_set(args.data, ORIGINAL, args.split).images,
                                                   args))
    if args.checkpoint and Path(args.checkpoint).is_file():  # which file, exactly, was scored
        result["weights_sha256"] = fingerprint(args.checkpoint).removeprefix("sha256:")
    return scored, result


def _default_record(args: argparse.Namespace) -> Path:
    """Where `eval` writes its record when --record is not given: bgrepro's results folder, never beside the
    user's model or predictions (a folder that may be shared, read-only, and is not bgrepro's), under a name
    that tells models apart (the file's name and a hash of its full path, or the architecture and weights)."""
    from .layout import results_dir

    source = args.checkpoint or args.predictions
    what = str(Path(source).resolve()) if source else f"{args.arch}:{args.weights or args.weights_tag}"
    stem = Path(source).stem if source else args.arch
    return results_dir() / "eval" / f"{stem}-{hashlib.sha256(what.encode()).hexdigest()[:8]}.json"


def _add_challenge(sub) -> None:
    p = sub.add_parser("challenge", help="the backgrounds challenge: adversarial Only-BG-T backgrounds",
                       description="For every test foreground (original + fg_mask), search the Only-BG-T test "
                       "backgrounds of every class for one that makes the model predict another class.")
    _add_model_args(p)
    p.add_argument("--all-pairs", action="store_true",
                   help="evaluate every (foreground, background) pair: per-background counts and figures")
    p.add_argument("--foregrounds", type=_positive, default=None, metavar="N",
                   help="a stratified, seeded sample of N foregrounds (default: all); the challenge accuracy then "
                        "comes with its 95%% interval")
    p.add_argument("--backgrounds", type=_positive, default=None, metavar="M",
                   help="try M backgrounds of each class (default: all); the result is then an upper bound on the "
                        "challenge accuracy")
    p.add_argument("--seed", type=_non_negative, default=0, help="seed of the samples")
    p.add_argument("--chunk", type=_positive, default=None,
                   help="backgrounds decoded at a time when they are streamed from disk (default 2048)")
    p.add_argument("--batch-size", type=_positive, default=None, help="composites per forward pass")
    p.add_argument("--device", type=_device, default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for challenge.json (and, with --all-pairs, the two figures)")
    p.add_argument("--overwrite", action="store_true", help="replace an --out of bgrepro challenge made with "
                   "other arguments")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    p.set_defaults(func=_run_challenge)


def _run_challenge(args: argparse.Namespace) -> int:
    with _output_folder(args, "challenge", _model_inputs(args)) as out:
        return _challenge(args, out)


def _challenge(args: argparse.Namespace, out: Path | None) -> int:
    from .analyses.adversarial import SearchSettings, challenge, load_challenge_data
    from .distributed import is_main
    from .inference import Inference
    from .io import atomic_write_text

    model, name, info = _load_model(args)
    foregrounds, backgrounds = load_challenge_data(args.data, args.split, args.foregrounds, args.backgrounds,
                                                   args.seed, stream=True if args.chunk else None)
    result = challenge(model, foregrounds, backgrounds, all_pairs=args.all_pairs,
                       inference=Inference.at(args.device, args.precision, args.batch_size),
                       settings=SearchSettings(chunk=args.chunk), progress=not args.json)
    summary = {"model": name, **info, "precision": args.precision,
               "precision_check": _precision_check(model, foregrounds.images, args), "seed": args.seed,
               **result.to_json()}
    if not is_main():
        return 0
    if out:
        atomic_write_text(out / "challenge.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
        if args.all_pairs:
            from .data.previews import variant_image
            from .plots import fooling_histogram, top_backgrounds

            top_backgrounds(summary, lambda i: variant_image(args.data, ONLY_BG_T, args.split, i),
                            out=out / "top_backgrounds.png")
            fooling_histogram(summary, out=out / "fooling_histogram.png")
    if args.json:
        print(json.dumps(summary, allow_nan=False))
        return 0
    interval = "" if result.interval is None else " [{:.1f}, {:.1f}]".format(*(100 * v for v in result.interval))
    print(f"{name}: challenge accuracy {'at most ' if summary['upper_bound'] else ''}"
          f"{100 * result.challenge_accuracy:.1f}%{interval} ({len(result.fooled_ids)} of {len(result.fg_ids)} "
          f"foregrounds fooled by some of {len(result.bg_ids)} backgrounds; {result.composites} composites in "
          f"{result.seconds:.1f} s)")
    print(f"  {result.reading()}")
    width = max(len(c) for c in result.classes) + 2
    for folder, share in zip(result.classes, result.per_class()):
        print(f"  {folder:<{width}} fooled " + ("  (no foreground)" if share is None else f"{100 * share:5.1f}%"))
    return 0


def _add_localize(sub) -> None:
    p = sub.add_parser("localize", help="unsupervised object localization by representer point selection",
                       description="Estimate the RPS foreground predictor w* from one pass over a training set "
                       "and score its maps (and the CAAM baseline, the channel sum) against the foreground masks; or "
                       "write RPS masks that `bgrepro build --source folder --masks` takes.")
    p.add_argument("--data", type=Path, required=True,
                   help="a dataset in the official layout (original/ [+ fg_mask/]), or any folder of images")
    p.add_argument("--backbone", required=True,
                   help="checkpoint:PATH (a bgrepro or official checkpoint), a self-supervised backbone of the "
                        "RPS paper by name (dino_resnet50, dino_vits16, mocov2_resnet50, mocov3_resnet50: fetched "
                        "through torch.hub's cache), a torchvision CNN name, or a timm ViT name")
    p.add_argument("--weights", type=Path, default=None, help="backbone weights file (DINO, MoCo, ImageNet)")
    p.add_argument("--arch", default=None, help="with --backbone checkpoint:FILE holding a plain state dict: its "
                   "torchvision or timm architecture")
    p.add_argument("--split", default="val", help="split to evaluate (official layout)")
    p.add_argument("--estimate-split", default="train", help="split w* is estimated on (official layout)")
    p.add_argument("--estimate-on", type=Path, default=None,
                   help="estimate w* on this other dataset instead (zero-shot transfer)")
    p.add_argument("--rps", type=Path, default=None, help="use a saved w* (rps.pt) instead of estimating")
    p.add_argument("--class-wise", choices=("none", "labels", "predictions"), default="none",
                   help="one w* per class, from the true labels or a classifier's predictions (checkpoint)")
    p.add_argument("--size", type=_side, default=None, help="backbone input size (default: the images' size)")
    p.add_argument("--out", type=Path, default=None, help="folder for rps.pt and localize.json")
    p.add_argument("--write-masks", type=Path, default=None,
                   help="write RPS masks for every image (mirror tree of .npy files) to this folder")
    p.add_argument("--mask-threshold", type=_fraction, default=0.5)
    from .data.composite import REFINEMENTS

    p.add_argument("--refine", choices=REFINEMENTS, default="none",
                   help="with --write-masks: grabcut turns each RPS mask's box into GrabCut's outline of the object")
    p.add_argument("--resnet-stride", type=int, choices=(16, 32), default=16,
                   help="ResNet feature stride: 16 as published (14 x 14 at 224 px), or 32 as built")
    p.add_argument("--estimate-size", type=_side, default=None,
                   help="image side for estimating w* (default: 224 for a named backbone, as published; the "
                        "images' own size for a bgrepro checkpoint)")
    p.add_argument("--per-class", type=_positive, default=None,
                   help="at most this many images per class for a class-wise w*")
    p.add_argument("--offline", action="store_true", help="never download backbone weights")
    p.add_argument("--protocol", choices=("best", "held-out"), default="best",
                   help="map threshold of MaxBoxAccV2: each IoU's best on the scored split (the standard WSOL "
                        "evaluation), or one chosen on the estimation split's masks (the published RPS protocol)")
    p.add_argument("--overwrite", action="store_true", help="replace an --out or --write-masks folder of bgrepro "
                   "localize made with other arguments")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_localize)


def _run_localize(args: argparse.Namespace) -> int:
    from .analyses.localize import LocalizeConfig, localize_dataset

    checkpoint = Path(args.backbone.removeprefix("checkpoint:")) if args.backbone.startswith("checkpoint:") else None
    inputs = {"--data": args.data, "--backbone": checkpoint, "--weights": args.weights,
              "--estimate-on": args.estimate_on, "--rps": args.rps}
    if args.out is not None and args.write_masks is not None:
        from .outputs import check_no_overlap

        check_no_overlap(args.write_masks, {"--out": args.out}, "--write-masks")
    with ExitStack() as stack:
        out = stack.enter_context(_output_folder(args, "localize", inputs, "--out", exclude=("write_masks",)))
        masks = stack.enter_context(_output_folder(args, "localize --write-masks", inputs, "--write-masks",
                                                   exclude=("out", "protocol", "split")))
        summary = localize_dataset(LocalizeConfig(
            args.data, args.backbone, weights=args.weights, arch=args.arch, split=args.split,
            estimate_split=args.estimate_split, estimate_on=args.estimate_on, rps_file=args.rps,
            class_wise=args.class_wise, size=args.size, estimate_size=args.estimate_size, per_class=args.per_class,
            protocol=args.protocol, resnet_stride=args.resnet_stride, out=out, write_masks_to=masks,
            mask_threshold=args.mask_threshold, refine=args.refine, offline=args.offline), progress=not args.json)
    from .distributed import is_main

    if not is_main():
        return 0
    if summary.get("warning"):
        print(f"warning: {as_options(summary['warning'], build_parser(), 'localize')}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, allow_nan=False))
        return 0
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:.2f}" for k, v in value.items() if isinstance(v, float))
        elif isinstance(value, float):
            value = f"{value:.2f}"
        elif key == "not_read":  # every entry named, as build's rejections.csv names them
            value = f"{len(value)} entries that are not images" + "".join(f"\n  {line}" for line in value)
        print(f"{key:<16}{value}")
    return 0


def _add_saliency(sub) -> None:
    p = sub.add_parser("saliency", help="Grad-CAM maps and the share of saliency on the foreground",
                       description="Grad-CAM (captum) of a model on DATA's Original images with their fg_mask: "
                       "the share of positive saliency inside the foreground (mean, per class, against the mask "
                       "area) and a figure of example maps.")
    _add_model_args(p)
    p.add_argument("--per-class", type=_positive, default=None, help="images per class (default: all)")
    p.add_argument("--examples", type=_positive, default=6, help="classes shown in the figure")
    p.add_argument("--target-layer", default=None, help="the module Grad-CAM explains, by its name in the model "
                   "(default: the last convolutional stage; a vision transformer's last block, its tokens on the "
                   "patch grid)")
    p.add_argument("--out", type=Path, default=None, help="folder for saliency.json and saliency.png")
    p.add_argument("--overwrite", action="store_true", help="replace an --out of bgrepro saliency made with "
                   "other arguments")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_saliency)


def _run_saliency(args: argparse.Namespace) -> int:
    from .analyses.saliency import saliency_report

    if not layout.split_dir(args.data, layout.MASKS, args.split).is_dir():
        raise FileNotFoundError(f"{layout.split_dir(args.data, layout.MASKS, args.split)}: missing; the foreground "
                                "share needs masks (build the data with `bgrepro build`)")
    with _output_folder(args, "saliency", _model_inputs(args)) as out:
        model, name, info = _load_model(args)
        summary = {"model": name, **info, **saliency_report(model, args.data, args.split, args.per_class,
                                                            args.examples, out, progress=not args.json,
                                                            layer=args.target_layer)}
    from .distributed import is_main

    if not is_main():
        return 0
    if args.json:
        print(json.dumps(summary, allow_nan=False))
        return 0
    share = summary["foreground_share"]
    print(f"{name}: {'no saliency' if share is None else f'{100 * share:.1f}%'} of Grad-CAM saliency on the "
          f"foreground, which covers {100 * summary['mask_area']:.1f}% of the images ({summary['n']} images)")
    for cls, value in summary["per_class"].items():
        print(f"  {cls:<24}" + ("   n/a" if value is None else f"{100 * value:5.1f}%"))
    if args.out:
        print(f"figure: {args.out / 'saliency.png'}")
    return 0


def _add_report_models(p) -> None:
    """The report's options for given models and predictions made outside bgrepro."""
    p.add_argument("--checkpoint", type=Path, nargs="+", default=(),
                   help="model(s) to report on, in any format (bgrepro or official checkpoints, state dicts with "
                        "--arch, TorchScript, torch.export, ONNX, Hugging Face folders or hub ids); default: train "
                        "them")
    p.add_argument("--classes", type=Path, default=None, help="the given models' class names, one per line in "
                   "output order")
    p.add_argument("--class-map", type=Path, default=None,
                   help="JSON {model output index or name: photo class}; outputs mapped to none count as wrong")
    p.add_argument("--input-size", type=_side, default=None, help="the given models' input side (default: what "
                   "the model carries, else --size)")
    p.add_argument("--mean", type=_triple, default=None, help="R,G,B normalisation mean of the given models")
    p.add_argument("--std", type=_triple, default=None, help="R,G,B normalisation std of the given models")
    p.add_argument("--predictions", type=Path, default=None,
                   help="report on predictions made outside bgrepro instead of a model: a CSV of path (relative to "
                        "OUT/data, as --list-images writes them) and prediction; the challenge and Grad-CAM need "
                        "the model and are skipped")
    p.add_argument("--list-images", action="store_true",
                   help="build the variants, write OUT/images.csv (every image to score) and stop")


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report", help="one command from a folder of photos to a background-reliance report (HTML + JSON)",
        description="Build the eight variants of a folder of photos (<images>[/train|val]/<class>/<photo>) into "
        "OUT/data, train a model on Original and one on Mixed-Rand per seed (unless --checkpoint is given), "
        "evaluate every variant with bootstrap intervals, run the backgrounds challenge, the fine-grained "
        "breakdown and Grad-CAM, and write OUT/report.html (self-contained) and OUT/report.json. Resumable: "
        "run the same command again after an interruption.")
    p.add_argument("--images", type=Path, required=True, help="folder of class folders of photos (any names)")
    p.add_argument("--masks", type=Path, default=None, help="mirror tree of foreground masks (PNG or NPY)")
    p.add_argument("--boxes", type=Path, default=None, help="CSV of path,xmin,ymin,xmax,ymax (GrabCut masks)")
    p.add_argument("--localizer", default="dino_resnet50",
                   help="without --masks or --boxes: the backbone whose representer points find the objects "
                        "(default dino_resnet50, fetched through torch.hub's cache; any `localize --backbone`)")
    p.add_argument("--localizer-weights", type=Path, default=None, help="the localizer's weights file")
    from .data.composite import REFINEMENTS

    p.add_argument("--refine", choices=REFINEMENTS, default="grabcut",
                   help="RPS masks: refined into the object's outline by GrabCut (default) or not")
    _add_report_models(p)
    p.add_argument("--arch", default=None, help="architecture of the trained models (default: the profile's); "
                   "with a state dict or an official --checkpoint, its architecture")
    p.add_argument("--pretrained", nargs="?", const="IMAGENET1K_V1", default=None, metavar="TAG_OR_FILE",
                   help="ImageNet weights for --arch: on IN-9's classes the ImageNet model is scored through the "
                        "1000 -> IN-9 mapping; on other classes the trained models start from them (fine-tuning)")
    p.add_argument("--offline", action="store_true", help="never download weights")
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument("--size", type=_side, default=None,
                   help="image side (default 64 on the CPU profiles, 224 with --profile full)")
    p.add_argument("--val-fraction", type=_fraction, default=None,
                   help=f"folder without train/ and val/: this share of each class becomes the test images "
                        f"(default {0.25} when models are trained)")
    p.add_argument("--seed", type=_non_negative, default=0, help="first seed (split, pairings, training)")
    p.add_argument("--seeds", type=_seeds, default=1, help="train each model with this many seeds (at most 50)")
    p.add_argument("--profile", choices=sorted(PROFILES), default=None, help="scale of training (default smoke)")
    p.add_argument("--epochs", type=_positive, default=None, help="training epochs (default: the profile's)")
    p.add_argument("--bootstrap", type=_resamples, default=1000, help="resamples of the 95%% intervals")
    p.add_argument("--challenge-budget", type=_non_negative, default=None, metavar="COMPOSITES",
                   help="the most composites the challenge may cost (default 1,000,000 on a CPU, 25,000,000 on a "
                        "GPU): beyond it a stratified sample of the foregrounds (with a 95%% interval), then of the "
                        "backgrounds (an upper bound); 0: the whole challenge")
    from .data.sources import PAPER_FILTERS

    for key, default in PAPER_FILTERS.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=_fraction, default=None,
                       help=f"the paper's filter threshold (default {default})")
    p.add_argument("--overwrite", action="store_true", help="replace an --out made with other arguments")
    p.add_argument("--json", action="store_true", help="print report.json instead of the summary")
    p.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from .data.sources import PAPER_FILTERS
    from .report.make import ReportConfig, make_report, summary_lines

    config = ReportConfig(
        images=args.images, out=args.out, masks=args.masks, boxes=args.boxes, localizer=args.localizer,
        localizer_weights=args.localizer_weights, refine=args.refine, checkpoints=tuple(args.checkpoint),
        arch=args.arch, pretrained=args.pretrained, offline=args.offline, size=args.size,
        val_fraction=args.val_fraction, seed=args.seed, seeds=args.seeds, profile=args.profile, epochs=args.epochs,
        filters={k: getattr(args, k) for k in PAPER_FILTERS if getattr(args, k) is not None},
        bootstrap=args.bootstrap, challenge_budget=args.challenge_budget, classes_file=args.classes,
        class_map=args.class_map, input_size=args.input_size,
        mean=args.mean, std=args.std, predictions=args.predictions, list_images=args.list_images,
        options=command_options(build_parser(), "report"))
    report = make_report(config, overwrite=args.overwrite, progress=not args.json)
    from .distributed import is_main

    if not is_main():
        return 0
    if "listing" in report:
        print(f"the images to score, relative to {report['data']}: {report['listing']}; score them with your model "
              "and run the same command with --predictions FILE (columns path, prediction)")
        return 0
    if args.json:
        print(json.dumps(report, allow_nan=False))
        return 0
    print("\n".join(summary_lines(report)))
    print(f"report: {args.out / 'report.html'} (and report.json)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(
        prog="bgrepro", description="Measure how much image classifiers rely on backgrounds (IN-9)."
    )
    parser.add_argument("--processes", type=_positive, default=None, metavar="N",
                        help="run the command in N processes (torch.distributed: gloo on CPUs, one GPU each with "
                             "NCCL), as `torchrun --nproc_per_node N -m bgrepro` does, but an error ends as one "
                             "line, exit code 2")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_synth(sub)
    _add_build(sub)
    _add_data(sub)
    _add_train(sub)
    _add_eval(sub)
    _add_challenge(sub)
    _add_localize(sub)
    _add_saliency(sub)
    _add_report(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `bgrepro` console script."""
    try:  # building the parser imports the libraries: a Ctrl-C there is an interruption like any other
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("bgrepro: interrupted", file=sys.stderr)
        return 130
    from .distributed import PEER_GONE, Stopped, active, finish, peer_gone, rank_label

    # a class or file name in a script the figures' font lacks (an emoji) is drawn as a box, not warned of per glyph
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
    if args.processes and args.processes > 1 and not active():
        argv = list(sys.argv[1:] if argv is None else argv)
        return _launch(args.processes, argv[argv.index(args.command):])  # the command and its options
    code = 2
    if active():  # the launcher ends the other ranks with SIGTERM when one fails: clean up as after an error
        signal.signal(signal.SIGTERM, _stopped_by_launcher)
    try:
        code = args.func(args)
        return code
    except Stopped:  # under torchrun: rank 0 stopped with an error and said it, or the launcher ended this rank
        return 2
    except KeyboardInterrupt:
        print(f"bgrepro {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"bgrepro {args.command}: error: out of memory; try fewer images at once (--batch-size), a smaller "
              "--size, fewer --bootstrap resamples, or a machine with more memory", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - every failure reaches the user as one line (BGREPRO_DEBUG=1: traceback)
        if os.environ.get("BGREPRO_DEBUG"):
            raise
        if active() and peer_gone(err):  # another rank ended with an error, which it said: nothing to add
            return PEER_GONE
        # under several processes another rank's progress bar may stand unfinished on the shared terminal line:
        # the error starts a line of its own
        where, start = (f" (rank {rank_label()})", "\n") if active() else ("", "")
        print(f"{start}bgrepro {args.command}{where}: error: {as_options(_describe(err), parser, args.command)}",
              file=sys.stderr)
        return 2
    finally:
        finish(code == 0)
        if active():  # the command has ended: a SIGTERM now (the launcher ending the ranks) has nothing to clean up,
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # and raised during shutdown it printed a traceback


def _stopped_by_launcher(signum, frame) -> None:
    """SIGTERM under several processes (torchrun's launcher ending the ranks once one has failed) as an error of
    the run, so that its output's staging folder and lock are cleaned up as after bad input. Ignored while this
    rank is already handling an error (its cleanup is under way and must not be cut short)."""
    from .distributed import Stopped

    if sys.exc_info()[0] is None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Stopped("another process of this run stopped")


def _launch(processes: int, command: list[str]) -> int:
    """The command in `processes` processes under torch.distributed's launcher (torchrun's engine), ended as one
    process would: each rank's error is its own one line; the launcher's report of a failed worker (a traceback
    of its own) is not printed, and the exit code is 2. Without an error from any rank (they lost contact with
    each other), one line says so."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    from .distributed import PEER_GONE

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)
    config = get_args_parser().parse_args(["--standalone", "--nproc_per_node", str(processes), "--module", "bgrepro",
                                           *command])
    try:
        run(config)
    except ChildFailedError as failed:
        codes = {f.exitcode for f in failed.failures.values()}
        if codes <= {PEER_GONE}:
            print(f"bgrepro: the {processes} processes lost contact with each other and none reported an error; "
                  "run the command again, or in one process", file=sys.stderr)
        return 130 if 130 in codes else 2
    return 0


#: Where a command's option for a library parameter has another name than the parameter.
_ALIASES = {"report": {"weights": "--localizer-weights", "classes_file": "--classes"}}


def command_options(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """The library's parameter names -> the command's options (class_map -> --class-map)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices.get(command)
    options = {a.dest: a.option_strings[-1] for a in (sub._actions if sub else []) if a.option_strings}
    return {**options, **_ALIASES.get(command, {})}


def as_options(text: str, parser: argparse.ArgumentParser, command: str) -> str:
    """A library message with the command's options for the parameters it names: the library names a parameter
    in backticks (`class_map`), the command line shows its option (--class-map)."""
    from .io import with_options

    return with_options(text, command_options(parser, command))


def _describe(err: BaseException) -> str:
    """One line for any error: bgrepro's own (ValueError, OSError) as they are, others with their type, and
    the disk-full and no-permission cases said in words wherever they come from."""
    text = _one_line(err)
    if isinstance(err, OSError) and err.errno == errno.ENOSPC or "No space left" in text or "file write failed" in text:
        where = f" writing {err.filename}" if isinstance(err, OSError) and err.filename else ""
        return f"the disk is full{where}; free some space and run the same command again to resume ({text})"
    if isinstance(err, PermissionError) and err.filename:
        return f"{err.filename}: permission denied"
    if isinstance(err, (ValueError, OSError)):
        return text
    return f"{type(err).__name__}: {text}"


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 600 else text[:597] + "..."


if __name__ == "__main__":
    sys.exit(main())
