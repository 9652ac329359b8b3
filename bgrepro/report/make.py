"""The practitioner's one command: a folder of photos and a model (or the models it trains) -> a report.

`make_report(ReportConfig(images=..., out=...))` answers "how much does my model lean on backgrounds in
my data?" in the paper's terms, for any class names and any number of classes:

1. masks: the user's (`masks`), GrabCut's from boxes (`boxes`, the paper's procedure), or, with neither,
   representer point selection with a self-supervised backbone (`localizer`, DINO ResNet-50 by default),
   each box refined by GrabCut;
2. the eight variants, built into OUT/data (`bgrepro build`, resumable, the paper's filters);
3. the models: the given checkpoints, an ImageNet model on IN-9's classes, or, when none is given, one
   trained on Original and one on Mixed-Rand per seed (fine-tuned from ImageNet with `pretrained`);
4. per model: accuracy on every variant and the BG-Gap with 95% bootstrap intervals over the test
   images (and the spread over seeds), the backgrounds challenge, the fine-grained breakdown and
   Grad-CAM's share on the foreground;
5. OUT/report.json (strict JSON, percentages) and OUT/report.html (self-contained: figures inline).

Every step resumes: run the same command again after an interruption. A rerun after the photos, masks,
boxes or checkpoints changed recomputes the report from them; a rerun with other arguments is refused (or,
with `overwrite`, starts afresh); OUT may not overlap any input, a folder that is not a report of
bgrepro's is never replaced, and a run that fails on bad input leaves no folder behind.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import distributed, layout, plots, registry
from ..analyses import finegrained
from ..analyses.adversarial import budget_sample, challenge, challenge_budget_default, load_challenge_data
from ..analyses.evaluate import Correctness, correctness, correctness_from_predictions, image_listing, read_predictions
from ..analyses.finegrained import stacked_bars
from ..analyses.groups import SMALL_GROUP, as_json, frames, worst_group_line
from ..analyses.localize import LocalizeConfig, localize_dataset
from ..analyses.saliency import saliency_report
from ..data.build import build
from ..data.composite import REFINEMENTS
from ..data.datasets import ImageListing
from ..data.previews import variants_figure
from ..data.sources import FolderSource
from ..in9 import CLASS_FOLDERS
from ..inference import Inference
from ..io import atomic_write_text, strict_json
from ..outputs import (
    RECOMPUTE,
    RESUME,
    check_location,
    check_no_overlap,
    decide,
    files_under,
    identity_of,
    locked,
    notice,
    owned_files,
    record_owned,
    remove_path,
    set_aside,
    write_marker,
)
from ..profiles import get_profile
from ..registry import (
    create_model,
    detect_format,
    load,
    reaches_layers,
    read_classes,
    start_from_imagenet,
    weights_file,
)
from ..training.classifier import TrainConfig, train
from ..variants import MIXED_RAND, MIXED_SAME, ONLY_BG_T, ORIGINAL, title
from .html import _fmt, _interval, render_html

#: Default share of each class held out as test images when the folder has no train/ and val/ and models are
#: trained.
DEFAULT_VAL_FRACTION = 0.25
#: The models trained when none is given: one per training variant and seed.
TRAINED_ON = (ORIGINAL, MIXED_RAND)


@dataclass(frozen=True)
class ReportConfig:
    """Everything a report is a function of (its folder records it; a rerun must match)."""

    images: Path
    out: Path
    masks: Path | None = None
    boxes: Path | None = None
    #: Without masks or boxes: the RPS backbone (a `bgrepro localize --backbone` spec) and its weights file.
    localizer: str = "dino_resnet50"
    localizer_weights: Path | None = None
    refine: str = "grabcut"
    #: Models to report on, in any format (`bgrepro.registry`), and how their outputs and inputs fit the photos.
    checkpoints: tuple[Path, ...] = ()
    classes_file: Path | None = None
    class_map: Path | None = None
    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    #: Predictions made outside bgrepro (paths relative to OUT/data; `list_images` writes what to score).
    predictions: Path | None = None
    list_images: bool = False
    arch: str | None = None
    #: ImageNet weights (a torchvision tag or a file): scored through the IN-9 mapping on IN-9's classes,
    #: else the start of the trained models (fine-tuning).
    pretrained: str | None = None
    offline: bool = False
    size: int | None = None
    val_fraction: float | None = None
    seed: int = 0
    seeds: int = 1
    profile: str | None = None
    epochs: int | None = None
    filters: dict = field(default_factory=dict)
    bootstrap: int = 1000
    #: Composites the challenge may cost at worst (a foreground never fooled meets every background): beyond
    #: it the foregrounds, then the backgrounds, are sampled (`adversarial.budget_sample`). None: the
    #: default of the device (`challenge_budget_default`); 0: the whole challenge.
    challenge_budget: int | None = None
    #: How the report names a parameter a reader may pass (`input_size`): `bgrepro report` gives its options
    #: (--input-size); not an argument of the report (its folder's record leaves it out).
    options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.masks is not None and self.boxes is not None:
            raise ValueError("pass `masks` or `boxes`, not both")
        if self.checkpoints and self.pretrained:
            raise ValueError("`pretrained` goes with `arch`, not with `checkpoint`")
        if self.predictions is not None and (self.checkpoints or self.pretrained):
            raise ValueError("`predictions` replaces the models: pass it without `checkpoint` and `pretrained`")
        if self.pretrained and not self.arch:
            raise ValueError("`pretrained` needs `arch` (a torchvision architecture)")
        if self.seeds < 1:
            raise ValueError(f"`seeds` must be at least 1, got {self.seeds}")
        if (self.masks is not None or self.boxes is not None) and self.localizer_weights is not None:
            raise ValueError("`localizer_weights` goes with photos that have neither `masks` nor `boxes` (the "
                             "localizer finds their objects); it would be ignored here")
        if self.refine not in REFINEMENTS:
            raise ValueError(f"`refine` must be one of {', '.join(REFINEMENTS)}, got {self.refine!r}")

    @property
    def side(self) -> int:
        """The output image side: --size, else 224 with the full profile and 64 on the CPU profiles."""
        return self.size or (224 if get_profile(self.profile).gpu else 64)

    @property
    def given(self) -> bool:
        """Whether the models are given (files, ImageNet weights on IN-9, or predictions) rather than trained."""
        return bool(self.checkpoints or self.predictions is not None or self.list_images)

    def args(self) -> dict:
        """The arguments as plain JSON (what OUT/report_args.json holds; the predictions file is an input,
        recorded by its content, and listing the images is a step of the same report)."""
        values = asdict(self)
        for key in ("out", "predictions", "list_images", "options"):
            values.pop(key)
        values["side"] = self.side
        values["profile"] = self.profile or "default"
        return json.loads(json.dumps(values, default=str))


# ---------------------------------------------------------------------------------------------- the folder
def _report_entries(out: Path) -> list[str]:
    """What a report run writes into OUT, by name: its parts, their staging folders, and the marker."""
    names = [layout.MARKER, layout.OWNED]
    for part in layout.REPORT_PARTS:
        path = layout.report_path(out, part)
        names += [path.name, layout.staging_dir(path).name, f".{path.name}.replaced"]
    return names


def _clear_report(out: Path) -> None:
    """Remove what a report run writes into OUT, nothing else."""
    for name in _report_entries(out):
        remove_path(Path(out) / name)


@contextmanager
def _report_folder(out: Path, args: dict, inputs: dict, overwrite: bool):
    """OUT, locked for this run and checked against the arguments and inputs it was made with
    (`outputs.decide`): resumed when they match, recomputed when the inputs changed, refused when it is
    not a report of bgrepro's. A recomputed report sets the last one aside until the new one is complete
    (a failed rerun puts it back); what a failing run wrote is removed (an interruption keeps it, to resume);
    files a user put into OUT are never touched."""
    with locked(out):
        action, why = decide(out, "report", args, inputs, overwrite, "report")
        existed = out.exists()
        if action != RESUME and why:
            notice(f"{why}: {'recomputing the report' if action == RECOMPUTE else 'replacing it'}")
        # what the last report wrote is set aside; files a user put among it go back when the new one is done
        owned = owned_files(out) if existed else None
        yours = (files_under(out) - (owned or set()) - {layout.MARKER, layout.OWNED}) if existed else set()
        with set_aside(out, _report_entries(out), owned or set()) if action != RESUME and existed else nullcontext():
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise PermissionError(f"{out}: output folder is not writable ({err.strerror or err})") from None
            write_marker(out, "report", args, inputs)
            atomic_write_text(layout.report_path(out, "args"), json.dumps(args, indent=2, sort_keys=True) + "\n")
            try:
                yield out
            except Exception:
                if action != RESUME:  # as it was before this run: absent, empty, or the last report (set aside)
                    _clear_report(out)
                    if not existed:
                        shutil.rmtree(out, ignore_errors=True)
                raise
        # what this run wrote is bgrepro's; the user's files (and any kept aside) stay the user's
        record_owned(out, yours | {f for f in files_under(out) if f.startswith(".bgrepro-previous/")})


def _inputs(cfg: ReportConfig) -> dict:
    """The user's files a report reads, by option (no output may overlap them; their identity is recorded)."""
    return {"--images": Path(cfg.images), "--masks": cfg.masks, "--boxes": cfg.boxes,
            "--checkpoint": [Path(c) for c in cfg.checkpoints], "--localizer-weights": cfg.localizer_weights,
            "--pretrained": weights_file(cfg.pretrained) if cfg.pretrained else None,
            "--classes": cfg.classes_file, "--class-map": cfg.class_map}


