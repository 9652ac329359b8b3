"""The paper's first experiments as functions of (data, profile, seed), each model a cached record.

- `backgrounds_suffice` (paper Fig. 2): models trained on Only-BG-B, Only-BG-T or No-FG, tested on
  their own test set and on Original.
- `bg_gap_table` (paper Table 2 layout): rows Original, Only-BG-T, Mixed-Same, Mixed-Rand, BG-Gap;
  one column per architecture trained on Original, plus ImageNet-pretrained columns when their
  weights are on disk.
- `mixed_rand_training` (paper Fig. 5): models trained on Original, on the materialised Mixed-Rand
  and on Mixed-Rand composited on the fly, tested on every variant that keeps the foreground.
- `adversarial_backgrounds` (paper Sec. 4, Figs. 3-4): the backgrounds challenge of a trained model.
- `saliency_on_foreground` (claim 4): the share of Grad-CAM saliency on the foreground.
- `rps_localization`, `mask_quality`: representer point selection against the CAAM (channel-sum)
  baseline, and RPS / GrabCut masks against the exact synthetic masks; `rps_predictor`: the cached
  w* of a trained model's trunk.
- `finegrained_correctness` (paper Sec. 5): per test image, is the model right on Original, Only-FG,
  Only-BG-T and Mixed-Rand.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import layout, registry
from ..analyses import finegrained
from ..analyses.adversarial import budget_sample, challenge, challenge_budget_default, load_challenge_data
from ..analyses.evaluate import correctness, evaluate, predict
from ..analyses.progress import PROGRESS_VARIANTS
from ..analyses.rps import RPS, activation_maps, estimate
from ..analyses.saliency import foreground_share, gradcam
from ..analyses.wsol import best_threshold, box_metrics, chance_rows, localization_metrics, mask_iou, masks_from_maps
from ..data import composite
from ..data.datasets import ImageListing, image_side, load_variant, mask_boxes
from ..data.synth import read_annotations
from ..inference import Inference, default_device
from ..io import mask_box
from ..layout import results_dir
from ..profiles import get_profile
from ..registry import PAPER_WEIGHTS, pretrained_weights_path
from ..training.classifier import TrainConfig, train
from ..training.simsiam import SimSiamConfig, train_simsiam
from ..variants import MIXED_NEXT, MIXED_RAND, MIXED_SAME, NO_FG, ONLY_BG_B, ONLY_BG_T, ONLY_FG, ORIGINAL, title
from .records import Record, cached, config_hash

#: Which localization metric definitions a record holds (part of its key, so a change recomputes).
METRICS = "wsol-standard-maxboxaccv2, caam-channel-sum, chance-rows, blank-maps"
#: The localization table's rows of maps that know nothing (`wsol.chance_rows`), under this backbone name.
CHANCE = "chance (no backbone)"
FOREGROUND_VARIANTS = (ORIGINAL, MIXED_SAME, MIXED_RAND, MIXED_NEXT, ONLY_FG)
TABLE2_ROWS = (ORIGINAL, ONLY_BG_T, MIXED_SAME, MIXED_RAND)


@dataclass(frozen=True)
class TrainedModel:
    """A trained model's record: its accuracy on every variant of its data's test split, the BG-Gap,
    its checkpoint and provenance."""

    record: Record

    @property
    def config(self) -> TrainConfig:
        return TrainConfig(**self.record.config)

    @property
    def accuracy(self) -> dict[str, float]:
        """Accuracy (a fraction) per test variant."""
        return self.record.metrics["evaluation"]["accuracy"]

    @property
    def per_class(self) -> dict[str, dict[str, float | None]]:
        """Accuracy per test variant and class."""
        return self.record.metrics["evaluation"]["per_class"]

    @property
    def bg_gap(self) -> float | None:
        """Accuracy on Mixed-Same minus accuracy on Mixed-Rand (None without both variants)."""
        return self.record.metrics["evaluation"]["bg_gap"]

    @property
    def checkpoint(self) -> Path:
        return Path(self.record.metrics["checkpoint"])

    @property
    def train_seconds(self) -> float:
        return self.record.metrics["train_seconds"]

    @property
    def provenance(self) -> dict:
        return self.record.provenance

    def load(self, device="cpu"):
        """The trained model (eval mode)."""
        return registry.load(self.checkpoint).net.to(device)


@dataclass(frozen=True)
class ChallengeRecord:
    """The backgrounds challenge of one trained model."""

    record: Record

    @property
    def summary(self) -> dict:
        """The exact search's summary (`ChallengeResult.to_json`)."""
        return self.record.metrics["challenge"]

    @property
    def challenge_accuracy(self) -> float:
        return self.summary["challenge_accuracy"]

    @property
    def fooled_fraction(self) -> float:
        return self.summary["fooled_fraction"]

    @property
    def fooled_per_class(self) -> dict[str, float | None]:
        return self.summary["fooled_per_class"]

    @property
    def clean_accuracy(self) -> float:
        return self.record.metrics["clean_accuracy"]

    @property
    def pairs(self) -> dict | None:
        """Every (foreground, background) pair's summary, with per-background counts (None when skipped)."""
        return self.record.metrics["pairs"]


