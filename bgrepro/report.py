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
import html
import io
import json
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import layout
from .classes import CLASS_FOLDERS, VARIANTS
from .io import atomic_write_text
from .results import strict_json

#: Default share of each class held out as test images when the folder has no train/ and val/ and models are
#: trained.
DEFAULT_VAL_FRACTION = 0.25
#: The models trained when none is given: one per training variant and seed.
TRAINED_ON = ("original", "mixed_rand")
VARIANT_NAMES = {"original": "Original", "only_bg_b": "Only-BG-B", "only_bg_t": "Only-BG-T", "no_fg": "No-FG",
                 "only_fg": "Only-FG", "mixed_same": "Mixed-Same", "mixed_rand": "Mixed-Rand",
                 "mixed_next": "Mixed-Next"}


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
    checkpoints: tuple[Path, ...] = ()
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

    def __post_init__(self) -> None:
        if self.masks is not None and self.boxes is not None:
            raise ValueError("pass --masks or --boxes, not both")
        if self.checkpoints and self.pretrained:
            raise ValueError("--pretrained goes with --arch, not with --checkpoint")
        if self.pretrained and not self.arch:
            raise ValueError("--pretrained needs --arch (a torchvision architecture)")
        if self.seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {self.seeds}")
        if (self.masks is not None or self.boxes is not None) and self.localizer_weights is not None:
            raise ValueError("--localizer-weights goes with photos that have neither --masks nor --boxes (the "
                             "localizer finds their objects); it would be ignored here")
        from .composite import REFINEMENTS

        if self.refine not in REFINEMENTS:
            raise ValueError(f"--refine must be one of {', '.join(REFINEMENTS)}, got {self.refine!r}")

    @property
    def side(self) -> int:
        """The output image side: --size, else 224 with the full profile and 64 on the CPU profiles."""
        from .profiles import get_profile

        return self.size or (224 if get_profile(self.profile).gpu else 64)

    def args(self) -> dict:
        """The arguments as plain JSON (what OUT/report_args.json holds)."""
        values = asdict(self)
        values.pop("out")
        values["side"] = self.side
        values["profile"] = self.profile or "default"
        return json.loads(json.dumps(values, default=str))


# ---------------------------------------------------------------------------------------------- the folder
def _clear_report(out: Path) -> None:
    """Remove what a report run writes into OUT (its parts, their staging folders and the marker), nothing else."""
    from .outputs import marker_path

    for part in layout.REPORT_PARTS:
        path = layout.report_path(out, part)
        for item in (path, layout.staging_dir(path), path.parent / f".{path.name}.replaced"):
            if item.is_dir():
                shutil.rmtree(item)
            else:
                item.unlink(missing_ok=True)
    marker_path(out).unlink(missing_ok=True)


@contextmanager
def _report_folder(out: Path, args: dict, inputs: dict, overwrite: bool):
    """OUT, locked for this run and checked against the arguments and inputs it was made with
    (`outputs.decide`): resumed when they match, recomputed when the inputs changed, refused when it is
    not a report of bgrepro's; what this run wrote is removed again if it fails on bad input (an
    interruption keeps it, to resume)."""
    from .outputs import RECOMPUTE, RESUME, decide, locked, notice, write_marker

    with locked(out):
        action, why = decide(out, "report", args, inputs, overwrite, "report")
        existed = out.exists()
        if action != RESUME:
            if why:
                notice(f"{why}: {'recomputing the report' if action == RECOMPUTE else 'replacing it'}")
            if existed:
                _clear_report(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PermissionError(f"{out}: output folder is not writable ({err.strerror or err})") from None
        write_marker(out, "report", args, inputs)
        atomic_write_text(layout.report_path(out, "args"), json.dumps(args, indent=2, sort_keys=True) + "\n")
        try:
            yield out
        except Exception:
            if action != RESUME:  # as it was before this run: absent, or empty
                _clear_report(out)
                if not existed:
                    shutil.rmtree(out, ignore_errors=True)
            raise


def _inputs(cfg: ReportConfig) -> dict:
    """The user's files a report reads, by option (no output may overlap them; their identity is recorded)."""
    from .models import weights_file

    return {"--images": Path(cfg.images), "--masks": cfg.masks, "--boxes": cfg.boxes,
            "--checkpoint": [Path(c) for c in cfg.checkpoints], "--localizer-weights": cfg.localizer_weights,
            "--pretrained": weights_file(cfg.pretrained) if cfg.pretrained else None}


# ------------------------------------------------------------------------------------------------ the data
def _open_source(cfg: ReportConfig):
    """The folder source of the photos (validated before anything is written), how it was split, and
    whether models are to be trained (none given)."""
    from .sources import FolderSource

    masks = cfg.masks or (None if cfg.boxes else layout.report_path(cfg.out, "masks"))
    common = dict(masks=masks, boxes=cfg.boxes, size=cfg.side,
                  missing_masks="reject" if masks is not None and cfg.masks is None else "error")
    source = FolderSource(cfg.images, val_fraction=cfg.val_fraction, split_seed=cfg.seed, **common)
    train_models = not cfg.checkpoints and not (cfg.pretrained and source.classes == CLASS_FOLDERS)
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
                         "--checkpoint, or --val-fraction for a folder of class folders")
    for split in source.splits():  # every listing and annotation checked before anything is written
        source.records(split)
    return source, split_rule, train_models