# ------------------------------------------------------------------------------------------------ the data
def _open_source(cfg: ReportConfig):
    """The folder source of the photos (validated before anything is written), how it was split, and
    whether models are to be trained (none given)."""
    masks = cfg.masks or (None if cfg.boxes else layout.report_path(cfg.out, "masks"))
    common = dict(masks=masks, boxes=cfg.boxes, size=cfg.side,
                  missing_masks="reject" if masks is not None and cfg.masks is None else "error")
    source = FolderSource(cfg.images, val_fraction=cfg.val_fraction, split_seed=cfg.seed, **common)
    train_models = not cfg.given and not (cfg.pretrained and source.classes == CLASS_FOLDERS)
    split_rule = "the folder's own train/ and val/"
    if cfg.val_fraction is not None:
        split_rule = f"{100 * cfg.val_fraction:g}% of each class as test images (seed {cfg.seed})"
    elif source.splits() == ["val"]:
        if train_models:
            source = FolderSource(cfg.images, val_fraction=DEFAULT_VAL_FRACTION, split_seed=cfg.seed, **common)
            split_rule = (f"{100 * DEFAULT_VAL_FRACTION:g}% of each class as test images (seed {cfg.seed}; the "
                          "folder has no train/ and val/)")
        else:
            split_rule = "every image is a test image (no train/ and val/, and the models are given)"
    source.set_filters(**cfg.filters)
    if train_models and "train" not in source.splits():
        raise ValueError(f"{cfg.images}: has no training images (no train/ folder) to train models on; give "
                         "`checkpoint`, or `val_fraction` for a folder of class folders")
    for split in source.splits():  # every listing and annotation checked before anything is written
        source.records(split)
    return source, split_rule, train_models