def trained_model(config: TrainConfig, progress: bool = True) -> TrainedModel:
    """Train (or reuse) a model and evaluate it on every variant of its data's test split."""

    def compute(cfg: dict) -> dict:
        run_dir = results_dir() / "runs" / config_hash("trained_model", cfg)
        checkpoint = train(config, run_dir, progress=progress)
        loaded = registry.load(checkpoint)
        model, history = loaded.net, loaded.meta.get("history", [])
        return {"evaluation": evaluate(model, config.data), "checkpoint": str(checkpoint),
                "train_seconds": round(sum(h["seconds"] for h in history), 1),
                "final_train_accuracy": history[-1]["train_accuracy"] if history else None}

    return TrainedModel(cached("trained_model", config.as_dict(), compute))


def model_for_bench(argv: list[str] | None = None, description: str = "", **extra):
    """The arguments of a throughput benchmark (--data, --checkpoint, --profile and `extra`: option ->
    add_argument keywords) and its model on the default device: the checkpoint given, else the profile's
    default model trained on Original (trained if not cached). Returns (args, loaded model, device)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--profile", default=None)
    for option, keywords in extra.items():
        ap.add_argument(option, **keywords)
    args = ap.parse_args(argv)
    if args.checkpoint is None:
        args.checkpoint = trained_model(TrainConfig.from_profile(args.data, args.profile)).checkpoint
    device = default_device()
    loaded = registry.load(args.checkpoint)
    loaded.net.to(device)
    return args, loaded, device


def backgrounds_suffice(data: Path, profile: str | None = None, seed: int = 0, **overrides) -> pd.DataFrame:
    """Accuracy (%) of background-only models on their own test set and on Original."""
    rows = []
    for variant in (ONLY_BG_B, ONLY_BG_T, NO_FG):
        record = trained_model(TrainConfig.from_profile(data, profile, variant=variant, seed=seed, **overrides))
        acc = record.accuracy
        rows.append({"trained on": variant, "own test set": 100 * acc[variant], ORIGINAL: 100 * acc[ORIGINAL]})
    return pd.DataFrame(rows).set_index("trained on")


#: Images per batch of an ImageNet model at 224-320 px on the CPU: EfficientNet-Lite0 runs about 64 images/s at 8 and
#: 23 at 64 on 2 cores (channels-last; its activations leave the cache), so the CPU's default batch of 256 is slow;
#: and memory grows with it: w* of EfficientNet-Lite2's trunk at 320 px took 1,077 MB above the process at 32 images
#: a batch, 359 MB at 8 (and ran in 13 s instead of 18), Lite0's at 224 px 1.9 GB at 128, 185 MB at 8 (2026-12-05).
PHOTO_BATCH_CPU = 8
#: Photos per batch of Grad-CAM on an ImageNet model on the CPU: its backward pass holds every layer's activations,
#: and at 8 photos of 224-260 px Grad-CAM of EfficientNet-Lite0/1/2 peaked 1.3 / 1.9 / 2.4 GB above the process,
#: at 2 photos 0.33 / 0.46 / 0.59 GB (measured on 26 photos, 2026-12-05). At 1 photo, on 45 photos at 224 px:
#: Lite0 180 MB (355 at 2), Lite2 339 MB (671 at 2), in the same time; the real-photo chapter's peak (2,009 MiB
#: in a fresh clone's `make reproduce`) came at its Grad-CAM.
GRADCAM_BATCH_CPU = 1


def _photo_inference(precision: str = "fp32") -> Inference:
    """The inference policy of ImageNet models on photos: small batches on the CPU (`PHOTO_BATCH_CPU`)."""
    return Inference.at(None, precision, PHOTO_BATCH_CPU if default_device().type == "cpu" else None)


def photo_batch() -> int:
    """Photos per batch of an ImageNet model's forward pass (features, w*, maps): `_photo_inference`'s."""
    return _photo_inference().batch_size


def pretrained_record(arch: str, data: Path, weights_tag: str = PAPER_WEIGHTS, bootstrap: int = 1000) -> Record:
    """The evaluation record of an ImageNet-pretrained model mapped to IN-9, in fp32: its accuracy on every variant
    with `bootstrap` 95% intervals over the test images (`evaluation`: `bgrepro eval`'s summary and groups) and, where
    the data has the fine-grained variants, whether it is right on each of them per image (`finegrained`). The
    weights are torchvision's `weights_tag` (the paper's IMAGENET1K_V1 by default), timm's or a package's, read from
    the local cache only when no record exists (the book never downloads; `bgrepro eval --arch ARCH --pretrained`
    does)."""
    def compute(cfg: dict) -> dict:
        scored = correctness(_imagenet(cfg), cfg["data"], inference=_photo_inference(cfg["precision"]))
        table = None
        if set(finegrained.VARIANTS_USED) <= set(scored.correct):
            frame = finegrained.correctness_table(scored, cfg["data"])
            table = {"ids": list(frame.index), **{c: frame[c].tolist() for c in frame.columns}}
        return {"evaluation": scored.report(cfg["data"], "val", cfg["bootstrap"]), "finegrained": table}

    return cached("pretrained_eval", {"arch": arch, "data": str(data), "weights": weights_tag, "precision": "fp32",
                                      "bootstrap": bootstrap}, compute)


def _imagenet(cfg: dict):
    """An ImageNet-pretrained model (weights from the local cache only) scored on the data's classes."""
    loaded = registry.load(cfg["arch"], offline=True, tag=cfg["weights"])
    return loaded.for_data(list(layout.class_folders(cfg["data"])), image_side(cfg["data"])).net