def _rps_masks(cfg: ReportConfig, progress: bool) -> dict:
    """RPS masks for every photo (OUT/masks, refined by GrabCut), w* kept in OUT/localizer to resume."""
    from .localize import localize_dataset

    saved = layout.report_path(cfg.out, "localizer") / "rps.pt"
    summary = localize_dataset(cfg.images, cfg.localizer, weights=cfg.localizer_weights,
                               rps_file=saved if saved.exists() else None, out=saved.parent,
                               write_masks_to=layout.report_path(cfg.out, "masks"), refine=cfg.refine,
                               offline=cfg.offline, progress=progress)
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
                         f"{reasons}); loosen them (--max-box-fraction, --min-inside-fraction, "
                         "--min-foreground-fraction), fix the annotations, or remove the class folder")


# ---------------------------------------------------------------------------------------------- the models
@dataclass
class _Run:
    """One model: its group (the report's model entry), its seed and how to get it."""

    group: str
    seed: int | None
    model: object = None
    info: dict = field(default_factory=dict)


def _given_models(cfg: ReportConfig, classes: tuple[str, ...]) -> list[_Run]:
    """The models passed in (checkpoints; an ImageNet model on IN-9's classes), loaded and checked against
    the photos' classes before anything is written."""
    from .models import imagenet_model, load_checkpoint, require_classes, weights_file

    runs = []
    for path in cfg.checkpoints:
        model, meta = load_checkpoint(path, arch=cfg.arch)
        require_classes(path, meta["classes"], cfg.images, classes)
        variant = (meta.get("config") or {}).get("variant") or meta.get("variant")
        name = (f"{path.name}: {meta['arch']} trained on {VARIANT_NAMES.get(variant, variant)}"
                if variant else f"{path.name}: {meta['arch']}")
        runs.append(_Run(name, None, model, {"checkpoint": str(path), "arch": meta["arch"]}))
    if cfg.pretrained and tuple(classes) == CLASS_FOLDERS:
        weights = weights_file(cfg.pretrained)
        model = imagenet_model(cfg.arch, weights, cfg.pretrained if weights is None else "IMAGENET1K_V1",
                               cfg.offline)
        runs.append(_Run(f"{cfg.arch}, ImageNet ({cfg.pretrained}) through the 1000 -> IN-9 mapping", None, model,
                         {"arch": cfg.arch, "weights": cfg.pretrained}))
    return runs