def _rps_masks(cfg: ReportConfig, progress: bool) -> dict:
    """RPS masks for every photo (OUT/masks, refined by GrabCut), w* kept in OUT/localizer to resume."""
    saved = layout.report_path(cfg.out, "localizer") / "rps.pt"
    summary = localize_dataset(LocalizeConfig(
        cfg.images, cfg.localizer, weights=cfg.localizer_weights, rps_file=saved if saved.exists() else None,
        out=saved.parent, write_masks_to=layout.report_path(cfg.out, "masks"), refine=cfg.refine,
        offline=cfg.offline), progress=progress)
    return {"from": f"representer point selection ({cfg.localizer}"
                    + (f", {cfg.refine} refinement" if cfg.refine != "none" else "") + ")",
            "warning": summary.get("warning")}


def _check_classes(source, data: Path, rejections) -> None:
    """Every class of the photos kept at least one image (else its label would silently vanish)."""
    kept = set(layout.class_folders(data))
    lost = [c for c in source.classes if c not in kept]
    if lost:
        reasons = ", ".join(f"{n} {r}" for r, n in rejections.most_common())
        raise ValueError(f"{data}: no image of class(es) {', '.join(lost[:8])} survived the filters (left out: "
                         f"{reasons}); loosen them (`max_box_fraction`, `min_inside_fraction`, "
                         "`min_foreground_fraction`), fix the annotations, or remove the class folder")


# ---------------------------------------------------------------------------------------------- the models
@dataclass
class _Run:
    """One model: its group (the report's model entry), its seed and how to get it."""

    group: str
    seed: int | None
    model: object = None
    info: dict = field(default_factory=dict)
    #: Predictions made outside bgrepro ({path under OUT/data: data class}) instead of a model.
    predictions: dict | None = None


def _given_models(cfg: ReportConfig, classes: tuple[str, ...]) -> list[_Run]:
    """The models passed in (files in any format; an ImageNet model on IN-9's classes), loaded and checked
    against the photos' classes before anything is written."""
    runs = []
    for path in cfg.checkpoints:
        loaded = load(path, cfg.arch, cfg.offline).for_data(list(classes), cfg.side, cfg.classes_file, cfg.class_map,
                                                            cfg.input_size, cfg.mean, cfg.std)
        variant = (loaded.meta.get("config") or {}).get("variant") or loaded.meta.get("variant")
        name = (f"{Path(path).name}: {loaded.meta['arch']} trained on {title(variant)}"
                if variant else f"{Path(path).name} ({loaded.format})")
        if any(r.group == name for r in runs):  # two files of one name: told apart, never pooled as seeds
            name = f"{name} [{path}]"
        runs.append(_Run(name, None, loaded.net, {"checkpoint": str(path), **loaded.info(cfg.options),
                                                  **({"arch": loaded.meta["arch"]} if "arch" in loaded.meta else {})}))
    if cfg.pretrained and tuple(classes) == CLASS_FOLDERS:
        weights = weights_file(cfg.pretrained)
        loaded = load(cfg.arch, offline=cfg.offline, weights=weights,
                      tag=cfg.pretrained if weights is None else "IMAGENET1K_V1")
        model = loaded.for_data(list(classes), cfg.side).net
        runs.append(_Run(f"{cfg.arch}, ImageNet ({cfg.pretrained}) through the 1000 -> IN-9 mapping", None, model,
                         {"arch": cfg.arch, "weights": cfg.pretrained}))
    return runs


def _predicted_run(cfg: ReportConfig, classes: tuple[str, ...]) -> _Run:
    """Predictions made outside bgrepro, read and checked (their paths are checked against OUT/data later)."""
    outputs = read_classes(cfg.classes_file) if cfg.classes_file else None
    predicted = read_predictions(cfg.predictions, list(classes), outputs, cfg.class_map)
    return _Run(f"{Path(cfg.predictions).name} (predictions)", None, None,
                {"predictions": str(cfg.predictions), "format": "predictions"}, predictions=predicted)