def pretrained_challenge(arch: str, data: Path, weights_tag: str = PAPER_WEIGHTS, progress: bool = True,
                         budget: int | None = None) -> dict:
    """The backgrounds challenge (fp32) of an ImageNet-pretrained model mapped to IN-9: the paper's 22.3% for
    ResNet-50. Within `budget` composites at worst (the device's, `adversarial.challenge_budget_default`, by
    default): whole where it fits, else on a stratified sample of the foregrounds (with its 95% interval). The
    weights come from the local cache only (as `pretrained_record`)."""
    budget = budget or challenge_budget_default()

    def compute(cfg: dict) -> dict:
        model = _imagenet(cfg)
        sizes = [len(ImageListing.of(cfg["data"], v, "val")) for v in (ORIGINAL, ONLY_BG_T)]
        fgs, bgs = budget_sample(*sizes, len(layout.class_folders(cfg["data"])), cfg["budget"])
        result = challenge(model, *load_challenge_data(cfg["data"], "val", fgs, bgs), progress=progress,
                           inference=_photo_inference(cfg["precision"]))
        return {"challenge": result.to_json()}

    return cached("pretrained_challenge", {"arch": arch, "data": str(data), "weights": weights_tag,
                                           "precision": "fp32", "budget": budget}, compute).metrics["challenge"]


def pretrained_accuracy(arch: str, data: Path, weights_tag: str = PAPER_WEIGHTS) -> dict:
    """Accuracy per variant of an ImageNet-pretrained model mapped to IN-9 (`pretrained_record`)."""
    return pretrained_record(arch, data, weights_tag).metrics["evaluation"]["accuracy"]


def bg_gap_table(data: Path, archs: tuple[str, ...], profile: str | None = None, seed: int = 0,
                 pretrained: tuple[str, ...] = (), **overrides) -> pd.DataFrame:
    """Table 2 layout: accuracy (%) per test set and BG-Gap, one column per model."""
    columns = {}
    for arch in archs:
        record = trained_model(TrainConfig.from_profile(data, profile, arch=arch, seed=seed, **overrides))
        columns[f"{arch} (trained)"] = record.accuracy
    for arch in pretrained:
        columns[f"{arch} (ImageNet)"] = pretrained_accuracy(arch, data)
    table = pd.DataFrame({name: {r: 100 * acc[r] for r in TABLE2_ROWS} for name, acc in columns.items()})
    table.loc["bg_gap"] = table.loc[MIXED_SAME] - table.loc[MIXED_RAND]
    return table


