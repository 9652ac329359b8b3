"""Evaluation: accuracy of a model on every variant of a dataset, per class, and the BG-Gap.

BG-Gap = accuracy(Mixed-Same) - accuracy(Mixed-Rand): how much a model loses when the background
of its image no longer comes from the image's class.

Memory: a test set up to `IN_MEMORY` decoded bytes is decoded once and kept (later models reuse it);
a larger one, and every one of a single model's evaluation (`bgrepro eval`), is streamed from disk in
chunks of `CHUNK` images (the next decoded while one is scored), so peak memory is two chunks whatever
the collection's size (and the bootstrap's resamples are drawn in blocks: `BOOTSTRAP_BLOCK`). Under
torchrun each rank scores its block of every set and the predictions are joined in order
(`distributed`): the same numbers as one process.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import distributed, layout
from ..data.datasets import ImageListing, ImageSet, load_variant
from ..inference import Inference
from ..variants import IN9L, MIXED_RAND, MIXED_SAME, NAMES

#: Test sets up to this many decoded bytes are decoded once and kept; larger ones are streamed.
IN_MEMORY = 256 * 2**20
#: Images decoded at a time when a set is streamed.
CHUNK = 2048


@lru_cache(maxsize=32)
def _cached_set(root: str, variant: str, split: str, stamp: tuple[float, ...]) -> ImageSet:
    return load_variant(root, variant, split)


def test_set(root: Path, variant: str, split: str = "val") -> ImageSet:
    """A decoded test set, cached in memory while its folder is unchanged."""
    folder = layout.split_dir(root, variant, split)
    # a file written or replaced (atomic rename) in a class folder changes that folder's mtime
    stamp = tuple(p.stat().st_mtime for p in (folder, *sorted(folder.iterdir())) if p.is_dir())
    return _cached_set(str(root), variant, split, stamp)


def forget_test_sets() -> None:
    """Drop the decoded test sets `test_set` keeps (the real-photo chapter's two routes kept 320 MB of them to its
    end; decoding them again took about a second)."""
    _cached_set.cache_clear()


def available_variants(root: Path, split: str = "val") -> list[str]:
    """The variants (and extra sets) that a dataset folder has for a split."""
    return [v for v in (*NAMES, IN9L) if layout.split_dir(root, v, split).is_dir()]


def predict(model: torch.nn.Module, images: torch.Tensor, batch_size: int | None = None, device=None,
            precision: str = "fp32", inference: Inference | None = None) -> torch.Tensor:
    """Predicted class of every uint8 image (N, 3, H, W), on CUDA when available (or `device`)."""
    return (inference or Inference.at(device, precision, batch_size)).predict(model, images)


#: Bootstrap draws held in memory at once: the resamples are drawn in blocks of rows, so memory stays flat
#: however many test images there are (the same draws, and numbers, as all at once).
BOOTSTRAP_BLOCK = 4_000_000


def _resampled_means(rng: np.random.Generator, arrays: list[np.ndarray], resamples: int) -> list[np.ndarray]:
    """The mean of each array over `resamples` bootstrap resamples of its positions (the same resamples for
    every array, paired), drawn `BOOTSTRAP_BLOCK` at a time."""
    n = len(arrays[0])
    rows = max(1, BOOTSTRAP_BLOCK // max(n, 1))
    means = [[] for _ in arrays]
    for start in range(0, resamples, rows):
        draws = rng.integers(0, n, size=(min(rows, resamples - start), n))
        for out, values in zip(means, arrays):
            out.append(values[draws].mean(axis=1))
    return [np.concatenate(m) if m else np.empty(0) for m in means]


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
        out[name] = interval(_resampled_means(rng, [hits], resamples)[0])
    gap = None
    if {MIXED_SAME, MIXED_RAND} <= correct.keys():
        same = dict(zip(ids[MIXED_SAME], correct[MIXED_SAME]))
        rand = dict(zip(ids[MIXED_RAND], correct[MIXED_RAND]))
        shared = sorted(same.keys() & rand.keys())
        if shared:
            a = np.array([same[i] for i in shared], dtype=np.float64)
            b = np.array([rand[i] for i in shared], dtype=np.float64)
            mean_a, mean_b = _resampled_means(rng, [a, b], resamples)
            gap = interval(mean_a - mean_b)
    return out, gap


@dataclass
class Correctness:
    """Per test set (variant), whether a model is right on each test image (booleans, or fractions such as a
    share of seeds), the images' ids and true classes, in one order; and the data's class names."""

    correct: dict[str, np.ndarray]
    ids: dict[str, list[str]]
    labels: dict[str, np.ndarray]
    classes: list[str]

    def summarize(self, bootstrap: int = 0, seed: int = 0) -> dict:
        """Accuracy on every set, per class, the BG-Gap and (with `bootstrap` resamples) their 95% intervals."""
        return summarize(self, bootstrap, seed)

    def report(self, root: Path, split: str = "val", bootstrap: int = 0, seed: int = 0) -> dict:
        """What `evaluate` records: `summarize`'s accuracies and intervals, and the groups of every mixed set."""
        from .groups import as_json  # groups reads Correctness: imported here, not at the top (a cycle)

        return {**self.summarize(bootstrap, seed), "groups": as_json(self, root, split)}

    def pooled(self, others: list[Correctness]) -> Correctness:
        """Each image's share of these models (this one and `others`, seeds of one model) that got it right."""
        models = [self, *others]
        return replace(self, correct={v: np.mean([m.correct[v] for m in models], axis=0) for v in self.correct})


