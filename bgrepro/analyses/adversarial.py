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

A challenge you can afford: all foregrounds against all backgrounds is N x M composites at worst
(10^10 for a 100,000-image collection). `load_challenge_data(..., foregrounds=n)` takes a stratified,
seeded sample of n foregrounds (each class its share); the challenge accuracy then comes with an exact
(Clopper-Pearson) 95% interval, conservative for a stratified sample drawn without replacement.
`backgrounds=m` tries only m backgrounds of each class: fewer backgrounds can only fool fewer
foregrounds, so the result is an upper bound on the challenge accuracy, and says so. Backgrounds beyond
`BACKGROUNDS_IN_MEMORY` bytes are not decoded at once but streamed from disk in chunks (the next chunk
decoded while one is searched): the search runs chunk by chunk, a foreground leaving once fooled, so
the fooled set is the same exact one and memory holds the foregrounds and two chunks (with
`all_pairs`, also the foregrounds x backgrounds matrix of answers).

Under torchrun the foregrounds are split over the ranks (`distributed.shard`); each searches its own
against every background, and the fooled sets are joined in order: the same result as one process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import distributed, layout
from ..data import composite
from ..data.datasets import ImageListing, ImageSet, list_variant, load_variant
from ..inference import Inference, default_device
from ..io import read_image, read_mask
from ..variants import ONLY_BG_T, ORIGINAL


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
    #: How many foregrounds (backgrounds) the sampled ones were drawn from; None: all of them were used.
    foregrounds_total: int | None = None
    backgrounds_total: int | None = None

    @property
    def interval(self) -> list[float] | None:
        """95% interval of the challenge accuracy when the foregrounds are a sample (None otherwise)."""
        if self.foregrounds_total is None:
            return None
        return clopper_pearson(int((~self.fooled).sum()), len(self.fooled))

    @property
    def upper_bound(self) -> bool:
        """Whether only some of the backgrounds were tried: the accuracy is then an upper bound."""
        return self.backgrounds_total is not None

    def reading(self) -> str:
        """What the number means, in words (a sample, a bound, or the exact challenge)."""
        parts = []
        if self.foregrounds_total is not None:
            lo, hi = self.interval
            against = "the backgrounds tried" if self.backgrounds_total is not None else "every background"
            parts.append(f"{len(self.fg_ids)} of {self.foregrounds_total} foregrounds, a stratified sample: the "
                         f"challenge accuracy of all of them against {against} lies in [{100 * lo:.1f}%, "
                         f"{100 * hi:.1f}%] (95%, Clopper-Pearson)")
        if self.backgrounds_total is not None:
            parts.append(f"{len(self.bg_ids)} of {self.backgrounds_total} backgrounds tried: an upper bound on the "
                         "challenge accuracy (more backgrounds can only fool more foregrounds)")
        if self.undecided:
            parts.append(f"stopped by the time limit with {self.undecided} foregrounds undecided: an upper bound")
        return "; ".join(parts) or "every foreground against every background: the exact challenge accuracy"

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
            "foregrounds_total": self.foregrounds_total or len(self.fg_ids),
            "backgrounds_total": self.backgrounds_total or len(self.bg_ids),
            "ci95": self.interval,
            "upper_bound": self.upper_bound or self.undecided > 0,
            "reading": self.reading(),
        }
        if self.pairs is not None:
            out["background_ids"] = list(self.bg_ids)
            out["background_labels"] = [int(v) for v in self.bg_labels]
            out["background_counts"] = [int(v) for v in self.background_counts()]
            out["background_rates"] = [float(v) for v in self.background_rates()]
            out["class_fooling"] = dict(zip(self.classes, self.class_fooling()))
        return out


#: The challenge's default budget in composites at worst, by device (`bgrepro report`, the book's ImageNet
#: challenge): about 3 minutes of a small CNN at 64 px on 2 CPU cores (`bench/scale.py`), and 25 times that
#: on a GPU, where IN-9's 4,050 x 4,050 fits whole.
CHALLENGE_BUDGET = {"cpu": 1_000_000, "cuda": 25_000_000}