def bg_gap_sources(data: Path, archs: tuple[str, ...], profile: str | None = None, seed: int = 0,
                   pretrained: tuple[str, ...] = (), **overrides) -> pd.DataFrame:
    """Which weights and which precision produced every column of `bg_gap_table`, from the records."""
    rows = {}
    for arch in archs:
        config = TrainConfig.from_profile(data, profile, arch=arch, seed=seed, **overrides)
        device = trained_model(config).record.provenance["device"]
        rows[f"{arch} (trained)"] = {
            "weights": f"trained here: {config.epochs} epochs on {title(config.variant)}, seed {config.seed}",
            "training precision": "bf16 autocast" if device.startswith("cuda") else "fp32",
            "scoring precision": "fp32", "device": device}
    for arch in pretrained:
        record = pretrained_record(arch, data)
        rows[f"{arch} (ImageNet)"] = {
            "weights": f"torchvision's original ImageNet weights ({pretrained_weights_path(arch).name})",
            "training precision": "(ImageNet-pretrained)", "scoring precision": "fp32",
            "device": record.provenance["device"]}
    return pd.DataFrame(rows).T


def mixed_rand_training(data: Path, profile: str | None = None, seed: int = 0, **overrides) -> pd.DataFrame:
    """Accuracy (%) on the foreground-keeping variants of Original- vs Mixed-Rand-trained models."""
    base = TrainConfig.from_profile(data, profile, seed=seed, **overrides)
    models = {
        ORIGINAL: base,
        MIXED_RAND: replace(base, variant=MIXED_RAND),
        "mixed_rand (on the fly)": replace(base, variant=MIXED_RAND, on_the_fly=True),
    }
    table = {}
    for name, config in models.items():
        acc = trained_model(config).accuracy
        table[name] = {v: 100 * acc[v] for v in FOREGROUND_VARIANTS}
    frame = pd.DataFrame(table)
    frame.loc["bg_gap"] = frame.loc[MIXED_SAME] - frame.loc[MIXED_RAND]
    frame.loc["spread"] = frame.loc[list(FOREGROUND_VARIANTS)].max() - frame.loc[list(FOREGROUND_VARIANTS)].min()
    return frame


def adversarial_backgrounds(config: TrainConfig, pairs_per_class: int | None = None, precision: str = "fp32",
                            progress: bool = True) -> dict:
    """The backgrounds challenge of the model trained by `config`, on its data's test split.

    metrics["challenge"]: the exact search over every foreground (challenge accuracy, fooled ids,
    fooled share per class). metrics["pairs"]: every (foreground, background) pair evaluated for
    the per-background counts of Figs. 3-4, over all foregrounds (None), `pairs_per_class` of each
    class, or skipped (0: metrics["pairs"] is None).
    """
    record = trained_model(config, progress=progress)

    def compute(cfg: dict) -> dict:
        model = record.load()
        inference = Inference.at(None, precision)
        foregrounds, backgrounds = load_challenge_data(config.data)
        exact = challenge(model, foregrounds, backgrounds, inference=inference, progress=progress)
        every = None
        if pairs_per_class != 0:
            every = challenge(model, foregrounds.first_per_class(pairs_per_class), backgrounds, all_pairs=True,
                              inference=inference, progress=progress).to_json()
        return {"challenge": exact.to_json(), "pairs": every,
                "clean_accuracy": record.accuracy[ORIGINAL]}

    return ChallengeRecord(cached("challenge", {**config.as_dict(), "pairs_per_class": pairs_per_class,
                                                "precision": precision}, compute))