def correctness(model: torch.nn.Module, root: Path, variants: list[str] | None = None, split: str = "val",
                inference: Inference | None = None, progress: bool = False, keep: bool = True) -> Correctness:
    """Per variant, whether the model is right on each test image (bool array), the images' ids and true
    classes, and the class names. `keep`: decode a set of up to `IN_MEMORY` bytes once and keep it for the
    next model (the book and the report score several); without it (one model, `bgrepro eval`) every set
    is streamed and memory holds one chunk."""
    inference = inference or Inference.at(None)
    variants = variants or available_variants(root, split)
    if not variants:
        raise FileNotFoundError(f"{root}: no variant folders with a {split!r} split")
    correct, ids, labels, classes = {}, {}, {}, []
    prepared = inference.prepare(model)
    for variant in tqdm(variants, desc="evaluate", disable=not (progress and distributed.is_main())):
        listing = ImageListing.of(root, variant, split)
        h, w = listing.shape()
        if not keep or distributed.active() or len(listing) * 3 * h * w > IN_MEMORY:
            preds = predict_listing(prepared, listing, inference)
        else:
            preds = inference.logits(prepared, test_set(root, variant, split).images).argmax(1)
        truth = listing.labels
        correct[variant] = (preds == truth).numpy()
        ids[variant], labels[variant], classes = listing.ids, truth.numpy(), list(listing.classes)
    return Correctness(correct, ids, labels, classes)