def _training_runs(cfg: ReportConfig) -> list[tuple[_Run, object]]:
    """The models to train: one per training variant and seed (run, TrainConfig)."""
    from .train import TrainConfig

    data = layout.report_path(cfg.out, "data")
    runs = []
    for variant in TRAINED_ON:
        for seed in range(cfg.seed, cfg.seed + cfg.seeds):
            config = TrainConfig.from_profile(data, cfg.profile, variant=variant, arch=cfg.arch, epochs=cfg.epochs,
                                              seed=seed, pretrained=cfg.pretrained)
            start = f"{config.arch} from ImageNet ({cfg.pretrained}), fine-tuned" if cfg.pretrained else config.arch
            group = (f"fine-tuned on {VARIANT_NAMES[variant]} from ImageNet" if cfg.pretrained else
                     f"trained on {VARIANT_NAMES[variant]}")
            runs.append((_Run(group, seed, info={"arch": config.arch, "epochs": config.epochs, "start": start,
                                                 "variant": variant}), config))
    return runs


# -------------------------------------------------------------------------------------------- the analyses
def _analyse(run: _Run, data: Path, fig_dir: Path, cfg: ReportConfig, challenge_data, progress: bool) -> dict:
    """Per-image correctness on every variant, the challenge, the fine-grained shares and Grad-CAM of one model."""
    from . import finegrained
    from .adversarial import challenge
    from .evaluate import correctness
    from .inference import Inference
    from .saliency import saliency_report

    correct, ids, labels, classes = correctness(run.model, data, None, "val", Inference.at(None), progress)
    table = finegrained.categorize(finegrained.correctness_table(correct, ids, labels["original"], classes, data))
    fooled = challenge(run.model, *challenge_data, progress=progress)
    salient = saliency_report(run.model, data, "val", examples=6, out=fig_dir, progress=progress)
    return {"correct": correct, "ids": ids, "labels": labels, "classes": classes,
            "finegrained": finegrained.summary(table)["share %"].to_dict(),
            "challenge_accuracy": fooled.challenge_accuracy,
            "challenge_per_class": dict(zip(fooled.classes, fooled.per_class())),
            "foreground_share": salient["foreground_share"], "mask_area": salient["mask_area"],
            "saliency_figure": fig_dir / "saliency.png"}


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


def _pooled(analyses: list[dict]) -> dict[str, np.ndarray]:
    """Per variant, each test image's share of seeds that got it right."""
    return {v: np.mean([a["correct"][v] for a in analyses], axis=0) for v in analyses[0]["correct"]}


def _model_entry(group: str, runs: list[_Run], analyses: list[dict], pooled: dict, cfg: ReportConfig) -> dict:
    """A model's entry of report.json: seeds pooled (per-image correctness averaged over seeds, so the
    intervals are a bootstrap over test images of the seed-averaged numbers), in %."""
    from .evaluate import summarize

    first = analyses[0]
    result = summarize(pooled, first["ids"], first["labels"], first["classes"], cfg.bootstrap, cfg.seed)
    per_seed = [summarize(a["correct"], a["ids"], a["labels"], a["classes"]) for a in analyses]
    gaps = [r["bg_gap"] for r in per_seed if r["bg_gap"] is not None]
    shares = [a["foreground_share"] for a in analyses]
    return {
        "name": group,
        "training": {k: v for k, v in runs[0].info.items() if k != "path"}
        | ({"seeds": [r.seed for r in runs]} if runs[0].seed is not None else {}),
        "accuracy": {v: _pct(a) for v, a in result["accuracy"].items()},
        "accuracy_ci95": {v: _pct_pair(p) for v, p in (result.get("ci95") or {}).items()},
        "n_test_images": result["n"],
        "per_class": {v: {c: _pct(a) for c, a in pc.items()} for v, pc in result["per_class"].items()},
        "bg_gap": {"value": _pct(result["bg_gap"]), "ci95": _pct_pair(result.get("bg_gap_ci95")),
                   "seeds": _spread(gaps)},
        "challenge_accuracy": _pct(_mean([a["challenge_accuracy"] for a in analyses])),
        "challenge_seeds": _spread([a["challenge_accuracy"] for a in analyses]),
        "fooled_per_class": {c: _pct(_mean([a["challenge_per_class"][c] for a in analyses]))
                             for c in first["challenge_per_class"]},
        "foreground_share": _pct(_mean(shares)),
        "foreground_share_seeds": _spread([s for s in shares if s is not None]),
        "mask_area": _pct(first["mask_area"]),
        "finegrained": {k: float(np.mean([a["finegrained"][k] for a in analyses])) for k in first["finegrained"]},
        "runs": [{"seed": r.seed, **({"checkpoint": str(r.info["path"])} if "path" in r.info else {}),
                  "accuracy": {v: _pct(x) for v, x in s["accuracy"].items()}, "bg_gap": _pct(s["bg_gap"]),
                  "challenge_accuracy": _pct(a["challenge_accuracy"]), "foreground_share": _pct(a["foreground_share"])}
                 for r, s, a in zip(runs, per_seed, analyses)],
    }


