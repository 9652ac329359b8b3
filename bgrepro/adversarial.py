"""Adversarial backgrounds: the backgrounds challenge (paper Sec. 4, Figs. 3-4).

A test foreground (an Original test image with its `fg_mask`) is *fooled* when some Only-BG-T test
background, of any class, makes the model predict a class other than the foreground's once the
foreground is pasted on it. *Challenge accuracy* is the share of foregrounds never fooled (paper:
22.3% for an ImageNet-pretrained ResNet-50, 12.0% for a ResNet-50 trained on IN-9L).

`challenge(model, foregrounds, backgrounds)` is the fast search: every image is decoded once into a
uint8 tensor on the device, composites are made there in large batches (the toolkit's
`composite.paste_torch`), in fp32 (bf16 autocast an opt-in) and channels_last. A foreground
is dropped as soon as one background fools it, and each class's foregrounds try first the
backgrounds that fooled most of a few pilot foregrounds (which meet every background). Dropping a
foreground only once it is fooled keeps the answer exact: an unfooled foreground still meets every
background, so the fooled set is the one an exhaustive search finds (`challenge_reference`, the
official script's method, is that search; a test compares the two). With `all_pairs=True` every
pair is evaluated, which the per-background counts (Figs. 3-4) need.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import composite, layout
from .datasets import ImageSet, list_variant, load_variant
from .inference import Inference
from .io import read_image, read_mask


@dataclass
class ChallengeResult:
    """Outcome of the backgrounds challenge for one model."""

    fg_ids: list[str]
    fg_labels: np.ndarray  # (N,)
    bg_ids: list[str]
    bg_labels: np.ndarray  # (M,)
    fooled: np.ndarray  # bool (N,): some background fools the foreground
    composites: int  # composites evaluated
    seconds: float
    #: bool (N, M): background j fools foreground i; only with all_pairs
    pairs: np.ndarray | None = field(default=None, repr=False)
    #: The dataset's class names, in label order.
    classes: tuple[str, ...] = ()
    #: Foregrounds still unfooled but not yet tried on every background when a `time_limit` stopped the
    #: search (0: complete, the fooled set exact). Then `fooled` is a lower bound on the exact one.
    undecided: int = 0

    @property
    def challenge_accuracy(self) -> float:
        """Share of foregrounds that no background fools."""
        return float(1 - self.fooled.mean())

    @property
    def fooled_fraction(self) -> float:
        """Share of foregrounds that some background fools."""
        return float(self.fooled.mean())

    @property
    def fooled_ids(self) -> list[str]:
        return [i for i, f in zip(self.fg_ids, self.fooled) if f]

    def per_class(self) -> list[float | None]:
        """Fooled share of each class's foregrounds (None for a class with no foreground)."""
        return [float(self.fooled[self.fg_labels == c].mean()) if (self.fg_labels == c).any() else None
                for c in range(len(self.classes))]

    def _need_pairs(self) -> np.ndarray:
        if self.pairs is None:
            raise ValueError("per-background counts need every pair: run the challenge with all_pairs=True")
        return self.pairs

    def background_counts(self) -> np.ndarray:
        """For every background, how many foregrounds of other classes it fools."""
        other = self.fg_labels[:, None] != self.bg_labels[None, :]
        return (self._need_pairs() & other).sum(axis=0)

    def background_rates(self) -> np.ndarray:
        """For every background, the share of other-class foregrounds it fools."""
        n_other = np.array([(self.fg_labels != c).sum() for c in self.bg_labels])
        return self.background_counts() / np.maximum(n_other, 1)

    def class_fooling(self) -> list[float | None]:
        """For each class c: share of the other classes' foregrounds fooled by some background of class c
        (the paper: 66.55% of non-insect foregrounds can be fooled by some insect background)."""
        pairs = self._need_pairs()
        shares = []
        for c in range(len(self.classes)):
            bgs, fgs = self.bg_labels == c, self.fg_labels != c
            shares.append(float(pairs[np.ix_(fgs, bgs)].any(axis=1).mean()) if bgs.any() and fgs.any() else None)
        return shares

    def to_json(self) -> dict:
        """A JSON-ready summary (with the per-background counts when every pair was evaluated)."""
        out = {
            "challenge_accuracy": self.challenge_accuracy,
            "fooled_fraction": self.fooled_fraction,
            "n_foregrounds": len(self.fg_ids),
            "n_backgrounds": len(self.bg_ids),
            "fooled_ids": self.fooled_ids,
            "classes": list(self.classes),
            "fooled_per_class": dict(zip(self.classes, self.per_class())),
            "composites": int(self.composites),
            "seconds": round(self.seconds, 3),
            "all_pairs": self.pairs is not None,
            "complete": self.undecided == 0,
            "undecided": int(self.undecided),
        }
        if self.pairs is not None:
            out["background_ids"] = list(self.bg_ids)
            out["background_labels"] = [int(v) for v in self.bg_labels]
            out["background_counts"] = [int(v) for v in self.background_counts()]
            out["background_rates"] = [float(v) for v in self.background_rates()]
            out["class_fooling"] = dict(zip(self.classes, self.class_fooling()))
        return out