def predict_listing(prepared: torch.nn.Module, listing: ImageListing, inference: Inference,
                    chunk: int = CHUNK) -> torch.Tensor:
    """Predicted class of every file of a listing, decoded about `chunk` at a time (a prepared model); under
    torchrun each rank predicts its block of whole batches and every rank gets them all, in order (the same
    batches as one process, so the same numbers)."""
    chunk = max(1, chunk // inference.batch_size) * inference.batch_size  # chunks of whole batches
    block = listing.subset(range(len(listing))[distributed.shard_batches(len(listing), inference.batch_size)],
                           sampled=False)
    preds = [inference.logits(prepared, images).argmax(1) for _, images in block.chunks(chunk)]
    return distributed.gather(torch.cat(preds) if preds else torch.empty(0, dtype=torch.long))


def image_listing(root: Path, split: str = "val") -> list[str]:
    """Every image a model is scored on, as paths relative to `root` (`<variant>/<split>/<class>/<file>`):
    what a predictions file made outside bgrepro must cover (`bgrepro eval --list-images`)."""
    from ..data.datasets import list_variant

    variants = available_variants(root, split)
    if not variants:
        raise FileNotFoundError(f"{root}: no variant folders with a {split!r} split")
    classes = layout.class_folders(root)
    return [p.relative_to(root).as_posix() for v in variants for p, _ in list_variant(root, v, split, classes)]


def read_predictions(path: Path, classes: list[str], outputs: tuple[str, ...] | None = None,
                     class_map: Path | None = None) -> dict[str, int]:
    """A predictions file made outside bgrepro, as {image path: predicted data class (len(classes): none)}.

    Columns: `path` (relative to the data: `<variant>/<split>/<class>/<file>`) and either `prediction` (a class
    name, or an output index: of `outputs` when given, else of the data's sorted classes) or one logit column
    per class (the column names are the model's outputs; the largest wins). `class_map` maps the model's
    outputs to the data's classes as for a model (`registry.resolve_outputs`)."""
    from ..io import read_table
    from ..registry import resolve_outputs

    columns, rows = read_table(path)
    if "path" not in columns:
        raise ValueError(f"{path}: a predictions file needs a `path` column (found: {', '.join(columns[:6])})")
    if not rows:
        raise ValueError(f"{path}: no predictions")
    logit_columns = [c for c in columns if c != "path"] if "prediction" not in columns else None
    if logit_columns is not None and len(logit_columns) < 2:
        raise ValueError(f"{path}: needs a `prediction` column, or one logit column per class")
    names = tuple(logit_columns) if logit_columns is not None else outputs
    n_out = len(names) if names else len(classes)
    groups, _ = resolve_outputs(names, n_out, list(classes), class_map=class_map, source=str(path))
    out: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        key = (row.get("path") or "").strip().replace("\\", "/").removeprefix("./")
        if not key:
            raise ValueError(f"{path}:{line}: no path")
        if key in out:
            raise ValueError(f"{path}:{line}: a second prediction for {key}")
        index = _output_index(row, logit_columns, names, classes, f"{path}:{line}")
        out[key] = index if groups is None else groups[index]
    return out


def _output_index(row: dict, logit_columns: list[str] | None, names: tuple[str, ...] | None, classes: list[str],
                  where: str) -> int:
    """The model output a predictions row names: the largest of its logits, or its `prediction` (an output or
    class name, or an output index)."""
    if logit_columns is not None:
        try:
            values = [float(row[c]) for c in logit_columns]
        except (TypeError, ValueError):
            raise ValueError(f"{where}: the logits must be numbers") from None
        if not np.isfinite(values).all():
            raise ValueError(f"{where}: a logit is NaN or infinite")
        return int(np.argmax(values))
    value, n_out = (row.get("prediction") or "").strip(), len(names) if names else len(classes)
    if names is not None and value in names:
        return names.index(value)
    if names is None and value in classes:
        return list(classes).index(value)
    if value.lstrip("-").isdigit() and 0 <= int(value) < n_out:
        return int(value)
    raise ValueError(f"{where}: prediction {value!r} is neither a class ({', '.join((names or classes)[:4])}, ...) "
                     f"nor an output index 0 to {n_out - 1}")


def correctness_from_predictions(predictions: dict[str, int], root: Path, split: str = "val",
                                 source: str = "the predictions") -> Correctness:
    """`correctness` from predictions made outside bgrepro (`read_predictions`): the same images,
    ids and order as the in-process route, so every number computed from them is the same."""
    from ..data.datasets import list_variant

    variants = available_variants(root, split)
    if not variants:
        raise FileNotFoundError(f"{root}: no variant folders with a {split!r} split")
    classes = layout.class_folders(root)
    correct, ids, labels, missing, seen = {}, {}, {}, [], set()
    for variant in variants:
        items = list_variant(root, variant, split, classes)
        keys = [p.relative_to(root).as_posix() for p, _ in items]
        missing += [k for k in keys if k not in predictions]
        seen.update(keys)
        labels[variant] = np.array([label for _, label in items])
        ids[variant] = [f"{p.parent.name}/{p.stem}" for p, _ in items]
        correct[variant] = np.array([predictions.get(k, -1) == label for k, (_, label) in zip(keys, items)])
    if missing:
        raise ValueError(f"{source}: no prediction for {len(missing)} of {len(seen)} images (e.g. {missing[0]}); "
                         f"`bgrepro eval --data {root} --list-images` lists every image to score")
    extra = sorted(set(predictions) - seen)
    if extra:
        raise ValueError(f"{source}: {len(extra)} paths are not test images of {root} (e.g. {extra[0]}); paths are "
                         "relative to the data: <variant>/<split>/<class>/<file>")
    return Correctness(correct, ids, labels, list(classes))


def summarize(scored: Correctness, bootstrap: int = 0, seed: int = 0) -> dict:
    """Accuracy on every set, per class, the BG-Gap and (with `bootstrap` resamples) their 95% intervals,
    from per-image correctness (booleans, or fractions such as a mean over seeds)."""
    ids, labels, classes = scored.ids, scored.labels, scored.classes
    correct = {k: np.asarray(v, dtype=np.float64) for k, v in scored.correct.items()}
    result = {"accuracy": {}, "per_class": {}, "n": {}, "classes": list(classes)}
    for variant, hits in correct.items():
        result["accuracy"][variant] = float(hits.mean())
        result["per_class"][variant] = {c: float(hits[labels[variant] == k].mean()) if (labels[variant] == k).any()
                                        else None for k, c in enumerate(classes)}
        result["n"][variant] = int(len(hits))
    acc = result["accuracy"]
    result["bg_gap"] = acc[MIXED_SAME] - acc[MIXED_RAND] if {MIXED_SAME, MIXED_RAND} <= acc.keys() else None
    if bootstrap:
        result["ci95"], result["bg_gap_ci95"] = bootstrap_intervals(correct, ids, bootstrap, seed)
        result["bootstrap"] = {"resamples": bootstrap, "seed": seed, "over": "test images"}
    return result


def evaluate(model: torch.nn.Module, root: Path, variants: list[str] | None = None, split: str = "val",
             batch_size: int | None = None, device=None, progress: bool = False, precision: str = "fp32",
             bootstrap: int = 0, seed: int = 0) -> dict:
    """Accuracy on every variant present (or those given), per-class accuracies and the BG-Gap; with
    `bootstrap` resamples, 95% intervals over test images (`ci95`, `bg_gap_ci95`); and the groups of every
    mixed set (`groups`: foreground class x background class, `analyses.groups`)."""
    scored = correctness(model, root, variants, split, Inference.at(device, precision, batch_size), progress)
    return scored.report(root, split, bootstrap, seed)


def format_table(result: dict) -> str:
    """A plain-text table of accuracies (%) and the BG-Gap, with their 95% intervals when computed."""
    ci = result.get("ci95") or {}
    span = lambda pair: f"  [{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]" if pair else ""
    lines = [f"{'test set':<12}{'accuracy':>10}{'images':>8}" + ("  95% interval" if ci else "")]
    for variant, acc in result["accuracy"].items():
        lines.append(f"{variant:<12}{100 * acc:>9.1f}%{result['n'][variant]:>8}{span(ci.get(variant))}")
    if result.get("bg_gap") is not None:
        lines.append(f"{'BG-Gap':<12}{100 * result['bg_gap']:>9.1f}{'':>9}{span(result.get('bg_gap_ci95'))}")
    from .groups import worst_group_line

    for variant, matrix in (result.get("groups") or {}).items():
        lines.append(f"worst group of {variant}: {worst_group_line(matrix)}")
    return "\n".join(lines)