def challenge_budget_default() -> int:
    """The challenge budget of this machine's device (`CHALLENGE_BUDGET`)."""
    return CHALLENGE_BUDGET.get(default_device().type, CHALLENGE_BUDGET["cpu"])


#: Backgrounds up to this many decoded bytes are decoded at once; more are streamed from disk in chunks.
BACKGROUNDS_IN_MEMORY = 256 * 2**20
#: Backgrounds per chunk when they are streamed.
BACKGROUND_CHUNK = 2048


def clopper_pearson(successes: int, n: int, level: float = 0.95) -> list[float]:
    """The exact binomial interval of a proportion (conservative: it covers at least `level`)."""
    from scipy.stats import beta

    tail = (1 - level) / 2
    lo = 0.0 if successes == 0 else float(beta.ppf(tail, successes, n - successes + 1))
    hi = 1.0 if successes == n else float(beta.ppf(1 - tail, successes + 1, n - successes))
    return [lo, hi]


def sample_foregrounds(labels, n: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of a stratified sample of `n` of the items with these labels: each class gets its
    share of n (largest remainders), drawn without replacement, seeded; every item when n covers them all."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / len(labels)
    take = np.floor(quota).astype(int)
    rng = np.random.default_rng([seed, 1])
    # the largest remainders get the foregrounds left over; equal remainders are ordered by the seed
    take[np.lexsort((rng.random(len(classes)), -(quota - take)))[:n - int(take.sum())]] += 1
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), size=t, replace=False)
                                   for c, t in zip(classes, take)]))