def seed_spread(data: Path, profile: str | None = None, seed: int = 0, seeds: int | None = None,
                progress: bool = True) -> pd.DataFrame:
    """The profile's default model trained on Original and on Mixed-Rand with `seeds` seeds (the profile's
    `spread_seeds` by default) from `seed`: one row per model and seed with its accuracy (%) on Original,
    Mixed-Same and Mixed-Rand, its BG-Gap and its challenge accuracy (each model trained and searched once,
    then read from its record; the chapter seed's Original model is the one of the challenge figures)."""
    p = get_profile(profile)
    rows = []
    for variant, name in ((ORIGINAL, "trained on Original"), (MIXED_RAND, "trained on Mixed-Rand")):
        for s in range(seed, seed + (seeds or p.spread_seeds)):
            config = TrainConfig.from_profile(data, profile, variant=variant, seed=s)
            acc = trained_model(config, progress=progress).accuracy
            pairs = p.challenge_pairs_per_class if (variant == ORIGINAL and s == seed) else 0
            chal = adversarial_backgrounds(config, pairs, progress=progress)
            accuracies = {v: 100 * acc[v] for v in (ORIGINAL, MIXED_SAME, MIXED_RAND)}
            rows.append({"model": name, "seed": s, **accuracies,
                         "bg_gap": accuracies[MIXED_SAME] - accuracies[MIXED_RAND],
                         "challenge accuracy": 100 * chal.challenge_accuracy,
                         "backgrounds": chal.summary["n_backgrounds"]})
    return pd.DataFrame(rows)


def spread_summary(per_seed: pd.DataFrame, metrics=(ORIGINAL, MIXED_RAND, "bg_gap", "challenge accuracy")):
    """Mean, sample standard deviation, minimum and maximum over seeds of each metric (rows) per model."""
    stats = per_seed.groupby("model", sort=False)[list(metrics)].agg(["mean", "std", "min", "max"])
    table = stats.stack(level=0, future_stack=True).rename_axis(["model", "metric"])
    table.columns = ["mean", "sd", "min", "max"]
    counts = per_seed.groupby("model", sort=False)["seed"].count()
    table["seeds"] = counts.reindex(table.index.get_level_values(0)).to_numpy()
    return table


def saliency_on_foreground(configs: dict[str, TrainConfig], progress: bool = True) -> pd.DataFrame:
    """Share (%) of positive Grad-CAM saliency on the foreground mask, mean over the Original test set
    and per class, for each named trained model (paper claim 4: higher after Mixed-Rand training)."""
    columns = {}
    for name, config in configs.items():
        record = trained_model(config, progress=progress)

        def compute(cfg: dict, record=record) -> dict:
            model = record.load()
            data = load_variant(cfg["data"], ORIGINAL, "val", with_masks=True)
            share = foreground_share(gradcam(model, data.images, progress=progress), data.masks)
            labels = data.labels.numpy()
            return {"mean": float(np.nanmean(share)), "fg_fraction": float(data.masks.float().mean()),
                    "classes": list(data.classes),
                    "per_class": [float(np.nanmean(share[labels == c])) for c in range(len(data.classes))]}

        m = cached("saliency", config.as_dict(), compute).metrics
        columns[name] = {"all test images": 100 * m["mean"], "mask area (chance)": 100 * m["fg_fraction"],
                         **{layout.short_name(c): 100 * v for c, v in zip(m["classes"], m["per_class"])}}
    return pd.DataFrame(columns)


def simsiam_backbone(data: Path, profile: str | None = None, seed: int = 0, progress: bool = True) -> Record:
    """A self-supervised backbone (SimSiam, `selfsup`) of the profile's architecture trained for its
    `ssl_epochs` on the Original training images of `data`, without labels (a cached record: its
    checkpoint, training time, last loss and collapse indicator)."""
    p = get_profile(profile)
    config = SimSiamConfig(data=str(data), arch=p.arch, epochs=p.ssl_epochs, seed=seed,
                           batch_size=min(128, 8 * p.batch_size))

    def compute(cfg: dict) -> dict:
        run_dir = results_dir() / "runs" / config_hash("simsiam", cfg)
        checkpoint = train_simsiam(config, run_dir, progress=progress)
        meta = registry.load(checkpoint).meta
        last = meta["history"][-1]
        return {"checkpoint": str(checkpoint), "train_seconds": round(sum(h["seconds"] for h in meta["history"]), 1),
                "loss": last["loss"], "z_std": last["z_std"], "collapse_reference": meta["collapse_reference"]}

    return cached("simsiam", config.as_dict(), compute)


#: The backbones RPS and CAAM are compared on: the self-supervised one (as published) and the classifier's.
SELF_SUPERVISED_BACKBONE = "SimSiam, self-supervised"
SUPERVISED_BACKBONE = "classifier trunk, supervised"


