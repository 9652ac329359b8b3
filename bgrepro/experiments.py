"""The paper's first experiments as functions of (data, profile, seed), each model a cached record.

- `backgrounds_suffice` (paper Fig. 2): models trained on Only-BG-B, Only-BG-T or No-FG, tested on
  their own test set and on Original.
- `bg_gap_table` (paper Table 2 layout): rows Original, Only-BG-T, Mixed-Same, Mixed-Rand, BG-Gap;
  one column per architecture trained on Original, plus ImageNet-pretrained columns when their
  weights are on disk.
- `mixed_rand_training` (paper Fig. 5): models trained on Original, on the materialised Mixed-Rand
  and on Mixed-Rand composited on the fly, tested on every variant that keeps the foreground.
- `adversarial_backgrounds` (paper Sec. 4, Figs. 3-4): the backgrounds challenge of a trained model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from .adversarial import challenge, load_challenge_data
from .classes import NUM_CLASSES
from .datasets import ImageSet
from .evaluate import evaluate
from .models import imagenet_model, load_checkpoint
from .results import cached, config_hash, results_dir
from .train import TrainConfig, default_device, train

FOREGROUND_VARIANTS = ("original", "mixed_same", "mixed_rand", "mixed_next", "only_fg")
TABLE2_ROWS = ("original", "only_bg_t", "mixed_same", "mixed_rand")


def trained_model(config: TrainConfig, progress: bool = True) -> dict:
    """Train (or reuse) a model and evaluate it on every variant of its data's test split."""

    def compute(cfg: dict) -> dict:
        run_dir = results_dir() / "runs" / config_hash("trained_model", cfg)
        checkpoint = train(config, run_dir, progress=progress)
        model, meta = load_checkpoint(checkpoint)
        history = meta.get("history", [])
        return {"evaluation": evaluate(model, config.data), "checkpoint": str(checkpoint),
                "train_seconds": round(sum(h["seconds"] for h in history), 1),
                "final_train_accuracy": history[-1]["train_accuracy"] if history else None}

    return cached("trained_model", config.as_dict(), compute)


def backgrounds_suffice(data: Path, profile: str | None = None, seed: int = 0, **overrides) -> pd.DataFrame:
    """Accuracy (%) of background-only models on their own test set and on Original."""
    rows = []
    for variant in ("only_bg_b", "only_bg_t", "no_fg"):
        record = trained_model(TrainConfig.from_profile(data, profile, variant=variant, seed=seed, **overrides))
        acc = record["metrics"]["evaluation"]["accuracy"]
        rows.append({"trained on": variant, "own test set": 100 * acc[variant], "original": 100 * acc["original"]})
    return pd.DataFrame(rows).set_index("trained on")


def pretrained_accuracy(arch: str, data: Path) -> dict:
    """Accuracy per variant of an ImageNet-pretrained model mapped to IN-9 (a cached record; the weights
    are loaded only when no record exists, with a clear error when they are not on disk)."""
    record = cached("pretrained_eval", {"arch": arch, "data": str(data)},
                    lambda cfg: {"evaluation": evaluate(imagenet_model(cfg["arch"]), cfg["data"])})
    return record["metrics"]["evaluation"]["accuracy"]


def bg_gap_table(data: Path, archs: tuple[str, ...], profile: str | None = None, seed: int = 0,
                 pretrained: tuple[str, ...] = (), **overrides) -> pd.DataFrame:
    """Table 2 layout: accuracy (%) per test set and BG-Gap, one column per model."""
    columns = {}
    for arch in archs:
        record = trained_model(TrainConfig.from_profile(data, profile, arch=arch, seed=seed, **overrides))
        columns[f"{arch} (trained)"] = record["metrics"]["evaluation"]["accuracy"]
    for arch in pretrained:
        columns[f"{arch} (ImageNet)"] = pretrained_accuracy(arch, data)
    table = pd.DataFrame({name: {r: 100 * acc[r] for r in TABLE2_ROWS} for name, acc in columns.items()})
    table.loc["bg_gap"] = table.loc["mixed_same"] - table.loc["mixed_rand"]
    return table


def mixed_rand_training(data: Path, profile: str | None = None, seed: int = 0, **overrides) -> pd.DataFrame:
    """Accuracy (%) on the foreground-keeping variants of Original- vs Mixed-Rand-trained models."""
    base = TrainConfig.from_profile(data, profile, seed=seed, **overrides)
    models = {
        "original": base,
        "mixed_rand": replace(base, variant="mixed_rand"),
        "mixed_rand (on the fly)": replace(base, variant="mixed_rand", on_the_fly=True),
    }
    table = {}
    for name, config in models.items():
        acc = trained_model(config)["metrics"]["evaluation"]["accuracy"]
        table[name] = {v: 100 * acc[v] for v in FOREGROUND_VARIANTS}
    frame = pd.DataFrame(table)
    frame.loc["bg_gap"] = frame.loc["mixed_same"] - frame.loc["mixed_rand"]
    frame.loc["spread"] = frame.loc[list(FOREGROUND_VARIANTS)].max() - frame.loc[list(FOREGROUND_VARIANTS)].min()
    return frame


def stratified(data: ImageSet, per_class: int | None) -> ImageSet:
    """The first `per_class` images of each class (all of them when None)."""
    if per_class is None:
        return data
    keep = torch.cat([torch.nonzero(data.labels == c).flatten()[:per_class] for c in range(NUM_CLASSES)])
    keep = keep.sort().values
    return ImageSet(data.images[keep], data.labels[keep], [data.ids[i] for i in keep],
                    None if data.masks is None else data.masks[keep])


def adversarial_backgrounds(config: TrainConfig, pairs_per_class: int | None = None, precision: str = "auto",
                            progress: bool = True) -> dict:
    """The backgrounds challenge of the model trained by `config`, on its data's test split.

    metrics["challenge"]: the exact search over every foreground (challenge accuracy, fooled ids,
    fooled share per class). metrics["pairs"]: every (foreground, background) pair evaluated for
    the per-background counts of Figs. 3-4, over all foregrounds or `pairs_per_class` of each class.
    """
    record = trained_model(config, progress=progress)

    def compute(cfg: dict) -> dict:
        model, _ = load_checkpoint(record["metrics"]["checkpoint"])
        device = default_device()
        foregrounds, backgrounds = load_challenge_data(config.data)
        exact = challenge(model, foregrounds, backgrounds, device=device, precision=precision, progress=progress)
        every = challenge(model, stratified(foregrounds, pairs_per_class), backgrounds, all_pairs=True,
                          device=device, precision=precision, progress=progress)
        return {"challenge": exact.to_json(), "pairs": every.to_json(),
                "clean_accuracy": record["metrics"]["evaluation"]["accuracy"]["original"]}

    return cached("challenge", {**config.as_dict(), "pairs_per_class": pairs_per_class, "precision": precision},
                  compute)
