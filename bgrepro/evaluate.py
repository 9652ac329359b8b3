"""Evaluation: accuracy of a model on every variant of a dataset, per class, and the BG-Gap.

BG-Gap = accuracy(Mixed-Same) - accuracy(Mixed-Rand): how much a model loses when the background
of its image no longer comes from the image's class.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import layout
from .classes import VARIANTS
from .datasets import ImageSet, load_variant
from .inference import Inference

#: Extra test sets evaluated when present beside the variants (IN-9L's val split).
EXTRA_SETS = ("in9l",)


@lru_cache(maxsize=32)
def _cached_set(root: str, variant: str, split: str, stamp: tuple[float, ...]) -> ImageSet:
    return load_variant(root, variant, split)


def test_set(root: Path, variant: str, split: str = "val") -> ImageSet:
    """A decoded test set, cached in memory while its folder is unchanged."""
    folder = layout.split_dir(root, variant, split)
    # a file written or replaced (atomic rename) in a class folder changes that folder's mtime
    stamp = tuple(p.stat().st_mtime for p in (folder, *sorted(folder.iterdir())) if p.is_dir())
    return _cached_set(str(root), variant, split, stamp)


def available_variants(root: Path, split: str = "val") -> list[str]:
    """The variants (and extra sets) that a dataset folder has for a split."""
    return [v for v in (*VARIANTS, *EXTRA_SETS) if layout.split_dir(root, v, split).is_dir()]


def predict(model: torch.nn.Module, images: torch.Tensor, batch_size: int | None = None, device=None,
            precision: str = "fp32", inference: Inference | None = None) -> torch.Tensor:
    """Predicted class of every uint8 image (N, 3, H, W), on CUDA when available (or `device`)."""
    return (inference or Inference.at(device, precision, batch_size)).predict(model, images)


def bootstrap_intervals(correct: dict[str, np.ndarray], ids: dict[str, list[str]], resamples: int = 1000,
                        seed: int = 0, level: float = 0.95) -> tuple[dict[str, list[float]], list[float] | None]:
    """Percentile bootstrap intervals over test images: one per set's accuracy, and one for the BG-Gap
    from a paired bootstrap (Mixed-Same and Mixed-Rand show the same foregrounds, so the same images are
    drawn for both)."""
    rng = np.random.default_rng(seed)
    tail = 100 * (1 - level) / 2

    def interval(values: np.ndarray) -> list[float]:
        return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]

    out = {}
    for name, hits in correct.items():
        draws = rng.integers(0, len(hits), size=(resamples, len(hits)))
        out[name] = interval(hits[draws].mean(axis=1))
    gap = None
    if {"mixed_same", "mixed_rand"} <= correct.keys():
        same = dict(zip(ids["mixed_same"], correct["mixed_same"]))
        rand = dict(zip(ids["mixed_rand"], correct["mixed_rand"]))
        shared = sorted(same.keys() & rand.keys())
        if shared:
            a = np.array([same[i] for i in shared], dtype=np.float64)
            b = np.array([rand[i] for i in shared], dtype=np.float64)
            draws = rng.integers(0, len(shared), size=(resamples, len(shared)))
            gap = interval(a[draws].mean(axis=1) - b[draws].mean(axis=1))
    return out, gap


def correctness(model: torch.nn.Module, root: Path, variants: list[str] | None = None, split: str = "val",
                inference: Inference | None = None, progress: bool = False) -> tuple[dict, dict, dict, list[str]]:
    """Per variant, whether the model is right on each test image (bool array), the images' ids and true
    classes, and the class names."""
    inference = inference or Inference.at(None)
    variants = variants or available_variants(root, split)
    if not variants:
        raise FileNotFoundError(f"{root}: no variant folders with a {split!r} split")
    correct, ids, labels, classes = {}, {}, {}, []
    for variant in tqdm(variants, desc="evaluate", disable=not progress):
        data = test_set(root, variant, split)
        correct[variant] = (predict(model, data.images, inference=inference) == data.labels).numpy()
        ids[variant], labels[variant], classes = list(data.ids), data.labels.numpy(), list(data.classes)
    return correct, ids, labels, classes


def summarize(correct: dict[str, np.ndarray], ids: dict[str, list[str]], labels: dict[str, np.ndarray],
              classes: list[str], bootstrap: int = 0, seed: int = 0) -> dict:
    """Accuracy on every set, per class, the BG-Gap and (with `bootstrap` resamples) their 95% intervals,
    from per-image correctness (booleans, or fractions such as a mean over seeds)."""
    correct = {k: np.asarray(v, dtype=np.float64) for k, v in correct.items()}
    result = {"accuracy": {}, "per_class": {}, "n": {}, "classes": list(classes)}
    for variant, hits in correct.items():
        result["accuracy"][variant] = float(hits.mean())
        result["per_class"][variant] = {c: float(hits[labels[variant] == k].mean()) if (labels[variant] == k).any()
                                        else None for k, c in enumerate(classes)}
        result["n"][variant] = int(len(hits))
    acc = result["accuracy"]
    result["bg_gap"] = acc["mixed_same"] - acc["mixed_rand"] if {"mixed_same", "mixed_rand"} <= acc.keys() else None
    if bootstrap:
        result["ci95"], result["bg_gap_ci95"] = bootstrap_intervals(correct, ids, bootstrap, seed)
        result["bootstrap"] = {"resamples": bootstrap, "seed": seed, "over": "test images"}
    return result


def evaluate(model: torch.nn.Module, root: Path, variants: list[str] | None = None, split: str = "val",
             batch_size: int | None = None, device=None, progress: bool = False, precision: str = "fp32",
             bootstrap: int = 0, seed: int = 0) -> dict:
    """Accuracy on every variant present (or those given), per-class accuracies and the BG-Gap; with
    `bootstrap` resamples, 95% intervals over test images (`ci95`, `bg_gap_ci95`)."""
    inference = Inference.at(device, precision, batch_size)
    return summarize(*correctness(model, root, variants, split, inference, progress), bootstrap, seed)


def format_table(result: dict) -> str:
    """A plain-text table of accuracies (%) and the BG-Gap, with their 95% intervals when computed."""
    ci = result.get("ci95") or {}
    span = lambda pair: f"  [{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]" if pair else ""
    lines = [f"{'test set':<12}{'accuracy':>10}{'images':>8}" + ("  95% interval" if ci else "")]
    for variant, acc in result["accuracy"].items():
        lines.append(f"{variant:<12}{100 * acc:>9.1f}%{result['n'][variant]:>8}{span(ci.get(variant))}")
    if result.get("bg_gap") is not None:
        lines.append(f"{'BG-Gap':<12}{100 * result['bg_gap']:>9.1f}{'':>9}{span(result.get('bg_gap_ci95'))}")
    return "\n".join(lines)