def sample_per_class(labels, m: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of `m` items of each class (all of a class with fewer), seeded."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 2])
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        picked.append(members if len(members) <= m else rng.choice(members, size=m, replace=False))
    return np.sort(np.concatenate(picked))


def budget_sample(n_foregrounds: int, n_backgrounds: int, n_classes: int, budget: int,
                  least_foregrounds: int = 200) -> tuple[int | None, int | None]:
    """(foregrounds, backgrounds per class) whose challenge costs at most `budget` composites even when no
    foreground is ever fooled (None: all of them). Foregrounds are sampled first, down to
    `least_foregrounds`; only then are the backgrounds sampled too, down to one per class; a budget too
    small even for that takes fewer foregrounds (at least one)."""
    if n_foregrounds * n_backgrounds <= budget:
        return None, None
    n_classes = max(n_classes, 1)
    fgs = max(min(n_foregrounds, least_foregrounds), budget // max(n_backgrounds, 1))
    if fgs * n_classes > budget:  # not even one background per class for `least_foregrounds`
        fgs = max(1, budget // n_classes)
    sampled = None if fgs >= n_foregrounds else fgs
    if fgs * n_backgrounds <= budget:
        return sampled, None
    return sampled, max(1, budget // (fgs * n_classes))


def load_challenge_data(root: Path, split: str = "val", foregrounds: int | None = None,
                        backgrounds: int | None = None, seed: int = 0, stream: bool | None = None
                        ) -> tuple[ImageSet, ImageSet | ImageListing]:
    """Foregrounds (Original images with fg_mask masks) and Only-BG-T backgrounds of a dataset split.

    `foregrounds`: a stratified sample of that many (only they are decoded); `backgrounds`: that many of
    each class. The backgrounds come decoded, or as a listing streamed in chunks when they take more than
    `BACKGROUNDS_IN_MEMORY` bytes (`stream` forces either)."""
    for need in (ORIGINAL, layout.MASKS, ONLY_BG_T):
        if not layout.split_dir(root, need, split).is_dir():
            raise FileNotFoundError(f"{layout.split_dir(root, need, split)}: missing; the challenge needs original/, "
                                    "fg_mask/ and only_bg_t/ (build them with `bgrepro build`)")
    fg_list = ImageListing.of(root, ORIGINAL, split)
    try:
        bg_list = ImageListing.of(root, ONLY_BG_T, split)
    except ValueError as err:
        raise ValueError(f"no backgrounds: {err}") from None
    if foregrounds is not None and foregrounds < len(fg_list):
        fg_list = fg_list.subset(sample_foregrounds(fg_list.labels.numpy(), foregrounds, seed))
    if backgrounds is not None:
        keep = sample_per_class(bg_list.labels.numpy(), backgrounds, seed)
        if len(keep) < len(bg_list):
            bg_list = bg_list.subset(keep)
    fg_shape, bg_shape = fg_list.shape(), bg_list.shape()
    if fg_shape != bg_shape:
        raise ValueError(f"{root}: foregrounds are {fg_shape} but Only-BG-T backgrounds are {bg_shape}; they must "
                         "be one size")
    fgs = (fg_list.load(with_masks=True) if fg_list.sampled_from else
           load_variant(root, ORIGINAL, split, with_masks=True))
    if stream is None:
        stream = len(bg_list) * 3 * bg_shape[0] * bg_shape[1] > BACKGROUNDS_IN_MEMORY
    if stream:
        return fgs, bg_list
    return fgs, (bg_list.load() if bg_list.sampled_from else load_variant(root, ONLY_BG_T, split))


def _check_outputs(model: torch.nn.Module, probe: torch.Tensor, num_classes: int) -> None:
    with torch.no_grad():
        n_out = model(probe).shape[1]
    if n_out == 1000 and num_classes != 1000:
        raise ValueError("the model has 1000 outputs (an ImageNet model) but no class mapping to the data's "
                         f"{num_classes} classes: adapt it to the data (bgrepro.registry: LoadedModel.for_data)")
    # a mapped ImageNet model has one more logit, "no class", which always counts as wrong
    if n_out not in (num_classes, num_classes + 1):
        raise ValueError(f"the model has {n_out} outputs but the data has {num_classes} classes")


class _Scorer:
    """Predictions for (foreground, background) index pairs, composited on the device in batches; the
    backgrounds are those of the current chunk (`use`)."""

    def __init__(self, model, foregrounds: ImageSet, inference: Inference) -> None:
        if foregrounds.masks is None:
            raise ValueError("the foregrounds need their masks (load_variant(..., with_masks=True))")
        self.inference = inference
        self.device = self.inference.device
        self.model = self.inference.prepare(model)
        self.fg = foregrounds.images.to(self.device)
        self.masks = foregrounds.masks.to(self.device)
        self.bg = None
        self.batch_size = self.inference.batch_size
        self.num_classes = len(foregrounds.classes)

    def check(self, probe: torch.Tensor) -> None:
        _check_outputs(self.model, self.inference.floats(probe[:1]), self.num_classes)

    def use(self, backgrounds: torch.Tensor) -> None:
        self.bg = backgrounds.to(self.device)

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
        """bool (len(fgs), M): whether each background of the chunk makes the model misclassify each foreground."""
        m = len(self.bg)
        fi = fgs.repeat_interleave(m)
        bi = torch.arange(m, device=self.device).repeat(len(fgs))
        return (self.predict_pairs(fi, bi) != labels[fi]).view(len(fgs), m)

    def background_probabilities(self) -> torch.Tensor:
        """Softmax of the model on each background of the chunk alone (M, K)."""
        return torch.cat([self.logits(self.bg[k:k + self.batch_size]).softmax(1)
                          for k in range(0, len(self.bg), self.batch_size)])


def _background_chunks(backgrounds: ImageSet | ImageListing, chunk: int | None):
    """(start, uint8 images) of the backgrounds: one chunk for a decoded set unless `chunk` is given."""
    if isinstance(backgrounds, ImageListing):
        yield from backgrounds.chunks(chunk or BACKGROUND_CHUNK)
        return
    size = chunk or max(len(backgrounds), 1)
    for start in range(0, len(backgrounds), size):
        yield start, backgrounds.images[start:start + size]


@dataclass(frozen=True)
class SearchSettings:
    """How the early-stopping search of `challenge` runs."""

    #: Unfooled foregrounds per class that meet every background of a chunk first; the share of them each
    #: background fools sets the order in which the class's other foregrounds try the chunk's backgrounds.
    pilot: int = 2
    #: Backgrounds per round, doubling from `first_step` up to `max_step`.
    first_step: int = 2
    max_step: int = 256
    #: Stop after this many seconds: the foregrounds left are counted as undecided (`ChallengeResult.undecided`).
    time_limit: float | None = None
    #: Backgrounds decoded at a time when they are streamed from disk (default `BACKGROUND_CHUNK`).
    chunk: int | None = None


def challenge(model: torch.nn.Module, foregrounds: ImageSet, backgrounds: ImageSet | ImageListing, *,
              all_pairs: bool = False, inference: Inference | None = None,
              settings: SearchSettings = SearchSettings(), progress: bool = True) -> ChallengeResult:
    """The backgrounds challenge: which foregrounds does some background make the model misclassify?

    Early stopping (default): in each chunk of backgrounds (all of them, for decoded backgrounds),
    `settings.pilot` unfooled foregrounds per class first meet every background of the chunk; the share of them
    each background fools sets the order in which the other foregrounds of that class try the chunk's
    backgrounds, in rounds of backgrounds doubling in number; a foreground leaves as soon as it is fooled. With
    `all_pairs`, every pair is evaluated. `backgrounds` is a decoded set or a listing streamed from disk.
    `inference` decides device, batch size and precision (fp32 unless a lower one is asked for: one flipped
    prediction among thousands of backgrounds marks a foreground fooled, so the paper's number needs fp32).
    Under torchrun each rank searches its block of the foregrounds and every rank returns the whole result.
    """
    if len(backgrounds) == 0:
        raise ValueError("no backgrounds to try")
    search = _Search(model, foregrounds, len(backgrounds), inference or Inference.at(None), settings, all_pairs,
                     progress)
    chunks = _background_chunks(backgrounds, settings.chunk)
    for start, images in chunks:
        search.scorer.use(images)
        if all_pairs:
            search.every_pair(start, len(images))
        elif not search.chunk(start, len(images)):
            break
    chunks.close()
    return search.result(foregrounds, backgrounds)


class _Search:
    """The state of one challenge: which of this rank's foregrounds are fooled, which still stand, and what it
    cost."""

    def __init__(self, model, foregrounds: ImageSet, n_backgrounds: int, inference: Inference,
                 settings: SearchSettings, all_pairs: bool, progress: bool) -> None:
        self.t0, self.settings, self.m = time.perf_counter(), settings, n_backgrounds
        n = len(foregrounds)
        mine = foregrounds if not distributed.active() else foregrounds.subset(list(range(n))[distributed.shard(n)])
        self.scorer = _Scorer(model, mine, inference)
        self.scorer.check(foregrounds.images)
        self.labels = mine.labels.to(self.scorer.device)
        self.n = len(mine)
        self.fooled = torch.zeros(self.n, dtype=torch.bool, device=self.scorer.device)
        self.pairs = torch.zeros(self.n, n_backgrounds, dtype=torch.bool) if all_pairs else None
        self.alive = torch.arange(self.n, device=self.scorer.device)
        self.composites, self.stopped, self.finished = 0, False, 0
        self.bar = tqdm(total=self.n, desc="challenge (all pairs)" if all_pairs else "challenge", unit="fg",
                        disable=not (progress and distributed.is_main()))

    def late(self) -> bool:
        limit = self.settings.time_limit
        return limit is not None and time.perf_counter() - self.t0 > limit

    def every_pair(self, start: int, size: int) -> None:
        """Every foreground against every background of the chunk."""
        scorer = self.scorer
        per_block = max(1, (8 * scorer.batch_size) // size)
        for first in range(0, self.n, per_block):
            fgs = torch.arange(first, min(first + per_block, self.n), device=scorer.device)
            self.pairs[first:first + len(fgs), start:start + size] = scorer.wrong_on_every_background(
                fgs, self.labels).cpu()
            self.composites += len(fgs) * size
        if start + size >= self.m:
            self.bar.update(self.n)

    def _order(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The pilots, after they met every background of the chunk, and each class's order of the backgrounds:
        the pilots' fooling rate for the class, then for any class, then the background alone's (low)
        probability of the class."""
        scorer, labels, k = self.scorer, self.labels, self.scorer.num_classes
        alive = self.alive
        pilots = torch.cat([alive[labels[alive] == c][:self.settings.pilot] for c in range(k)]) if len(
            alive) else alive
        rates = torch.zeros(k, size, device=scorer.device)
        if len(pilots):
            wrong = scorer.wrong_on_every_background(pilots, labels)
            self.composites += len(pilots) * size
            self.fooled[pilots[wrong.any(1)]] = True
            rates.index_add_(0, labels[pilots], wrong.float())
            rates /= torch.bincount(labels[pilots], minlength=k).clamp(min=1)[:, None]
            self.bar.update(int(wrong.any(1).sum()))
        probs = scorer.background_probabilities()[:, :k].T
        self.composites += size
        score = rates + 0.5 * rates.mean(0, keepdim=True) + 1e-3 * (1 - probs)
        return pilots, torch.argsort(score, dim=1, descending=True, stable=True)  # (K, size)

    def chunk(self, start: int, size: int) -> bool:
        """The early-stopping search over one chunk of backgrounds; False once the time limit stopped it."""
        if self.late():
            self.stopped = True
            return False
        pilots, order = self._order(size)
        labels, alive = self.labels, self.alive
        searching = alive[~torch.isin(alive, pilots) & ~self.fooled[alive]]
        pos, step = 0, self.settings.first_step
        while len(searching) and pos < size:
            if self.late():
                self.stopped = True
                break
            take = min(step, size - pos)
            fi = searching.repeat_interleave(take)
            bi = order[labels[searching], pos:pos + take].reshape(-1)
            wrong = (self.scorer.predict_pairs(fi, bi) != labels[fi]).view(len(searching), take).any(1)
            self.composites += len(fi)
            self.fooled[searching[wrong]] = True
            searching = searching[~wrong]
            pos += take
            step = min(2 * step, self.settings.max_step)
            self.bar.update(int(wrong.sum()))
            self.bar.set_postfix(standing=len(searching), tried=start + pos)
        self.alive = alive[~self.fooled[alive]]
        if self.stopped and start + size >= self.m and len(pilots):  # the last chunk's pilots met every background
            self.finished = int((~self.fooled[pilots]).sum())
        return not self.stopped

    def result(self, foregrounds: ImageSet, backgrounds: ImageSet | ImageListing) -> ChallengeResult:
        """Every rank's foregrounds joined in order, as one result."""
        if self.pairs is None and not self.stopped:
            self.bar.update(len(self.alive))
        self.bar.close()
        if self.pairs is not None:
            pairs = distributed.gather(self.pairs.numpy())
            fooled = pairs.any(axis=1)
        else:
            pairs, fooled = None, distributed.gather(self.fooled.cpu().numpy())
        return ChallengeResult(
            fg_ids=list(foregrounds.ids), fg_labels=foregrounds.labels.numpy().copy(), bg_ids=list(backgrounds.ids),
            bg_labels=backgrounds.labels.numpy().copy(), fooled=fooled, composites=distributed.gather(self.composites),
            seconds=time.perf_counter() - self.t0, pairs=pairs, classes=tuple(foregrounds.classes),
            undecided=distributed.gather(len(self.alive) - self.finished if self.stopped else 0),
            foregrounds_total=foregrounds.sampled_from, backgrounds_total=backgrounds.sampled_from,
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
    fg_items = list_variant(root, ORIGINAL, split, classes)
    fg_items = [fg_items[i] for i in subset] if subset is not None else fg_items[:limit]
    bg_items = list_variant(root, ONLY_BG_T, split, classes)
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