def _training_runs(cfg: ReportConfig) -> list[tuple[_Run, object]]:
    """The models to train: one per training variant and seed (run, TrainConfig)."""
    data = layout.report_path(cfg.out, "data")
    runs = []
    for variant in TRAINED_ON:
        for seed in range(cfg.seed, cfg.seed + cfg.seeds):
            config = TrainConfig.from_profile(data, cfg.profile, variant=variant, arch=cfg.arch, epochs=cfg.epochs,
                                              seed=seed, pretrained=cfg.pretrained)
            start = f"{config.arch} from ImageNet ({cfg.pretrained}), fine-tuned" if cfg.pretrained else config.arch
            group = (f"fine-tuned on {title(variant)} from ImageNet" if cfg.pretrained else
                     f"trained on {title(variant)}")
            runs.append((_Run(group, seed, info={"arch": config.arch, "epochs": config.epochs, "start": start,
                                                 "variant": variant}), config))
    return runs


# -------------------------------------------------------------------------------------------- the analyses
#: What a report says where a number needs the model in the loop and only its predictions are given.
NEEDS_MODEL = "the challenge and Grad-CAM need the model in the loop (they composite and differentiate); not run"


@dataclass
class Analysis:
    """What one model's run measured: per-image correctness on every variant, the fine-grained shares, the
    challenge and Grad-CAM (from predictions: the correctness and fine-grained shares only; the rest None)."""

    scored: Correctness
    finegrained: dict[str, float] | None
    challenge_accuracy: float | None = None
    challenge_ci95: list | None = None
    challenge_per_class: dict[str, float | None] = field(default_factory=dict)
    foreground_share: float | None = None
    mask_area: float | None = None
    saliency_figure: Path | None = None
    #: What was not computed, and why.
    skipped: list[str] = field(default_factory=list)


def _analyse(run: _Run, data: Path, fig_dir: Path, challenge_data, progress: bool) -> Analysis:
    """Per-image correctness on every variant, the challenge, the fine-grained shares and Grad-CAM of one model
    (from predictions: the correctness and fine-grained shares only)."""
    if run.predictions is not None:
        scored = correctness_from_predictions(run.predictions, data, "val", run.info["predictions"])
        return Analysis(scored, finegrained.shares(scored, data), skipped=[NEEDS_MODEL])
    scored = correctness(run.model, data, None, "val", Inference.at(None), progress)
    fooled = challenge(run.model, *challenge_data, progress=progress)
    result = Analysis(scored, finegrained.shares(scored, data), fooled.challenge_accuracy, fooled.interval,
                      dict(zip(fooled.classes, fooled.per_class())), saliency_figure=fig_dir / "saliency.png")
    if reaches_layers(run.model):
        salient = saliency_report(run.model, data, "val", examples=6, out=fig_dir, progress=progress)
        result.foreground_share, result.mask_area = salient["foreground_share"], salient["mask_area"]
    else:
        result.skipped.append(f"Grad-CAM needs the model's gradients, which its format ({run.info.get('format')}) "
                              "does not give; not run")
    return result


def _pct(value):
    return None if value is None or not np.isfinite(value) else 100 * float(value)


def _pct_pair(pair):
    return None if pair is None else [_pct(pair[0]), _pct(pair[1])]


def _spread(values: list[float]) -> dict | None:
    if len(values) < 2:
        return None
    return {"values": [_pct(v) for v in values], "mean": _pct(float(np.mean(values))),
            "sd": _pct(float(np.std(values, ddof=1))), "min": _pct(min(values)), "max": _pct(max(values))}


def _mean(values):
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else None


@dataclass
class ModelResult:
    """One model's numbers in a report (in %): seeds pooled, intervals over test images; `to_json()` is its
    entry of report.json."""

    name: str
    training: dict
    accuracy: dict[str, float | None]
    accuracy_ci95: dict[str, list | None]
    n_test_images: dict[str, int]
    per_class: dict[str, dict[str, float | None]]
    bg_gap: float | None
    bg_gap_ci95: list | None
    bg_gap_seeds: dict | None
    challenge_accuracy: float | None
    challenge_seeds: dict | None
    fooled_per_class: dict[str, float | None]
    foreground_share: float | None
    foreground_share_seeds: dict | None
    mask_area: float | None
    finegrained: dict[str, float]
    runs: list[dict]
    #: What was not computed for this model, and why (e.g. the challenge from predictions alone).
    skipped: list[str] = field(default_factory=list)
    #: What the numbers say (`conclude`), set once every number is in.
    conclusion: list[dict] = field(default_factory=list)
    #: 95% interval of the challenge accuracy when the foregrounds were sampled (one seed), else None.
    challenge_ci95: list | None = None
    #: Per mixed test set, accuracy per (foreground class, background class) group (`analyses.groups`, in %),
    #: and Mixed-Rand's worst group in words.
    groups: dict[str, dict] = field(default_factory=dict)
    worst_group: str | None = None

    def to_json(self) -> dict:
        out = asdict(self)
        out["bg_gap"] = {"value": self.bg_gap, "ci95": self.bg_gap_ci95, "seeds": self.bg_gap_seeds}
        for key in ("bg_gap_ci95", "bg_gap_seeds"):
            out.pop(key)
        return strict_json(out)