def rps_localization(config: TrainConfig, transfer_from: str = MIXED_RAND, truth: Path | None = None,
                     held_out_per_class: int = 10, progress: bool = True,
                     ssl_checkpoint: Path | None = None) -> pd.DataFrame:
    """RPS vs the CAAM baseline (channel sum of the features) on the Original test set, with the trunk of the model
    trained by `config` as the frozen backbone; w* from one pass over the Original training set
    (class-agnostic; class-wise from labels and from the model's predictions), and zero-shot from the
    `transfer_from` training set. Also the one-pass estimation speed (images/s). The images and
    masks scored are those of `truth` (a dataset with original/ and fg_mask/, such as the synthetic
    source with its exact masks), by default the training data's own.

    Metrics in % by the standard WSOL evaluation (`localize.localization_metrics`): MaxBoxAccV2 with each
    IoU at its best threshold on the test set (the standard's protocol), and `maxboxaccv2_held_out` at the
    one threshold chosen on `held_out_per_class` training images per class (the published RPS protocol).

    With `ssl_checkpoint` (a self-supervised backbone, `simsiam_backbone`), the same methods but the
    classifier's own (class-wise from its predictions) also run on it: rows indexed by (backbone, method),
    the self-supervised backbone's first."""
    record = trained_model(config, progress=progress)

    def compute(cfg: dict) -> dict:
        checkpoint = record.checkpoint
        train_set = load_variant(cfg["data"], ORIGINAL, "train")
        test = load_variant(cfg["truth"] or cfg["data"], ORIGINAL, "val", with_masks=True)
        held_out = load_variant(cfg["truth"] or cfg["data"], ORIGINAL, "train",
                                with_masks=True).first_per_class(cfg["held_out_per_class"])
        transfer = load_variant(cfg["data"], transfer_from, "train").images
        k = len(train_set.classes)
        classifier = registry.load(checkpoint).net
        backbones = {SUPERVISED_BACKBONE: checkpoint}
        if cfg["ssl_checkpoint"]:
            backbones = {SELF_SUPERVISED_BACKBONE: Path(cfg["ssl_checkpoint"]), **backbones}
        rows, speed = [], None
        for backbone_name, path in backbones.items():
            net = registry.load(path).trunk()
            t0 = time.perf_counter()
            rps = estimate(net, train_set.images, train_set.labels, num_classes=k)
            speed = speed or len(train_set) / (time.perf_counter() - t0)
            methods = _rps_methods(net, rps, estimate(net, transfer), transfer_from)
            if backbone_name == SUPERVISED_BACKBONE:
                rps_pred = estimate(net, train_set.images, predict(classifier, train_set.images), num_classes=k)
                methods["RPS class-wise (predictions)"] = lambda s, net=net, w=rps_pred: activation_maps(
                    net, s.images, w, classes=predict(classifier, s.images))
            rows += [{"backbone": backbone_name, "method": name, **_scored(maps_of, test, held_out, name)}
                     for name, maps_of in methods.items()]
        rows += [{"backbone": CHANCE, "method": name, **metrics}
                 for name, metrics in chance_rows(test.masks.numpy()).items()]
        return {"rows": rows, "estimate_images_per_s": speed, "n_train": len(train_set),
                "n_test": len(test), "n_held_out": len(held_out)}

    m = cached("rps_localization", {**config.as_dict(), "transfer_from": transfer_from,
                                    "truth": str(truth) if truth else None, "metrics": METRICS,
                                    "held_out_per_class": held_out_per_class,
                                    "ssl_checkpoint": str(ssl_checkpoint) if ssl_checkpoint else None}, compute).metrics
    table = pd.DataFrame(m["rows"]).set_index(["backbone", "method"])
    table.attrs["estimate_images_per_s"] = m["estimate_images_per_s"]
    table.attrs["n_held_out"] = m["n_held_out"]
    return table


def _rps_methods(net, rps, transferred, transfer_from: str) -> dict:
    """The localization methods on one backbone: name -> maps of an image set."""
    return {
        "CAAM (channel sum)": lambda s: activation_maps(net, s.images, None),
        "RPS": lambda s: activation_maps(net, s.images, rps),
        "RPS class-wise (labels)": lambda s: activation_maps(net, s.images, rps, classes=s.labels),
        f"RPS zero-shot (w* from {title(transfer_from)})": lambda s: activation_maps(net, s.images, transferred),
    }