def load_challenge_data(root: Path, split: str = "val") -> tuple[ImageSet, ImageSet]:
    """Foregrounds (Original images with fg_mask masks) and Only-BG-T backgrounds of a dataset split."""
    for need in ("original", layout.MASKS, "only_bg_t"):
        if not layout.split_dir(root, need, split).is_dir():
            raise FileNotFoundError(f"{layout.split_dir(root, need, split)}: missing; the challenge needs original/, "
                                    "fg_mask/ and only_bg_t/ (build them with `bgrepro build`)")
    foregrounds = load_variant(root, "original", split, with_masks=True)
    try:
        backgrounds = load_variant(root, "only_bg_t", split)
    except ValueError as err:
        raise ValueError(f"no backgrounds: {err}") from None
    if foregrounds.images.shape[1:] != backgrounds.images.shape[1:]:
        raise ValueError(f"{root}: foregrounds are {tuple(foregrounds.images.shape[2:])} but Only-BG-T "
                         f"backgrounds are {tuple(backgrounds.images.shape[2:])}; they must be one size")
    return foregrounds, backgrounds


def _check_outputs(model: torch.nn.Module, probe: torch.Tensor, num_classes: int) -> None:
    with torch.no_grad():
        n_out = model(probe).shape[1]
    if n_out == 1000 and num_classes != 1000:
        raise ValueError("the model has 1000 outputs (an ImageNet model) but no class mapping to the data's "
                         f"{num_classes} classes: wrap it in bgrepro.models.IN9Mapped for IN-9 data")
    # a mapped ImageNet model has one more logit, "no class", which always counts as wrong
    if n_out not in (num_classes, num_classes + 1):
        raise ValueError(f"the model has {n_out} outputs but the data has {num_classes} classes")