# ------------------------------------------------------------------------------------------------- the report
def make_report(cfg: ReportConfig, overwrite: bool = False, progress: bool = True) -> dict:
    """Build, train (unless models are given), analyse and write OUT/report.json and OUT/report.html;
    returns the report's JSON object."""
    from .build import build
    from .models import load_checkpoint
    from .outputs import check_location, check_no_overlap, identity_of
    from .train import train

    t0 = time.perf_counter()
    cfg_out = check_location(Path(cfg.out))
    if not Path(cfg.images).is_dir():
        raise FileNotFoundError(f"{cfg.images}: image folder not found")
    if cfg.masks is not None and not Path(cfg.masks).is_dir():
        raise FileNotFoundError(f"{cfg.masks}: mask folder not found")
    if cfg.localizer_weights is not None and not Path(cfg.localizer_weights).is_file():
        raise FileNotFoundError(f"{cfg.localizer_weights}: --localizer-weights file not found")
    for path in cfg.checkpoints:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: checkpoint not found")
    inputs = _inputs(cfg)
    check_no_overlap(cfg_out, inputs)
    source, split_rule, train_models = _open_source(cfg)
    given = _given_models(cfg, source.classes)
    if train_models:  # an unknown architecture or missing ImageNet weights: said now, not after the build
        from .models import create_model, start_from_imagenet
        from .profiles import get_profile

        arch = cfg.arch or get_profile(cfg.profile).arch
        model = create_model(arch, len(source.classes))
        if cfg.pretrained:
            start_from_imagenet(model, arch, cfg.pretrained, cfg.offline)
    args = cfg.args()
    with _report_folder(cfg_out, args, identity_of(inputs), overwrite):
        masks_info = {"from": "the given masks" if cfg.masks else
                      "GrabCut from the given boxes (the paper's procedure)" if cfg.boxes else None, "warning": None}
        if cfg.masks is None and cfg.boxes is None:
            masks_info = _rps_masks(cfg, progress)
        data = layout.report_path(cfg_out, "data")
        built = build(source, data, seed=cfg.seed, progress=progress)
        _check_classes(source, data, built.rejections)
        runs = given
        if train_models:
            runs = []
            for run, config in _training_runs(cfg):
                run_dir = layout.report_path(cfg_out, "models", f"{config.variant}-seed{config.seed}")
                checkpoint = train(config, run_dir, progress=progress, offline=cfg.offline)
                run.model, _ = load_checkpoint(checkpoint)
                run.info["path"] = checkpoint
                runs.append(run)
        from .adversarial import load_challenge_data

        challenge_data = load_challenge_data(data, "val")
        groups: dict[str, list[tuple[_Run, dict]]] = {}
        for k, run in enumerate(runs):
            fig_dir = layout.report_path(cfg_out, "models", f"analysis-{k}")
            analysis = _analyse(run, data, fig_dir, cfg, challenge_data, progress)
            groups.setdefault(run.group, []).append((run, analysis))
        pooled = {g: _pooled([a for _, a in items]) for g, items in groups.items()}
        models = [_model_entry(g, [r for r, _ in items], [a for _, a in items], pooled[g], cfg)
                  for g, items in groups.items()]
        kept = {s: built.counts.get(("original", s), 0) for s in layout.SPLITS if ("original", s) in built.counts}
        report = {
            "classes": list(source.classes),
            "data": {"images": sum(kept.values()) + sum(built.rejections.values()), "kept": sum(kept.values()),
                     "kept_per_split": kept, "rejected": dict(built.rejections.most_common()),
                     "split": split_rule, "size": cfg.side, "masks": masks_info["from"],
                     "masks_warning": masks_info["warning"], "filters": dict(source.filters),
                     "rejections_file": str((data / "rejections.csv").relative_to(cfg_out))},
            "units": "accuracies, intervals and shares in %; intervals are 95% percentile bootstraps over test images",
            "models": models,
            "arguments": args,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        figures = _figures(report, groups, pooled, data, cfg)
        atomic_write_text(layout.report_path(cfg_out, "json"),
                          json.dumps(strict_json(report), indent=2, allow_nan=False) + "\n")
        atomic_write_text(layout.report_path(cfg_out, "html"), render_html(report, figures))
    return strict_json(report)


# -------------------------------------------------------------------------------------------------- figures
def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(report: dict, groups: dict, pooled: dict, data: Path, cfg: ReportConfig) -> dict[str, str]:
    """The report's figures as base64 PNGs."""
    import pandas as pd

    from . import plots
    from .finegrained import stacked_bars

    figures = {"variants": _png(plots.variants_figure(data, split="val"))}
    rows, gaps = [], []
    for group, items in groups.items():
        first = items[0][1]
        for variant, hits in pooled[group].items():
            rows.append(pd.DataFrame({"model": group, "test set": VARIANT_NAMES.get(variant, variant),
                                      "accuracy (%)": 100 * hits, "image": first["ids"][variant]}))
        same = dict(zip(first["ids"]["mixed_same"], pooled[group]["mixed_same"]))
        rand = dict(zip(first["ids"]["mixed_rand"], pooled[group]["mixed_rand"]))
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
                           for m in report["models"]})
    figures["challenge"] = _png(plots.per_class_bars(fooled, "foregrounds fooled by some background (%)"))
    for k, items in enumerate(groups.values()):
        path = items[0][1]["saliency_figure"]
        if path.exists():
            figures[f"saliency-{k}"] = base64.b64encode(path.read_bytes()).decode("ascii")
    return figures