def _scored(maps_of, test, held_out, name: str) -> dict:
    """One method's WSOL metrics on the test set: each IoU at its best threshold (the standard's protocol), and
    MaxBoxAccV2 at the one threshold chosen on held-out training images (the published RPS protocol)."""
    maps, masks = maps_of(test).numpy(), test.masks.numpy()
    threshold = best_threshold(maps_of(held_out).numpy(), mask_boxes(held_out.masks).numpy())
    held = box_metrics(maps, mask_boxes(test.masks).numpy(), threshold=threshold)
    row = {**localization_metrics(maps, masks), "held_out_threshold": threshold,
           "maxboxaccv2_held_out": held["maxboxaccv2"],
           # a blank map: no location scores above 0 (RPS clamps at 0), so nothing is localized in that image
           "blank_maps": 100 * float((maps.reshape(len(maps), -1).max(axis=1) <= 0).mean())}
    if name == "RPS":
        row["mask_iou@0.5"] = 100 * float(mask_iou(masks_from_maps(maps), masks).mean())
    return row


def mask_quality(synthetic: Path, config: TrainConfig, threshold: float = 0.5, progress: bool = True) -> pd.DataFrame:
    """Mean IoU (%) with the generator's exact masks, on the test split of a synthetic dataset, of
    GrabCut masks from the exact boxes (the paper's way) and of RPS masks (no annotation at all)."""
    record = trained_model(config, progress=progress)

    def compute(cfg: dict) -> dict:
        data = load_variant(cfg["synthetic"], ORIGINAL, "val", with_masks=True)
        boxes = {f"{r['class_folder']}/{r['id']}": (r["xmin"], r["ymin"], r["xmax"], r["ymax"])
                 for r in read_annotations(cfg["synthetic"]) if r["split"] == "val"}
        images = data.images.permute(0, 2, 3, 1).numpy()
        grabcut = np.stack([composite.grabcut_mask(img, boxes[i]) for img, i in zip(images, data.ids)])
        net = registry.load(record.checkpoint).trunk()
        train_set = load_variant(cfg["synthetic"], ORIGINAL, "train")
        rps = estimate(net, train_set.images)
        rps_masks = masks_from_maps(activation_maps(net, data.images, rps).numpy(), cfg["threshold"])
        exact = data.masks.numpy()
        return {"grabcut": float(mask_iou(grabcut, exact).mean()),
                "rps": float(mask_iou(rps_masks, exact).mean()),
                "box": float(mask_iou(_box_masks(exact), exact).mean()), "n": len(exact)}

    m = cached("mask_quality", {"synthetic": str(synthetic), "threshold": threshold, "backbone": config.as_dict()},
               compute).metrics
    return pd.DataFrame({"mean IoU with exact masks (%)": {
        "box (filled bounding box)": 100 * m["box"], "GrabCut from the box": 100 * m["grabcut"],
        "RPS (no annotation)": 100 * m["rps"]}})


def rps_predictor(config: TrainConfig, class_wise: bool = True, progress: bool = True):
    """The RPS w* (`localize.RPS`) of the trunk of the model trained by `config`, from one pass over
    its Original training set (class-wise from the true labels when `class_wise`)."""
    import torch

    record = trained_model(config, progress=progress)

    def compute(cfg: dict) -> dict:
        net = registry.load(record.checkpoint).trunk()
        train_set = load_variant(cfg["data"], ORIGINAL, "train")
        labels = train_set.labels if class_wise else None
        rps = estimate(net, train_set.images, labels, num_classes=len(train_set.classes), progress=progress)
        return {"w": rps.w.tolist(), "w_class": None if rps.w_class is None else rps.w_class.tolist()}

    m = cached("rps_predictor", {**config.as_dict(), "class_wise": class_wise}, compute).metrics
    return RPS(torch.tensor(m["w"]), None if m["w_class"] is None else torch.tensor(m["w_class"]))