class _Scorer:
    """Predictions for (foreground, background) index pairs, composited on the device in batches."""

    def __init__(self, model, foregrounds: ImageSet, backgrounds: ImageSet, device, batch_size: int,
                 precision: str) -> None:
        if foregrounds.masks is None:
            raise ValueError("the foregrounds need their masks (load_variant(..., with_masks=True))")
        if len(backgrounds) == 0:
            raise ValueError("no backgrounds to try")
        self.inference = Inference.at(device, precision, batch_size)
        self.device = self.inference.device
        self.model = self.inference.prepare(model)
        self.fg = foregrounds.images.to(self.device)
        self.masks = foregrounds.masks.to(self.device)
        self.bg = backgrounds.images.to(self.device)
        self.batch_size = self.inference.batch_size
        self.num_classes = len(foregrounds.classes)
        _check_outputs(self.model, self.inference.floats(self.fg[:1]), self.num_classes)

    @torch.inference_mode()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        x = self.inference.floats(images)
        with self.inference.autocast():
            return self.model(x).float()

    def predict_pairs(self, fi: torch.Tensor, bi: torch.Tensor) -> torch.Tensor:
        preds = []
        for k in range(0, len(fi), self.batch_size):
            f, b = fi[k:k + self.batch_size], bi[k:k + self.batch_size]
            preds.append(self.logits(composite.paste_torch(self.fg[f], self.masks[f], self.bg[b])).argmax(1))
        return torch.cat(preds) if preds else fi.new_empty(0)

    def wrong_on_every_background(self, fgs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """bool (len(fgs), M): whether each background makes the model misclassify each foreground."""
        m = len(self.bg)
        fi = fgs.repeat_interleave(m)
        bi = torch.arange(m, device=self.device).repeat(len(fgs))
        return (self.predict_pairs(fi, bi) != labels[fi]).view(len(fgs), m)

    def background_probabilities(self) -> torch.Tensor:
        """Softmax of the model on each background alone (M, K)."""
        return torch.cat([self.logits(self.bg[k:k + self.batch_size]).softmax(1)
                          for k in range(0, len(self.bg), self.batch_size)])


def challenge(model: torch.nn.Module, foregrounds: ImageSet, backgrounds: ImageSet, *, all_pairs: bool = False,
              device=None, batch_size: int | None = None, precision: str = "fp32", progress: bool = True,
              first_step: int = 2, max_step: int = 256, pilot: int = 2,
              time_limit: float | None = None) -> ChallengeResult:
    """The backgrounds challenge: which foregrounds does some background make the model misclassify?

    Early stopping (default): `pilot` foregrounds per class first meet every background; the share
    of them each background fools sets the order in which the other foregrounds of that class try
    the backgrounds, in rounds of `step` backgrounds (doubling each round up to `max_step`); a
    foreground leaves as soon as it is fooled. With `all_pairs`, every pair is evaluated.
    `batch_size` defaults to 1024 on CUDA and 256 on the CPU; `precision` is fp32 unless a lower one
    (bf16, fp16, or "auto": bf16 on CUDA) is asked for: one flipped prediction among thousands of
    backgrounds marks a foreground fooled, so the paper's number needs fp32.
    """
    t0 = time.perf_counter()
    scorer = _Scorer(model, foregrounds, backgrounds, device, batch_size, precision)
    n, m, k = len(foregrounds), len(backgrounds), scorer.num_classes
    labels = foregrounds.labels.to(scorer.device)
    composites, undecided = 0, 0
    pairs = None
    if all_pairs:
        pairs_t = torch.zeros(n, m, dtype=torch.bool)
        per_chunk = max(1, (8 * scorer.batch_size) // m)
        bar = tqdm(total=n, desc="challenge (all pairs)", unit="fg", disable=not progress)
        for start in range(0, n, per_chunk):
            fgs = torch.arange(start, min(start + per_chunk, n), device=scorer.device)
            pairs_t[start:start + len(fgs)] = scorer.wrong_on_every_background(fgs, labels).cpu()
            composites += len(fgs) * m
            bar.update(len(fgs))
        bar.close()
        pairs = pairs_t.numpy()
        fooled = pairs.any(axis=1)
    else:
        fooled_t = torch.zeros(n, dtype=torch.bool, device=scorer.device)
        bar = tqdm(total=n, desc="challenge", unit="fg", disable=not progress)
        # pilot: a few foregrounds per class meet every background; how often each background fools
        # them orders the backgrounds for the rest (their own answers are exact, as in all_pairs)
        pilots = torch.cat([torch.nonzero(labels == c).flatten()[:pilot] for c in range(k)])
        rates = torch.zeros(k, m, device=scorer.device)
        if len(pilots):
            wrong = scorer.wrong_on_every_background(pilots, labels)
            composites += len(pilots) * m
            fooled_t[pilots] = wrong.any(1)
            rates.index_add_(0, labels[pilots], wrong.float())
            rates /= torch.bincount(labels[pilots], minlength=k).clamp(min=1)[:, None]
            bar.update(len(pilots))
        # class c's order: the pilots' fooling rate for class c, then for any class, then the
        # background alone's (low) probability of class c
        probs = scorer.background_probabilities()[:, :k].T
        composites += m
        score = rates + 0.5 * rates.mean(0, keepdim=True) + 1e-3 * (1 - probs)
        order = torch.argsort(score, dim=1, descending=True, stable=True)  # (K, M)
        alive = torch.ones(n, dtype=torch.bool, device=scorer.device)
        alive[pilots] = False
        alive = torch.nonzero(alive).flatten()
        pos, step = 0, first_step
        while len(alive) and pos < m:
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                break
            take = min(step, m - pos)
            fi = alive.repeat_interleave(take)
            bi = order[labels[alive], pos:pos + take].reshape(-1)
            wrong = (scorer.predict_pairs(fi, bi) != labels[fi]).view(len(alive), take).any(1)
            composites += len(fi)
            fooled_t[alive[wrong]] = True
            alive = alive[~wrong]
            pos += take
            step = min(2 * step, max_step)
            bar.update(int(wrong.sum()) + (len(alive) if pos >= m else 0))
            bar.set_postfix(standing=len(alive), tried=pos)
        bar.close()
        fooled = fooled_t.cpu().numpy()
        undecided = len(alive) if pos < m else 0
    return ChallengeResult(
        fg_ids=list(foregrounds.ids), fg_labels=foregrounds.labels.numpy().copy(), bg_ids=list(backgrounds.ids),
        bg_labels=backgrounds.labels.numpy().copy(), fooled=fooled, composites=composites,
        seconds=time.perf_counter() - t0, pairs=pairs, classes=tuple(foregrounds.classes),
        undecided=undecided,
    )


@torch.no_grad()
def challenge_reference(model: torch.nn.Module, root: Path, split: str = "val", batch_size: int = 32,
                        limit: int | None = None, device="cpu", progress: bool = False,
                        subset: list[int] | None = None) -> ChallengeResult:
    """The official script's method, kept plain as the reference and the benchmark's baseline.

    For each foreground in turn: read it and its mask from disk, then read the Only-BG-T backgrounds
    from disk in batches of `batch_size`, composite in fp32 (`bg * (1 - mask) + fg * mask`), and stop
    at the first batch with a wrong prediction. `limit` takes only the first foregrounds, `subset`
    only those at the given positions of the foreground listing.
    """
    t0 = time.perf_counter()
    model = model.to(device).eval()
    classes = layout.class_folders(root)
    fg_items = list_variant(root, "original", split, classes)
    fg_items = [fg_items[i] for i in subset] if subset is not None else fg_items[:limit]
    bg_items = list_variant(root, "only_bg_t", split, classes)
    fooled, composites = [], 0
    for path, label in tqdm(fg_items, desc="challenge (reference)", disable=not progress):
        image = torch.from_numpy(read_image(path)).permute(2, 0, 1).float().div(255)
        mask_file = layout.mask_path(root, split, path.parent.name, path.stem)
        mask = torch.from_numpy(read_mask(mask_file, image.shape[1:])).float()[None]
        hit = False
        for k in range(0, len(bg_items), batch_size):
            batch = torch.stack([torch.from_numpy(read_image(p)).permute(2, 0, 1).float().div(255)
                                 for p, _ in bg_items[k:k + batch_size]])
            combined = batch * (1 - mask) + image * mask
            preds = model(combined.to(device)).argmax(1).cpu()
            composites += len(batch)
            if bool((preds != label).any()):
                hit = True
                break
        fooled.append(hit)
    name = lambda p: f"{p.parent.name}/{p.stem}"  # noqa: E731 - the ImageSet's ids
    return ChallengeResult(
        fg_ids=[name(p) for p, _ in fg_items], fg_labels=np.array([lab for _, lab in fg_items]),
        bg_ids=[name(p) for p, _ in bg_items], bg_labels=np.array([lab for _, lab in bg_items]),
        fooled=np.array(fooled, dtype=bool), composites=composites, seconds=time.perf_counter() - t0,
        classes=classes,
    )