# ------------------------------------------------------------------------------------------------------ HTML
_STYLE = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1060px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}h1{font-size:1.6em}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th:first-child,td:first-child{text-align:left}thead th{background:#f2f2f2}
figure{margin:1em 0}figure img{max-width:100%}figcaption{font-size:.88em;color:#555}.warn{background:#fff3cd;
border:1px solid #e0c36a;padding:.5em .8em}.small{font-size:.85em;color:#555}code{background:#f4f4f4;padding:0 .2em}"""


def _fmt(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval(pair) -> str:
    return "" if not pair else f" [{_fmt(pair[0])}, {_fmt(pair[1])}]"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(figures: dict, key: str, caption: str) -> str:
    if key not in figures:
        return ""
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{figures[key]}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def render_html(report: dict, figures: dict[str, str]) -> str:
    """The self-contained HTML page of a report (no external file, script or font)."""
    d, models = report["data"], report["models"]
    esc = html.escape
    where = esc(str(report["arguments"]["images"]))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Background reliance: "
             f"{where}</title><style>{_STYLE}</style></head><body>",
             "<h1>How much do these models lean on backgrounds?</h1>",
             f"<p class='small'>Photos: <code>{where}</code>, {len(report['classes'])} "
             f"classes ({esc(', '.join(report['classes'][:12]))}{', ...' if len(report['classes']) > 12 else ''}). "
             f"Method: Xiao et al., <i>Noise or Signal: The Role of Image Backgrounds in Object Recognition</i> "
             f"(ICLR 2021). {esc(report['units'])}.</p>"]
    parts.append("<h2>In one table</h2><p>The <b>BG-Gap</b> is the accuracy on Mixed-Same (each foreground on a "
                 "background of its own class) minus that on Mixed-Rand (on a random class's background): how much "
                 "the model loses when the background stops agreeing with the object. The <b>challenge accuracy</b> "
                 "is the share of test foregrounds that no background of the test set turns into another class.</p>")
    rows = []
    for m in models:
        spread = m["bg_gap"]["seeds"]
        rows.append([m["name"], _fmt(m["accuracy"].get("original")) + _interval(m["accuracy_ci95"].get("original")),
                     _fmt(m["bg_gap"]["value"]) + _interval(m["bg_gap"]["ci95"]),
                     "n/a" if not spread else f"{_fmt(spread['sd'])} ({len(spread['values'])} seeds)",
                     _fmt(m["challenge_accuracy"]), _fmt(m["foreground_share"])])
    parts.append(_table(["model", "Original accuracy % [95%]", "BG-Gap, points [95%]", "BG-Gap sd over seeds",
                         "challenge accuracy %", "Grad-CAM share on foreground %"], rows))
    parts.append("<h2>The data</h2>")
    if d.get("masks_warning"):
        parts.append(f"<p class='warn'>{esc(d['masks_warning'])}</p>")
    rejected = ", ".join(f"{n} {r}" for r, n in d["rejected"].items()) or "none"
    per_split = ", ".join(f"{n} {s}" for s, n in d["kept_per_split"].items())
    parts.append(f"<p>{d['images']} photos, {d['kept']} kept ({per_split}); left out by the paper's filters: "
                 f"{esc(rejected)} (each one and why: <code>{esc(d['rejections_file'])}</code>). "
                 f"Foreground masks: {esc(str(d['masks']))}. Split: {esc(d['split'])}. Images brought to "
                 f"{d['size']} px (resize and centre crop, as the paper).</p>")
    parts.append(_figure(figures, "variants", "One test photo in the eight variants of the paper."))
    parts.append("<h2>Accuracy on every variant</h2>")
    variants = [v for v in VARIANTS if v in models[0]["accuracy"]]
    parts.append(_table(["model", *[VARIANT_NAMES[v] for v in variants]],
                        [[m["name"], *[_fmt(m["accuracy"][v]) + _interval(m["accuracy_ci95"].get(v)) for v in variants]]
                         for m in models]))
    parts.append(_figure(figures, "accuracy", "Accuracy per test set, 95% bootstrap intervals over test images "
                                              "(seaborn)."))
    parts.append(_figure(figures, "bg_gap", "BG-Gap: bars with the paired 95% bootstrap interval over test images; "
                                            "dots are single seeds."))
    parts.append("<h2>The backgrounds challenge</h2><p>For every test foreground, each Only-BG-T test background is "
                 "tried until one makes the model predict another class.</p>")
    parts.append(_figure(figures, "challenge", "Share of each class's foregrounds that some background fools."))
    parts.append("<h2>Is the background needed? (fine-grained)</h2><p>Each test image by what the model gets right: "
                 "the foreground alone (Only-FG), the image, and the foreground on another class's background "
                 "(Mixed-Rand).</p>")
    parts.append(_figure(figures, "finegrained", "Share of test images in each category."))
    parts.append("<h2>Where the models look (Grad-CAM)</h2>")
    parts.append(_table(["model", "share of saliency on the foreground %", "foreground area %"],
                        [[m["name"], _fmt(m["foreground_share"]), _fmt(m["mask_area"])] for m in models]))
    for k, m in enumerate(models):
        parts.append(_figure(figures, f"saliency-{k}", f"Grad-CAM of {m['name']} (first seed) on test photos."))
    parts.append("<h2>How this report was made</h2>")
    parts.append(_table(["argument", "value"], [[k, json.dumps(v)] for k, v in report["arguments"].items()]))
    parts.append(f"<p class='small'>bgrepro, {report['seconds']} s. Every number is in <code>report.json</code> "
                 "beside this page; the trained checkpoints are under <code>models/</code>.</p></body></html>")
    return "\n".join(p for p in parts if p)


def summary_lines(report: dict) -> list[str]:
    """The report in a few printed lines."""
    d = report["data"]
    lines = [f"{d['kept']} of {d['images']} photos kept, {len(report['classes'])} classes"]
    for m in report["models"]:
        gap = m["bg_gap"]
        lines.append(f"  {m['name']}: Original {_fmt(m['accuracy'].get('original'))}%, BG-Gap {_fmt(gap['value'])}"
                     f"{_interval(gap['ci95'])}, challenge {_fmt(m['challenge_accuracy'])}%, Grad-CAM on foreground "
                     f"{_fmt(m['foreground_share'])}%")
    return lines


__all__ = ["ReportConfig", "make_report", "render_html", "summary_lines"]