def finegrained_correctness(config: TrainConfig, progress: bool = True) -> pd.DataFrame:
    """Per test image (indexed by id): its label and whether the model trained by `config` is right on
    each of `finegrained.VARIANTS_USED` (a cached record)."""
    record = trained_model(config, progress=progress)

    def compute(cfg: dict) -> dict:
        table = finegrained.correctness(record.load(), cfg["data"])
        return {"ids": list(table.index), "classes": table.attrs["classes"],
                **{column: table[column].tolist() for column in table.columns}}

    m = cached("finegrained", config.as_dict(), compute).metrics
    table = pd.DataFrame({c: m[c] for c in ("label", *finegrained.VARIANTS_USED)}, index=m["ids"])
    table.attrs["classes"] = m["classes"]
    return table


def _box_masks(masks: np.ndarray) -> np.ndarray:
    """Each mask's filled bounding box."""
    out = np.zeros_like(masks)
    for i, mask in enumerate(masks):
        x0, y0, x1, y1 = mask_box(mask)
        out[i, y0:y1 + 1, x0:x1 + 1] = True
    return out


def zoo_table(data: Path, profile: str | None = None, seed: int = 0, pretrained: tuple[str, ...] = (),
              progress: bool = True) -> pd.DataFrame:
    """Accuracy (%) of every zoo model (rows) on Original and each variant (columns)."""
    p = get_profile(profile)
    rows = {}
    for arch in p.zoo_archs:
        for epochs in p.zoo_epochs:
            config = TrainConfig.from_profile(data, profile, arch=arch, epochs=epochs, seed=seed)
            acc = trained_model(config, progress=progress).accuracy
            rows[f"{arch} ({epochs} epoch{'s' if epochs != 1 else ''})"] = acc
    for arch in pretrained:
        rows[f"{arch} (ImageNet)"] = pretrained_accuracy(arch, data)
    if not rows:
        raise ValueError(f"profile {p.name!r} has no model zoo and no pretrained models were given")
    columns = [ORIGINAL, *[v for v in PROGRESS_VARIANTS if all(v in acc for acc in rows.values())]]
    return pd.DataFrame({name: {v: 100 * acc[v] for v in columns} for name, acc in rows.items()}).T


def zoo_halves(data: Path, profile: str | None = None, seed: int = 0, pretrained: tuple[str, ...] = (),
               progress: bool = True) -> pd.DataFrame:
    """`zoo_table` on two halves of the test images that share no image: accuracy (%) on Original on one seeded half
    (column Original, claim 6's benchmark) and on each variant on the other half, so that no foreground of the x axis
    is in the Mixed sets it is set against. One cached record per zoo; `attrs["halves"]`: the two halves' sizes."""
    p = get_profile(profile)
    models = {f"{arch} ({epochs} epoch{'s' if epochs != 1 else ''})": ("trained", arch, epochs)
              for arch in p.zoo_archs for epochs in p.zoo_epochs}
    models.update({f"{arch} (ImageNet)": ("pretrained", arch, 0) for arch in pretrained})

    def compute(cfg: dict) -> dict:
        ids = sorted(ImageListing.of(data, ORIGINAL, "val").ids)
        half = set(np.random.default_rng(cfg["seed"]).permutation(ids)[: len(ids) // 2].tolist())
        rows = {}
        for name, (kind, arch, epochs) in cfg["models"].items():
            if kind == "trained":
                config = TrainConfig.from_profile(data, profile, arch=arch, epochs=epochs, seed=seed)
                net = trained_model(config, progress=progress).load()
                scored = correctness(net, data)
            else:
                scored = correctness(_imagenet({"arch": arch, "data": str(data), "weights": PAPER_WEIGHTS}), data,
                                     inference=_photo_inference("fp32"))
            row = {}
            for variant, right in scored.correct.items():
                on_x = np.array([i in half for i in scored.ids[variant]])
                keep = on_x if variant == ORIGINAL else ~on_x
                row[variant] = 100 * float(np.asarray(right)[keep].mean())
            rows[name] = row
        return {"rows": rows, "halves": [len(half), len(ids) - len(half)]}

    record = cached("zoo_halves", {"data": str(data), "profile": p.name, "seed": seed, "models": models,
                                   "split": "seeded half of the Original test ids"}, compute)
    rows = record.metrics["rows"]
    columns = [ORIGINAL, *[v for v in PROGRESS_VARIANTS if all(v in r for r in rows.values())]]
    table = pd.DataFrame({name: {v: r[v] for v in columns} for name, r in rows.items()}).T
    table.attrs["halves"] = record.metrics["halves"]
    return table