def _percent_groups(matrix: dict) -> dict:
    """A group matrix's JSON (`GroupMatrix.to_json`) with its accuracies and intervals in %."""
    def scaled(entry: dict) -> dict:
        return {k: (_pct(v) if k in ("accuracy", "own_accuracy", "drop") else _pct_pair(v) if k == "ci95" else v)
                for k, v in entry.items()}

    return {**scaled(matrix), "worst": scaled(matrix["worst"]), "groups": [scaled(g) for g in matrix["groups"]],
            "hardest_background": {c: h and scaled(h) for c, h in matrix["hardest_background"].items()}}


def _model_entry(group: str, runs: list[_Run], analyses: list[Analysis], pooled: Correctness, cfg: ReportConfig,
                 data: Path) -> ModelResult:
    """A model's result: seeds pooled (per-image correctness averaged over seeds, so the intervals are a
    bootstrap over test images of the seed-averaged numbers), in %."""
    first = analyses[0]
    matrices = as_json(pooled, data)
    result = pooled.summarize(cfg.bootstrap, cfg.seed)
    per_seed = [a.scored.summarize() for a in analyses]
    gaps = [r["bg_gap"] for r in per_seed if r["bg_gap"] is not None]
    shares = [a.foreground_share for a in analyses]
    challenged = [a.challenge_accuracy for a in analyses if a.challenge_accuracy is not None]
    return ModelResult(
        name=group,
        training={k: v for k, v in runs[0].info.items() if k != "path"}
        | ({"seeds": [r.seed for r in runs]} if runs[0].seed is not None else {}),
        accuracy={v: _pct(a) for v, a in result["accuracy"].items()},
        accuracy_ci95={v: _pct_pair(p) for v, p in (result.get("ci95") or {}).items()},
        n_test_images=result["n"],
        per_class={v: {c: _pct(a) for c, a in pc.items()} for v, pc in result["per_class"].items()},
        bg_gap=_pct(result["bg_gap"]), bg_gap_ci95=_pct_pair(result.get("bg_gap_ci95")), bg_gap_seeds=_spread(gaps),
        challenge_accuracy=_pct(_mean(challenged)), challenge_seeds=_spread(challenged),
        challenge_ci95=_pct_pair(first.challenge_ci95) if len(analyses) == 1 else None,
        fooled_per_class={c: _pct(_mean([a.challenge_per_class[c] for a in analyses]))
                          for c in first.challenge_per_class},
        foreground_share=_pct(_mean(shares)), foreground_share_seeds=_spread([s for s in shares if s is not None]),
        mask_area=_pct(first.mask_area),
        finegrained={k: float(np.mean([a.finegrained[k] for a in analyses])) for k in first.finegrained},
        runs=[{"seed": r.seed, **({"checkpoint": str(r.info["path"])} if "path" in r.info else {}),
               "accuracy": {v: _pct(x) for v, x in s["accuracy"].items()}, "bg_gap": _pct(s["bg_gap"]),
               "challenge_accuracy": _pct(a.challenge_accuracy), "foreground_share": _pct(a.foreground_share)}
              for r, s, a in zip(runs, per_seed, analyses)],
        skipped=list(first.skipped),
        groups={v: _percent_groups(m) for v, m in matrices.items()},
        worst_group=worst_group_line(matrices[MIXED_RAND]) if MIXED_RAND in matrices else None,
    )


# ---------------------------------------------------------------------------------------------- conclusions
#: The criteria of the report's opening conclusions, fixed before any number is seen (all in points, %).
CRITERIA = {
    "weak": "Original accuracy's 95% interval reaches down to chance (100 / number of classes)",
    "leans": "the BG-Gap's 95% interval lies above 0 (paired bootstrap over test images)",
    "prefers_other": "the BG-Gap's 95% interval lies below 0",
    "imprecise": "the BG-Gap's 95% interval is wider than 10 points",
    "breaks": "some background fools most foregrounds: challenge accuracy below half of Original accuracy",
    "no_evidence": "the BG-Gap's 95% interval includes 0",
    "holds": "challenge accuracy at least half of Original accuracy",
    "worst_group": "Mixed-Rand's worst group (at least 10 test images) has a 95% interval wholly below Mixed-Rand's "
                   "accuracy",
}
#: The paper's range of BG-Gaps (points) for the models of its Table 2, to size ours against.
PAPER_GAPS = (6.0, 22.0)


def conclude(result: ModelResult, n_classes: int, seeds: int = 1, trained: bool = False) -> list[dict]:
    """What a model's numbers say, each finding from `CRITERIA` with its evidence and, where it limits the
    conclusion, what to do about it: [{"finding", "text", "advice"}]."""
    chance = 100.0 / n_classes
    acc, acc_ci = result.accuracy.get(ORIGINAL), result.accuracy_ci95.get(ORIGINAL)
    gap, ci = result.bg_gap, result.bg_gap_ci95
    findings = []

    def say(key: str, text: str, advice: str | None = None) -> None:
        findings.append({"finding": key, "criterion": CRITERIA.get(key), "text": text, "advice": advice})

    if acc is None:
        return findings
    low = acc_ci[0] if acc_ci else acc
    if low <= chance:
        say("weak", f"Too weak for any conclusion: its Original accuracy, {acc:.1f}% "
            f"{_interval(acc_ci).strip()}, is within reach of chance ({chance:.1f}% for {n_classes} classes).",
            ("fine-tune from ImageNet weights (--arch resnet18 --pretrained), train longer (--epochs), or add "
             "photos") if trained else "check its classes and preprocessing (--class-map, --input-size, --mean, "
                                       "--std), or add photos")
        return findings
    if gap is not None and ci:
        size = ("smaller than" if gap < PAPER_GAPS[0] else "within" if gap <= PAPER_GAPS[1] else "beyond") + \
            f" the paper's {PAPER_GAPS[0]:g}-{PAPER_GAPS[1]:g} points"
        if ci[0] > 0:
            say("leans", f"It leans on backgrounds: it loses {gap:.1f} points {_interval(ci).strip()} when an "
                f"object's background comes from another class (Mixed-Same to Mixed-Rand), {size}.")
        elif ci[1] < 0:
            say("prefers_other", f"It does better on other classes' backgrounds than on its own class's "
                f"(BG-Gap {gap:.1f} {_interval(ci).strip()}): unusual; check the masks.")
        else:
            say("no_evidence", f"No reliance on backgrounds shown: the BG-Gap, {gap:.1f} points, has a 95% interval "
                f"{_interval(ci).strip()} that includes 0.")
        if ci[1] - ci[0] > 10:
            n = result.n_test_images.get(MIXED_RAND)
            say("imprecise", f"The test set is too small for a precise BG-Gap: {n} test images give an interval "
                f"{ci[1] - ci[0]:.0f} points wide.",
                "add photos" + (", or train more seeds (--seeds 3)" if trained and seeds == 1 else ""))
    if result.challenge_accuracy is not None:
        fooled = 100 - result.challenge_accuracy
        if result.challenge_accuracy < acc / 2:
            say("breaks", f"The backgrounds challenge breaks it: for {fooled:.1f}% of test foregrounds some "
                "test background makes it predict another class.")
        else:
            say("holds", f"It holds up against the backgrounds challenge: {result.challenge_accuracy:.1f}% of "
                "test foregrounds survive every test background.")
    groups = result.groups.get(MIXED_RAND)
    if groups and not groups["worst"]["small"] and groups["worst"]["ci95"][1] < groups["accuracy"]:
        w = groups["worst"]
        say("worst_group", f"Its worst group is {layout.short_name(w['foreground'])} on "
            f"{layout.short_name(w['background'])} backgrounds: {w['accuracy']:.1f}% {_interval(w['ci95']).strip()} "
            f"of {w['n']} images, {groups['accuracy'] - w['accuracy']:.1f} points below its Mixed-Rand accuracy "
            f"({groups['accuracy']:.1f}%).", f"look at its {layout.short_name(w['foreground'])} photos whose "
            f"surroundings resemble {layout.short_name(w['background'])} scenes, and add varied ones")
    return findings


# ------------------------------------------------------------------------------------------------- the report
def _challenge_plan(cfg: ReportConfig, data: Path) -> dict:
    """What the report's challenge tries within its budget: how many foregrounds and backgrounds, of how many."""
    budget = challenge_budget_default() if cfg.challenge_budget is None else cfg.challenge_budget
    n_fg = len(ImageListing.of(data, ORIGINAL, "val"))
    n_bg = len(ImageListing.of(data, ONLY_BG_T, "val"))
    n_classes = len(layout.class_folders(data))
    fgs, bgs = (None, None) if budget == 0 else budget_sample(n_fg, n_bg, n_classes, budget)
    return {"budget": budget or None, "foregrounds": fgs, "backgrounds_per_class": bgs, "of_foregrounds": n_fg,
            "of_backgrounds": n_bg}


def make_report(cfg: ReportConfig, overwrite: bool = False, progress: bool = True) -> dict:
    """Build, train (unless models are given), analyse and write OUT/report.json and OUT/report.html;
    returns the report's JSON object."""
    t0 = time.perf_counter()
    cfg_out, inputs = _checked(cfg)
    source, split_rule, train_models = _open_source(cfg)
    given = _given_models(cfg, source.classes)
    if cfg.predictions is not None:
        given.append(_predicted_run(cfg, source.classes))
    if train_models:  # an unknown architecture or missing ImageNet weights: said now, not after the build
        _trainable(cfg, len(source.classes))
    args, progress, main = cfg.args(), progress and distributed.is_main(), distributed.is_main()
    # under torchrun: rank 0 holds the folder and writes; every rank builds, trains and analyses its share
    with distributed.main_first(lambda: _report_folder(cfg_out, args, identity_of(inputs), overwrite)):
        masks_info = {"from": "the given masks" if cfg.masks else
                      "GrabCut from the given boxes (the paper's procedure)" if cfg.boxes else None, "warning": None}
        if cfg.masks is None and cfg.boxes is None:
            masks_info = _rps_masks(cfg, progress)
        data = layout.report_path(cfg_out, "data")
        built = build(source, data, seed=cfg.seed, progress=progress)
        _check_classes(source, data, built.rejections)
        if cfg.list_images:  # what a model run elsewhere must score, then `predictions`
            return _listing(cfg_out, data, main)
        runs = _trained(cfg, cfg_out, progress) if train_models else given
        plan, groups, results = _analysed(cfg, runs, data, cfg_out, len(source.classes), train_models, progress)
        kept = {s: built.counts.get((ORIGINAL, s), 0) for s in layout.SPLITS if (ORIGINAL, s) in built.counts}
        report = {
            "classes": list(source.classes),
            "data": {"images": sum(kept.values()) + sum(built.rejections.values()), "kept": sum(kept.values()),
                     "kept_per_split": kept, "rejected": dict(built.rejections.most_common()),
                     "split": split_rule, "size": cfg.side, "masks": masks_info["from"],
                     "masks_warning": masks_info["warning"], "filters": dict(source.filters),
                     "rejections_file": str((data / "rejections.csv").relative_to(cfg_out))},
            "units": "accuracies, intervals and shares in %; intervals are 95% percentile bootstraps over test images",
            "criteria": CRITERIA, "challenge": plan, "models": [r.to_json() for r in results], "arguments": args,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        if main:
            figures = _figures(report, groups, data, cfg)
            atomic_write_text(layout.report_path(cfg_out, "json"),
                              json.dumps(strict_json(report), indent=2, allow_nan=False) + "\n")
            atomic_write_text(layout.report_path(cfg_out, "html"), render_html(report, figures))
    return strict_json(report)


def _checked(cfg: ReportConfig) -> tuple[Path, dict]:
    """OUT (checked as a place for an output) and the inputs, every one checked before anything is written."""
    cfg_out = check_location(Path(cfg.out))
    if not Path(cfg.images).is_dir():
        raise FileNotFoundError(f"{cfg.images}: image folder not found")
    if cfg.masks is not None and not Path(cfg.masks).is_dir():
        raise FileNotFoundError(f"{cfg.masks}: mask folder not found")
    if cfg.localizer_weights is not None and not Path(cfg.localizer_weights).is_file():
        raise FileNotFoundError(f"{cfg.localizer_weights}: `localizer_weights` file not found")
    for path in cfg.checkpoints:
        detect_format(path)  # a file or Hugging Face folder that exists, or a hub id; else one line naming it
    inputs = _inputs(cfg)
    check_no_overlap(cfg_out, {**inputs, "--predictions": cfg.predictions})
    if cfg.predictions is not None and not Path(cfg.predictions).is_file():
        raise FileNotFoundError(f"{cfg.predictions}: predictions file not found")
    return cfg_out, inputs


def _trainable(cfg: ReportConfig, n_classes: int) -> None:
    """What training needs (the architecture, the ImageNet weights of `pretrained`), checked before the build."""
    arch = cfg.arch or get_profile(cfg.profile).arch
    model = create_model(arch, n_classes)
    if cfg.pretrained:
        start_from_imagenet(model, arch, cfg.pretrained, cfg.offline)


def _listing(cfg_out: Path, data: Path, main: bool) -> dict:
    """OUT/images.csv: every image a model run elsewhere must score (then `predictions`)."""
    listing = layout.report_path(cfg_out, "listing")
    if main:
        atomic_write_text(listing, "path\n" + "".join(f"{p}\n" for p in image_listing(data, "val")))
    return {"listing": str(listing), "data": str(data)}


def _trained(cfg: ReportConfig, cfg_out: Path, progress: bool) -> list[_Run]:
    """The models the report trains (resumed from OUT/models), loaded."""
    runs = []
    for run, config in _training_runs(cfg):
        run_dir = layout.report_path(cfg_out, "models", f"{config.variant}-seed{config.seed}")
        checkpoint = train(config, run_dir, progress=progress, offline=cfg.offline)
        run.model = registry.load(checkpoint).net
        run.info["path"] = checkpoint
        runs.append(run)
    return runs


def _analysed(cfg: ReportConfig, runs: list[_Run], data: Path, cfg_out: Path, n_classes: int, trained: bool,
              progress: bool) -> tuple[dict, dict, list[ModelResult]]:
    """Every model analysed (`_analyse`), its seeds pooled into one result with its conclusion: (the challenge's
    plan, the runs and analyses by model, the results)."""
    plan = _challenge_plan(cfg, data)
    challenge_data = load_challenge_data(data, "val", plan["foregrounds"], plan["backgrounds_per_class"], cfg.seed)
    plan["reading"] = _challenge_reading(plan)
    groups: dict[str, list[tuple[_Run, Analysis]]] = {}
    for k, run in enumerate(runs):
        analysis = _analyse(run, data, layout.report_path(cfg_out, "models", f"analysis-{k}"), challenge_data,
                            progress)
        groups.setdefault(run.group, []).append((run, analysis))
    results = []
    for group, items in groups.items():
        pooled = items[0][1].scored.pooled([a.scored for _, a in items[1:]])
        result = _model_entry(group, [r for r, _ in items], [a for _, a in items], pooled, cfg, data)
        result.conclusion = conclude(result, n_classes, cfg.seeds, trained)
        results.append(result)
    return plan, groups, results


def _challenge_reading(plan: dict) -> str:
    """The challenge's sample and budget, in words."""
    if plan["foregrounds"] is None and plan["backgrounds_per_class"] is None:
        return (f"every one of the {plan['of_foregrounds']} test foregrounds against every one of the "
                f"{plan['of_backgrounds']} backgrounds: the exact challenge accuracy")
    text = f"within a budget of {plan['budget']:,} composites: "
    text += (f"every one of the {plan['of_foregrounds']} test foregrounds" if plan["foregrounds"] is None else
             f"a stratified sample of {plan['foregrounds']} of the {plan['of_foregrounds']} test foregrounds (the "
             "accuracy comes with its 95% interval)")
    if plan["backgrounds_per_class"] is not None:
        text += (f", each against {plan['backgrounds_per_class']} backgrounds of each class of the "
                 f"{plan['of_backgrounds']}: an upper bound on the challenge accuracy")
    return text + " (--challenge-budget 0: the whole challenge)"


# -------------------------------------------------------------------------------------------------- figures
def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(report: dict, groups: dict, data: Path, cfg: ReportConfig) -> dict[str, str]:
    """The report's figures as base64 PNGs."""
    import pandas as pd

    figures = {"variants": _png(variants_figure(data, split="val"))}
    rows, gaps = [], []
    for group, items in groups.items():
        first = items[0][1].scored
        pooled = first.pooled([a.scored for _, a in items[1:]])
        for variant, hits in pooled.correct.items():
            rows.append(pd.DataFrame({"model": group, "test set": title(variant),
                                      "accuracy (%)": 100 * hits, "image": first.ids[variant]}))
        same = dict(zip(first.ids[MIXED_SAME], pooled.correct[MIXED_SAME]))
        rand = dict(zip(first.ids[MIXED_RAND], pooled.correct[MIXED_RAND]))
        gaps.append(pd.DataFrame({"model": group, "BG-Gap (points)": [100 * (same[i] - rand[i])
                                                                      for i in sorted(same.keys() & rand.keys())]}))
    seeds = pd.DataFrame([{"model": m["name"], "BG-Gap (points)": r["bg_gap"]} for m in report["models"]
                          for r in m["runs"]])
    figures["accuracy"] = _png(plots.accuracy_intervals(pd.concat(rows, ignore_index=True), cfg.bootstrap, cfg.seed))
    figures["bg_gap"] = _png(plots.gap_intervals(pd.concat(gaps, ignore_index=True), pd.DataFrame(seeds),
                                                 cfg.bootstrap, cfg.seed))
    figures["finegrained"] = _png(stacked_bars({m["name"]: pd.DataFrame({"share %": pd.Series(m["finegrained"])})
                                                for m in report["models"]}))
    fooled = pd.DataFrame({m["name"]: {layout.short_name(c): v for c, v in m["fooled_per_class"].items()}
                           for m in report["models"] if m["fooled_per_class"]})
    if not fooled.empty:
        figures["challenge"] = _png(plots.per_class_bars(fooled, "foregrounds fooled by some background (%)"))
    panels = {m["name"]: frames(m["groups"][MIXED_RAND], scale=1) for m in report["models"]
              if MIXED_RAND in m["groups"]}
    if panels:
        figures["groups"] = _png(plots.group_heatmaps(panels, SMALL_GROUP))
    for k, items in enumerate(groups.values()):
        path = items[0][1].saliency_figure
        if path is not None and path.exists():
            figures[f"saliency-{k}"] = base64.b64encode(path.read_bytes()).decode("ascii")
    return figures


def _pct_text(value) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def summary_lines(report: dict) -> list[str]:
    """The report in a few printed lines: what its numbers say, then the numbers."""
    d = report["data"]
    left = ", ".join(f"{n} {r}" for r, n in d["rejected"].items())
    lines = [f"{d['kept']} of {d['images']} files kept, {len(report['classes'])} classes"
             + (f"; left out: {left} (each in {d['rejections_file']})" if left else "")]
    # backgrounds sampled: the challenge accuracy (and its interval) is an upper bound
    bound = "at most " if (report.get("challenge") or {}).get("backgrounds_per_class") is not None else ""
    for m in report["models"]:
        for finding in m.get("conclusion") or []:
            lines.append(f"  {m['name']}: {finding['text']}"
                         + (f" (what to do: {finding['advice']})" if finding.get("advice") else ""))
    for m in report["models"]:
        gap = m["bg_gap"]
        lines.append(f"  {m['name']}: Original {_pct_text(m['accuracy'].get(ORIGINAL))}, BG-Gap "
                     f"{_fmt(gap['value'])}{_interval(gap['ci95'])}, challenge {bound}"
                     f"{_pct_text(m['challenge_accuracy'])}{_interval(m.get('challenge_ci95'))}, Grad-CAM on "
                     f"foreground {_pct_text(m['foreground_share'])}")
    for m in report["models"]:
        if m.get("worst_group"):
            lines.append(f"  {m['name']}: worst Mixed-Rand group: {m['worst_group']}")
    if report.get("challenge"):
        lines.append(f"  challenge: {report['challenge']['reading']}")
    return lines


__all__ = ["ReportConfig", "ModelResult", "make_report", "conclude", "summary_lines"]
