"""What each chapter of the book shows: its tables beside the paper's numbers, the numbers its prose
quotes, and its example figures, each from the cached experiment records.

Every function takes the chapter's parameters (data folder, profile, seed, ...) and returns a
`Study`: `table` (what the page shows first), `tables` (further named tables), `numbers` (name ->
value, glued into the text by `bgrepro.book.chapter.show`) and, where a figure needs them, the records.
A chapter cell is one call: ``show(studies.mixed_rand(data, profile, seed))``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import layout, registry
from ..analyses import finegrained as fg
from ..analyses.evaluate import predict
from ..analyses.groups import SMALL_GROUP, frames, worst_group_line
from ..analyses.progress import FASTER_THAN_ONLY_BG_T, difference_name, linear_fits, slope_intervals
from ..analyses.rps import activation_maps, estimate
from ..analyses.saliency import foreground_share, gradcam, saliency_figure
from ..analyses.wsol import box_from_map
from ..data.build import read_manifest
from ..data.datasets import load_variant
from ..data.previews import habitat_matrices, variant_image, variants_figure
from ..data.synth import background_only_ceiling
from ..in9 import NUM_CLASSES
from ..plots import group_heatmaps, map_grid, ours_beside_paper
from ..plots import top_backgrounds as figure
from ..profiles import PROFILES, chapter_models, get_profile
from ..registry import available_pretrained
from ..training.classifier import TrainConfig
from ..variants import MIXED_NEXT, MIXED_RAND, MIXED_SAME, NO_FG, ONLY_BG_T, ONLY_FG, ORIGINAL, title
from . import experiments, paper
from . import verdicts as claim_verdicts
from .verdicts import CLAIMS, HISTORY, VERDICTS


@dataclass
class Study:
    """A chapter section's results: the main table, further tables, and the numbers its text quotes."""

    table: pd.DataFrame
    numbers: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)
    #: The claims this section judges (`bgrepro.book.verdicts.Verdict`), computed from its numbers.
    verdicts: list = field(default_factory=list)


def two_models(data: Path, profile: str | None = None, seed: int = 0) -> dict[str, TrainConfig]:
    """The profile's default model trained on Original and on Mixed-Rand, by their names in the book."""
    base = TrainConfig.from_profile(data, profile, seed=seed)
    return {"trained on Original": base, "trained on Mixed-Rand": replace(base, variant=MIXED_RAND)}


def original_model(data: Path, profile: str | None = None, seed: int = 0):
    """The profile's default model trained on Original (trained once, then loaded from its record)."""
    return experiments.trained_model(TrainConfig.from_profile(data, profile, seed=seed)).load()


def variants_example(data: Path, profile: str | None = None, seed: int = 0):
    """The paper's Fig. 1: one test image in the eight variants, each labelled with the prediction of the model
    trained on Original."""
    model = original_model(data, profile, seed)
    return variants_figure(data, predict=lambda images: predict(model, images, device="cpu"))


def top_backgrounds(record: Study, data: Path, per_class: int = 5):
    """The paper's Fig. 3 from the challenge study's every-pair record: the backgrounds that fool most."""
    return figure(record.records["pairs"], lambda i: variant_image(data, ONLY_BG_T, "val", i), per_class)


# ----------------------------------------------------------------------------- Sec. 3: backgrounds suffice
def bg_only_seeds(data: Path, profile: str | None = None, seed: int = 0) -> pd.DataFrame:
    """The background-only models of every seed of the profile's spread: one row per (trained on, seed), with the
    accuracy (%) on its own test set and on Original."""
    seeds = range(seed, seed + get_profile(profile).spread_seeds)
    return pd.concat({s: experiments.backgrounds_suffice(data, profile, s) for s in seeds}, names=["seed"]
                     ).swaplevel().sort_index(level=0, sort_remaining=False)


def backgrounds_suffice(data: Path, profile: str | None = None, seed: int = 0) -> Study:
    """Background-only models (paper Fig. 2) over the profile's seeds: the mean of each, its 95% interval over seeds
    on Original, beside the paper's threshold and chance; tables["per seed"] every seed's model."""
    per_seed = bg_only_seeds(data, profile, seed)
    groups = per_seed.groupby(level=0, sort=False)
    table = groups.mean()
    intervals = {name: claim_verdicts.over_seeds(g[ORIGINAL]) for name, g in groups}
    table["Original, 95% interval low"] = [intervals[n].low for n in table.index]
    table["Original, 95% interval high"] = [intervals[n].high for n in table.index]
    table["seeds"] = groups.size()
    table["paper on Original (around 40-50%): lower end"] = paper.BACKGROUNDS_SUFFICE_ON_ORIGINAL
    table["chance"] = 100 / len(layout.class_folders(data))
    weakest = table[ORIGINAL].idxmin()
    note = f"The {title(weakest)} model transfers least to Original."
    if weakest == NO_FG:
        note += " It also sees the black silhouette of the object, a shape cue that Original images do not have."
    side = pd.DataFrame({
        "ours, own test set": [table.loc[v, "own test set"] for v in table.index],
        "paper, own test set": [paper.TABLE5.loc[v, v] for v in table.index],
        "ours, Original": table[ORIGINAL].to_numpy(),
        "paper, Original": [paper.TABLE5.loc[v, ORIGINAL] for v in table.index]}, index=table.index)
    return Study(table, {"best_bg_only": table[ORIGINAL].max(), "worst_bg_only": table[ORIGINAL].min(),
                         "weakest_note": note, "chance": float(table["chance"].iloc[0]),
                         "bg_only_seeds": int(table["seeds"].iloc[0])}, {"paper": side, "per seed": per_seed})


# ----------------------------------------------------------------------------- Sec. 3: Mixed-Rand training
def mixed_rand(data: Path, profile: str | None = None, seed: int = 0) -> Study:
    """Original- vs Mixed-Rand-trained models on the foreground-keeping variants (paper Fig. 5), and
    beside the official ResNet-50s (table "beside the paper")."""
    table = experiments.mixed_rand_training(data, profile, seed)
    rows = [ORIGINAL, MIXED_SAME, MIXED_RAND, "bg_gap"]
    side = pd.DataFrame({
        "ours, trained on Original": table[ORIGINAL], "ours, trained on Mixed-Rand": table[MIXED_RAND],
        "paper ResNet-50 (IN-9L)": paper.model_numbers(paper.IN9L_MODEL, rows),
        "paper ResNet-50 (Mixed-Rand)": paper.model_numbers(paper.MIXED_RAND_MODEL, rows),
    }).loc[rows]
    side["difference (Mixed-Rand models)"] = side["ours, trained on Mixed-Rand"] - side["paper ResNet-50 (Mixed-Rand)"]
    with_bg = [ORIGINAL, MIXED_SAME, MIXED_RAND, MIXED_NEXT]  # the foreground on some background
    spread_bg = table.loc[with_bg].max() - table.loc[with_bg].min()
    fly = "mixed_rand (on the fly)"
    numbers = {"gap_orig": table.loc["bg_gap", ORIGINAL], "gap_mixed": table.loc["bg_gap", MIXED_RAND],
               "spread_bg_orig": spread_bg[ORIGINAL], "spread_bg_mixed": spread_bg[MIXED_RAND],
               "spread_bg_fly": spread_bg[fly], "spread_mixed": table.loc["spread", MIXED_RAND],
               "spread_fly": table.loc["spread", fly], "fg_orig": table.loc[ONLY_FG, ORIGINAL],
               "fg_mixed": table.loc[ONLY_FG, MIXED_RAND], "fg_fly": table.loc[ONLY_FG, fly]}
    fig5 = [ORIGINAL, MIXED_SAME, MIXED_RAND, MIXED_NEXT, ONLY_FG]  # what Fig. 5's models are quoted on
    matched = pd.DataFrame({
        "ours, trained on Original": table.loc[fig5, ORIGINAL],
        "paper, trained on Original": paper.TABLE5.loc[ORIGINAL, fig5],
        "ours, trained on Mixed-Rand": table.loc[fig5, MIXED_RAND],
        "paper, trained on Mixed-Rand": paper.TABLE5.loc[MIXED_RAND, fig5]})
    cost = matched.loc[ORIGINAL]
    numbers.update(paper_cost=cost["paper, trained on Original"] - cost["paper, trained on Mixed-Rand"],
                   our_cost=cost["ours, trained on Original"] - cost["ours, trained on Mixed-Rand"])
    return Study(table, numbers, {"beside the paper": side, "matched": matched})


def groups(data: Path, profile: str | None = None, seed: int = 0) -> Study:
    """Claim 4 group by group: Mixed-Rand's accuracy per (foreground class, background class) of the Original-
    and the Mixed-Rand-trained models (`analyses.groups`), their worst groups, and how uneven the groups are
    (the standard deviation of the accuracies of the groups that are not small)."""
    matrices = {name: experiments.trained_model(config).record.metrics["evaluation"]["groups"][MIXED_RAND]
                for name, config in two_models(data, profile, seed).items()}
    rows, numbers = {}, {}
    for (name, m), key in zip(matrices.items(), ("orig", "mixed")):
        large = [100 * g["accuracy"] for g in m["groups"] if not g["small"]]
        w = m["worst"]
        rows[name] = {"Mixed-Rand accuracy %": 100 * m["accuracy"], "groups": len(m["groups"]),
                      "small groups": sum(g["small"] for g in m["groups"]),
                      "sd of group accuracies, points": float(np.std(large, ddof=1)) if len(large) > 1 else None,
                      "worst group": worst_group_line(m), "worst-group accuracy %": 100 * w["accuracy"]}
        numbers.update({f"groups_sd_{key}": rows[name]["sd of group accuracies, points"],
                        f"worst_{key}": worst_group_line(m), f"worst_acc_{key}": 100 * w["accuracy"]})
    hardest = pd.DataFrame({name: {layout.short_name(c): (f"{layout.short_name(h['background'])}: "
                                                          f"-{100 * h['drop']:.1f}" if h else "-")
                                   for c, h in m["hardest_background"].items()} for name, m in matrices.items()})
    hardest.index.name = "foreground class"
    return Study(pd.DataFrame(rows).T, numbers, {"hardest background": hardest},
                 records={name: frames(m) for name, m in matrices.items()})


def groups_figure(study: Study):
    """The group matrices of the models of `groups` one above the other."""
    return group_heatmaps(study.records, SMALL_GROUP)


def composite_origins(data: Path, count: int = 6) -> pd.DataFrame:
    """Where composites came from: the first Mixed-Rand test composite of each of the first `count` classes with
    its foreground's and its background's class and source file (the manifest's `fg_source`, `bg_source`)."""
    rows = [r for r in read_manifest(data) if r["variant"] == MIXED_RAND and r["split"] == "val"]
    firsts: dict[str, dict] = {}
    for r in rows:
        firsts.setdefault(r["fg_class"], r)
    classes = layout.class_folders(data)
    table = pd.DataFrame([{"Mixed-Rand composite": Path(r["path"]).relative_to(MIXED_RAND).as_posix(),
                           "foreground class": layout.short_name(classes[int(r["fg_class"])]),
                           "foreground from": r.get("fg_source") or "(not recorded)",
                           "background class": layout.short_name(classes[int(r["bg_class"])]),
                           "background from": r.get("bg_source") or "(not recorded)"}
                          for r in list(firsts.values())[:count]])
    return table.sort_values("Mixed-Rand composite", ignore_index=True)


def headline(data: Path, profile: str | None = None, seed: int = 0):
    """Like with like: our models trained on Original and on Mixed-Rand beside the paper's two ResNet-50s trained
    on the same images with and without their backgrounds (Table 5), on Original, Mixed-Same and Mixed-Rand."""
    rows = [ORIGINAL, MIXED_SAME, MIXED_RAND]
    theirs = pd.DataFrame({ORIGINAL: paper.model_numbers(paper.ORIGINAL_MODEL, rows),
                           MIXED_RAND: paper.model_numbers(paper.MIXED_RAND_MODEL, rows)})
    return ours_beside_paper(experiments.mixed_rand_training(data, profile, seed), theirs, rows)


def saliency(data: Path, profile: str | None = None, seed: int = 0) -> Study:
    """Share of Grad-CAM saliency on the foreground, Original- vs Mixed-Rand-trained (claim 4)."""
    shares = experiments.saliency_on_foreground(two_models(data, profile, seed))
    return Study(shares, {"sal_orig": shares.loc["all test images", "trained on Original"],
                          "sal_mixed": shares.loc["all test images", "trained on Mixed-Rand"]})


def saliency_examples(data: Path, profile: str | None = None, seed: int = 0, count: int = 6):
    """Grad-CAM maps of both models on the first test image of each of the first `count` classes."""
    test = load_variant(data, ORIGINAL, "val", with_masks=True)
    pick = test.first_positions(1)[:count]  # the first image of each of the first classes
    maps, shares = {}, {}
    for name, config in two_models(data, profile, seed).items():
        maps[name] = gradcam(experiments.trained_model(config).load(), test.images[pick])
        shares[name] = foreground_share(maps[name], test.masks[pick])
    return saliency_figure(test.images[pick], test.masks[pick], maps, shares)


# ----------------------------------------------------------------------------- Sec. 4: the challenge
def challenge(data: Path, profile: str | None = None, seed: int = 0) -> Study:
    """The backgrounds challenge of both models (the Original-trained one also over every pair of the
    profile's share of foregrounds, for Figs. 3-4): a summary, the paper's comparison, the fooled
    share per class and the fooling share of each background class."""
    pairs_per_class = get_profile(profile).challenge_pairs_per_class
    original, mixed = two_models(data, profile, seed).values()
    records = {"trained on Original": experiments.adversarial_backgrounds(original, pairs_per_class),
               "trained on Mixed-Rand": experiments.adversarial_backgrounds(mixed, pairs_per_class=0)}
    summary = pd.DataFrame({
        name: {"clean accuracy (Original)": 100 * r.clean_accuracy, "challenge accuracy": 100 * r.challenge_accuracy,
               "foregrounds fooled": 100 * r.fooled_fraction, "foregrounds": r.summary["n_foregrounds"],
               "backgrounds": r.summary["n_backgrounds"], "composites evaluated": r.summary["composites"],
               "search seconds": r.summary["seconds"]}
        for name, r in records.items()})
    counts = ["foregrounds", "backgrounds", "composites evaluated"]
    ours = {name: 100 * r.challenge_accuracy for name, r in records.items()}
    comparison = pd.DataFrame({"ours": ours.values(),
                               "paper (its closest model)": [paper.number(paper.IN9L_MODEL, "challenge accuracy"),
                                                             None],
                               "paper model": ["ResNet-50 trained on IN-9L", "(not reported)"]}, index=list(ours))

    if layout.data_kind(data) == "in9" and "resnet50" in available_pretrained():  # the paper's ImageNet ResNet-50
        imagenet = experiments.pretrained_challenge("resnet50", data)
        comparison.loc["ImageNet-pretrained ResNet-50"] = [100 * imagenet["challenge_accuracy"],
                                                          paper.number("ResNet-50, ImageNet weights",
                                                                       "challenge accuracy"),
                                                          f"ResNet-50, ImageNet-pretrained ({imagenet['reading']})"]
    comparison["difference"] = comparison["ours"] - comparison["paper (its closest model)"]
    classes = list(records["trained on Original"].fooled_per_class)
    names = [layout.short_name(c) for c in classes]
    per_class = pd.DataFrame({name: [None if r.fooled_per_class[c] is None else 100 * r.fooled_per_class[c]
                                     for c in classes] for name, r in records.items()}, index=names, dtype=float)
    pairs = records["trained on Original"].pairs
    tables = {"paper": comparison, "per class": per_class}
    numbers = {"chal_orig": ours["trained on Original"], "chal_mixed": ours["trained on Mixed-Rand"]}
    if pairs:
        tables["class fooling"] = pd.Series(
            {layout.short_name(c): 100 * v for c, v in pairs["class_fooling"].items()},
            name="other-class foregrounds fooled by some background of the class (%)").to_frame()
        numbers["pairs_fg"] = pairs["n_foregrounds"]
    summary = summary.astype(object)  # counts print as counts (`chapter.number`)
    for row in counts:
        summary.loc[row] = [v if pd.isna(v) else int(v) for v in summary.loc[row]]
    return Study(summary, numbers, tables, {"pairs": pairs, **records})


# ----------------------------------------------------------------------------- how much the seed moves them
def seed_spread(data: Path, profile: str | None = None, seed: int = 0) -> Study:
    """The BG-Gap and the challenge accuracy of the default model trained on Original and on Mixed-Rand
    with the profile's `spread_seeds` seeds: mean, standard deviation and range over seeds beside the
    paper's ResNet-50 (IN-9L- and Mixed-Rand-trained; table), and every seed's numbers (tables["per seed"])."""
    per_seed = experiments.seed_spread(data, profile, seed)
    table = experiments.spread_summary(per_seed)
    # the paper's ResNet-50s (one run each; no spread reported) beside ours: IN-9L-trained, Mixed-Rand-trained
    quantities = [ORIGINAL, MIXED_SAME, MIXED_RAND, "bg_gap", "challenge accuracy"]
    official = {"trained on Original": paper.model_numbers(paper.IN9L_MODEL, quantities).to_dict(),
                "trained on Mixed-Rand": paper.model_numbers(paper.MIXED_RAND_MODEL, quantities).to_dict()}
    table["paper's ResNet-50 (IN-9L- or Mixed-Rand-trained, one run)"] = [official[m].get(metric)
                                                                        for m, metric in table.index]
    at = lambda model, metric, column: float(table.loc[(model, metric), column])  # noqa: E731
    numbers = {"n_seeds": int(per_seed["seed"].nunique())}
    for key, model in (("orig", "trained on Original"), ("mixed", "trained on Mixed-Rand")):
        for short, metric in (("gap", "bg_gap"), ("chal", "challenge accuracy")):
            numbers[f"{short}_sd_{key}"] = at(model, metric, "sd")
            numbers[f"{short}_mean_{key}"] = at(model, metric, "mean")
    return Study(table, numbers, {"per seed": per_seed.set_index(["model", "seed"])}, {"per seed": per_seed})


def challenge_control(data: Path, profile: str | None = None, seed: int = 0) -> Study:
    """Claim 3 against its controls, every seed model of the spread: clean accuracy, accuracy on Mixed-Same (its
    per-composite accuracy with a background of its own class), the backgrounds tried, the challenge accuracy, and
    the challenge accuracy independent errors would give (`verdicts.independent_level`); the Mixed-Rand-trained
    models are the control the verdict compares with."""
    per_seed = seed_measures(data, profile, seed)
    columns = {ORIGINAL: "clean accuracy (Original)", MIXED_SAME: "Mixed-Same accuracy", "backgrounds":
               "backgrounds tried", "challenge accuracy": "challenge accuracy",
               "independent-error level": "challenge accuracy if errors were independent"}
    table = per_seed.set_index(["model", "seed"])[list(columns)].rename(columns=columns)
    judged = verdict("3", data, profile, seed, per_seed=per_seed)
    orig = per_seed[per_seed["model"] == "trained on Original"]
    mixed = per_seed[per_seed["model"] == "trained on Mixed-Rand"]
    gap = claim_verdicts.difference(orig["challenge accuracy"], mixed["challenge accuracy"])
    numbers = {"control_sentence": judged.sentence(), "control_difference": gap.text(sign=True),
               "independent_level_max": float(per_seed["independent-error level"].max()),
               "backgrounds_tried": int(per_seed["backgrounds"].max())}
    return Study(table, numbers, records={"per seed": per_seed}, verdicts=[judged])


#: The paper's models on the challenge, as (clean accuracy on Original, challenge accuracy) (%).
PAPER_CHALLENGE = {"paper: ResNet-50, IN-9L": (paper.number(paper.IN9L_MODEL, ORIGINAL),
                                               paper.number(paper.IN9L_MODEL, "challenge accuracy")),
                   "paper: ResNet-50, ImageNet": (float(paper.TABLE2_IMAGENET.loc[ORIGINAL, "ResNet-50"]),
                                                  paper.number("ResNet-50, ImageNet weights", "challenge accuracy"))}


def challenge_control_figure(study: Study):
    """Challenge accuracy against clean accuracy for every seed model, beside the paper's two ResNet-50s."""
    from ..plots import challenge_against_clean

    return challenge_against_clean(study.records["per seed"], PAPER_CHALLENGE)


# ----------------------------------------------------------------------------- Sec. 5: fine-grained
def finegrained(data: Path, profile: str | None = None, seed: int = 0) -> Study:
    """The fine-grained categories of both models (overview), the paper's two-way split ("2x2"), the
    Original-trained model per class ("by class"); `records` holds each model's per-category summary."""
    tables = {name: fg.categorize(experiments.finegrained_correctness(config))
              for name, config in two_models(data, profile, seed).items()}
    summaries = {name: fg.summary(t) for name, t in tables.items()}
    overview = pd.concat({n: s["share %"] for n, s in summaries.items()}, axis=1)
    needed = overview.loc[["background overrides", "background needed"], "trained on Original"].sum()
    judged = verdict("5", data, profile, seed)
    two_way = pd.concat({n: 100 * t["split_2x2"].value_counts(normalize=True).reindex(list(fg.SPLIT_2X2))
                         for n, t in tables.items()}, axis=1)
    by_class = fg.summary(tables["trained on Original"], by_class=True)
    return Study(overview, {"bg_needed_orig": needed, "fine_note": judged.sentence(),
                            "paper_bg_needed": paper.number(paper.ORIGINAL_MODEL, "images that need their background")},
                 {"2x2": two_way, "by class": by_class}, summaries, [judged])


# ----------------------------------------------------------------------------- Sec. 6: progress
def progress(data: Path, profile: str | None = None, seed: int = 0, pretrained: tuple[str, ...] = ()) -> Study:
    """The model zoo's accuracy per variant (table), and claim 6 on two halves of the test images that share no image
    (`experiments.zoo_halves`, table "halves"): each variant's linear fit against Original on the other half
    ("fits") and the verdict."""
    zoo = experiments.zoo_table(data, profile, seed, pretrained=pretrained).rename(index=registry.model_name)
    halves = experiments.zoo_halves(data, profile, seed, pretrained=pretrained).rename(index=registry.model_name)
    fits, judged = progress_verdict(halves, ORIGINAL, 100 / len(layout.class_folders(data)))
    rand, bgt = fits.loc[MIXED_RAND, "slope"], fits.loc[ONLY_BG_T, "slope"]
    x_half, y_half = halves.attrs["halves"]
    return Study(zoo, {"slope_rand": rand, "slope_bgt": bgt, "progress_note": judged.sentence(), "x_half": x_half,
                       "y_half": y_half}, {"fits": fits, "halves": halves}, verdicts=[judged])


def progress_verdict(table: pd.DataFrame, x: str, chance: float) -> tuple[pd.DataFrame, claim_verdicts.Verdict]:
    """Claim 6 on a table of models (rows) by accuracy (%) on each variant and on `x` (columns): each variant's
    linear fit against `x` with its bootstrap interval over models, and the verdict."""
    fits = linear_fits(table, x)
    intervals = slope_intervals(table, x)
    differences = [difference_name(v) for v in FASTER_THAN_ONLY_BG_T]
    fits = fits.join(intervals.drop(index=differences, errors="ignore"))
    over = f"{len(table)} models"
    slopes = {k: claim_verdicts.Estimate(float(fits.loc[k, "slope"]), *_pair(intervals, k), over) for k in fits.index}
    slope_diffs = {v: claim_verdicts.Estimate(float(fits.loc[v, "slope"] - fits.loc[ONLY_BG_T, "slope"]),
                                              *_pair(intervals, difference_name(v)), over)
                   for v in FASTER_THAN_ONLY_BG_T if v in fits.index}
    originals = {str(i): float(table.loc[i, ORIGINAL]) for i in table.index}
    return fits, claim_verdicts.claim_6(slopes, slope_diffs, originals, chance, against=x)


def _pair(intervals: pd.DataFrame, row: str) -> tuple[float | None, float | None]:
    """A bootstrap interval's (low, high) from `slope_intervals`, (None, None) where it has none."""
    if row not in intervals.index:
        return None, None
    return float(intervals.loc[row, "ci95 low"]), float(intervals.loc[row, "ci95 high"])


# ----------------------------------------------------------------------------- localization
def _exact_truth(synth: Path | None) -> Path | None:
    """The synthetic source when it has exact masks (then maps are scored against them)."""
    return Path(synth) if synth and layout.split_dir(synth, layout.MASKS, "val").is_dir() else None


#: The localization table's columns (the standard WSOL metrics, %) and their headings.
LOCALIZATION_COLUMNS = {
    "maxboxaccv2": "MaxBoxAccV2", "maxboxaccv2_held_out": "MaxBoxAccV2, held-out threshold", "pxap": "PxAP",
    "blank_maps": "blank maps (% of images)",
}
#: The further columns, in the table "detail": each IoU's box accuracy, the held-out threshold, PIoU, mask IoU.
LOCALIZATION_DETAIL = {
    "iou30": "IoU 30", "iou50": "IoU 50", "iou70": "IoU 70", "held_out_threshold": "held-out threshold",
    "piou": "PIoU", "mask_iou@0.5": "mask IoU at 0.5",
}


def localization(data: Path, profile: str | None = None, seed: int = 0, synth: Path | None = None) -> Study:
    """RPS against the CAAM baseline (channel sum) on two backbones: one trained here without labels
    (SimSiam, as the method is published with self-supervised backbones) and the Original-trained model's
    trunk (scored against the exact synthetic masks when `synth` has them); GrabCut / RPS mask quality
    ("masks"); the self-supervised backbone's training in the numbers (ssl_*)."""
    config = TrainConfig.from_profile(data, profile, seed=seed)
    truth = _exact_truth(synth)
    ssl = experiments.simsiam_backbone(data, profile, seed)
    full = experiments.rps_localization(config, truth=truth, ssl_checkpoint=Path(ssl.metrics["checkpoint"]))
    table = full[[c for c in LOCALIZATION_COLUMNS if c in full.columns]].rename(columns=LOCALIZATION_COLUMNS)
    tables = {"detail": full[[c for c in LOCALIZATION_DETAIL if c in full.columns]].rename(columns=LOCALIZATION_DETAIL)}
    if synth and (Path(synth) / "annotations.csv").exists():
        tables["masks"] = experiments.mask_quality(synth, config)
    numbers = {"rps_speed": full.attrs["estimate_images_per_s"], "n_held_out": full.attrs["n_held_out"],
               "ssl_epochs": get_profile(profile).ssl_epochs, "ssl_seconds": ssl.metrics["train_seconds"],
               "ssl_z_std": ssl.metrics["z_std"], "ssl_collapse_reference": ssl.metrics["collapse_reference"],
               "ssl_loss": ssl.metrics["loss"]}
    for prefix, backbone in (("", experiments.SELF_SUPERVISED_BACKBONE), ("sup_", experiments.SUPERVISED_BACKBONE)):
        for key, method in (("rps", "RPS"), ("caam", "CAAM (channel sum)")):
            row = full.loc[(backbone, method)]
            numbers.update({f"{prefix}{key}_pxap": row["pxap"], f"{prefix}{key}_maxboxaccv2": row["maxboxaccv2"],
                            f"{prefix}{key}_held_out": row["maxboxaccv2_held_out"],
                            f"{prefix}{key}_blank": row["blank_maps"]})
    chance = full.loc[experiments.CHANCE]
    numbers.update(chance_pxap=float(chance.loc["constant map", "pxap"]),
                   chance_box=float(chance["maxboxaccv2"].max()), chance_centre_pxap=float(
                       chance.loc["centre Gaussian map", "pxap"]))
    return Study(table, numbers, tables)


def localization_examples(data: Path, profile: str | None = None, seed: int = 0, synth: Path | None = None,
                          count: int = 6):
    """CAAM and RPS maps of the self-supervised backbone, and RPS of the classifier's trunk, on the first test
    image of each of the first `count` classes."""
    config = TrainConfig.from_profile(data, profile, seed=seed)
    supervised = registry.load(experiments.trained_model(config).checkpoint).trunk()
    rps = experiments.rps_predictor(config)
    ssl_checkpoint = experiments.simsiam_backbone(data, profile, seed).metrics["checkpoint"]
    ssl = registry.load(ssl_checkpoint).trunk()
    train = load_variant(data, ORIGINAL, "train")
    ssl_rps = estimate(ssl, train.images, train.labels, num_classes=len(train.classes))
    test = load_variant(_exact_truth(synth) or data, ORIGINAL, "val", with_masks=True)
    pick = test.first_positions(1)[:count]  # the first image of each of the first classes
    images = test.images[pick]
    maps = {"CAAM (SimSiam)": activation_maps(ssl, images, None),
            "RPS (SimSiam)": activation_maps(ssl, images, ssl_rps),
            "RPS (classifier)": activation_maps(supervised, images, rps)}
    arrays = {name: m.numpy() for name, m in maps.items()}
    boxes = {name: [box_from_map(heat, 0.5) for heat in m] for name, m in arrays.items()}
    return map_grid(images.numpy(), test.masks[pick].numpy(), arrays, boxes=boxes, overlay=False,
                    mask_title="exact mask")


# ----------------------------------------------------------------------------- the synthetic data
def generator_setting(synth: Path | None) -> dict | None:
    """The synthetic source's class-habitat correlation R and the background-only accuracy it allows (its
    Bayes ceiling, %): the generator settings claims 1 and 2 depend on; None without a synthetic source."""
    path = Path(synth) / "synth.json" if synth else None
    if path is None or not path.exists():
        return None
    correlation = json.loads(path.read_text())["correlation"]
    return {"correlation": correlation, "ceiling": 100 * background_only_ceiling(correlation)}


def habitats(synth: Path) -> Study:
    """The synthetic source's class-habitat correlation R, the background-only accuracy it allows, and
    the designed vs realised class x habitat matrices (a figure)."""
    setting = generator_setting(synth)
    if setting is None:
        return Study(pd.DataFrame(), {"correlation": float("nan"), "ceiling": float("nan")})
    habitat_matrices(synth, setting["correlation"])
    return Study(pd.DataFrame(), setting)


# ----------------------------------------------------------------------------- all claims
#: The claims each chapter judges (its verdict box).
CHAPTER_CLAIMS = {"backgrounds_suffice": ("1",), "bg_gap": ("2",), "adversarial": ("3",),
                  "mixed_rand_training": ("4a", "4b", "4c"), "finegrained": ("5",), "progress": ("6",),
                  "localization": ("RPS",)}


def seed_measures(data: Path, profile: str | None = None, seed: int = 0) -> pd.DataFrame:
    """Per seed model of the spread (trained on Original and on Mixed-Rand, `experiments.seed_spread`): its
    accuracy on Original, Mixed-Same and Mixed-Rand, BG-Gap and challenge accuracy, and its Grad-CAM share on the
    foreground and share of test images that need their own background (right on Original, wrong on
    Mixed-Rand): every number a claim about these models is judged on, in % and points."""
    per_seed = experiments.seed_spread(data, profile, seed)
    configs = {(row.model, row.seed): TrainConfig.from_profile(
        data, profile, variant=ORIGINAL if row.model == "trained on Original" else MIXED_RAND, seed=int(row.seed))
        for row in per_seed.itertuples()}
    shares = experiments.saliency_on_foreground({f"{m} {s}": c for (m, s), c in configs.items()})
    per_seed["saliency on foreground"] = [shares.loc["all test images", f"{m} {s}"] for m, s in configs]
    needed, needed_fg = [], []
    for config in configs.values():
        table = experiments.finegrained_correctness(config)
        needed.append(100 * float((table[ORIGINAL] & ~table[MIXED_RAND]).mean()))
        needed_fg.append(100 * float((table[ORIGINAL] & ~table[ONLY_FG]).mean()))
    per_seed["needs its background"] = needed
    per_seed["needs its background (Only-FG reading)"] = needed_fg
    per_seed["independent-error level"] = [
        claim_verdicts.independent_level(row[MIXED_SAME], int(row.backgrounds)).value for _, row in per_seed.iterrows()]
    return per_seed


#: The claims judged on every seed model of the spread (on `seed_measures`).
SEED_CLAIMS = ("2", "3", "4a", "4b", "4c", "5")


def verdict(claim: str, data: Path, profile: str | None = None, seed: int = 0, synth: Path | None = None,
            per_seed: pd.DataFrame | None = None):
    """One claim judged on this run's numbers (`bgrepro.book.verdicts`), from the same cached records its chapter
    shows: claims about the default models on every seed model of the spread (`per_seed`, `seed_measures`, read
    here when not given)."""
    p = get_profile(profile)
    chance = 100 / len(layout.class_folders(data))
    if claim == "1":
        per_seed = bg_only_seeds(data, profile, seed)
        return claim_verdicts.claim_1({title(name): list(g[ORIGINAL]) for name, g in
                                       per_seed.groupby(level=0, sort=False)}, chance,
                                      paper.BACKGROUNDS_SUFFICE_ON_ORIGINAL)
    if claim in SEED_CLAIMS:
        per_seed = seed_measures(data, profile, seed) if per_seed is None else per_seed
        orig = per_seed[per_seed["model"] == "trained on Original"]
        mixed = per_seed[per_seed["model"] == "trained on Mixed-Rand"]
        both = {"the Original-trained models": float(orig[ORIGINAL].mean()),
                "the Mixed-Rand-trained models": float(mixed[ORIGINAL].mean())}
        if claim == "2":
            return claim_verdicts.claim_2(list(orig["bg_gap"]), list(orig[ORIGINAL]), chance)
        if claim == "3":
            return claim_verdicts.claim_3(list(orig["challenge accuracy"]), list(orig[ORIGINAL]), chance,
                                          control=list(mixed["challenge accuracy"]))
        if claim == "4a":
            return claim_verdicts.claim_4a(list(orig["bg_gap"]), list(mixed["bg_gap"]), both, chance)
        if claim == "4b":
            return claim_verdicts.claim_4b(list(orig[ORIGINAL]), list(mixed[ORIGINAL]), chance)
        if claim == "4c":
            return claim_verdicts.claim_4c(list(orig["saliency on foreground"]), list(mixed["saliency on foreground"]),
                                           both, chance)
        return claim_verdicts.claim_5(list(orig["needs its background"]), list(orig[ORIGINAL]), chance,
                                      only_fg=list(orig["needs its background (Only-FG reading)"]))
    if claim == "6":  # the progress chapter's, on the same zoo (with the ImageNet models on disk)
        return progress(data, profile, seed, pretrained=available_pretrained()).verdicts[0]
    if claim == "RPS":  # judged on the self-supervised backbone, as the method is published
        table = localization(data, profile, seed, synth).table
        ssl = experiments.SELF_SUPERVISED_BACKBONE
        pick = lambda row: {"maxboxaccv2": float(row["MaxBoxAccV2"]), "pxap": float(row["PxAP"])}  # noqa: E731
        chance = table.loc[experiments.CHANCE]  # the better of the constant and the centred map, per metric
        chance_maps = {"maxboxaccv2": float(chance["MaxBoxAccV2"].max()), "pxap": float(chance["PxAP"].max())}
        return claim_verdicts.claim_rps(
            pick(table.loc[(ssl, "RPS")]), pick(table.loc[(ssl, "CAAM (channel sum)")]), chance_maps,
            self_supervised=True,
            backbone=f"a {p.arch} trained here by SimSiam without labels ({p.ssl_epochs} epochs)",
            decide="a backbone that localizes, such as the RPS paper's DINO ResNet-50 (`bgrepro localize "
                   "--backbone dino_resnet50`, with a network), would decide it")
    raise ValueError(f"unknown claim {claim!r}")


def chapter_verdicts(chapter: str, data: Path, profile: str | None = None, seed: int = 0,
                     synth: Path | None = None) -> list:
    """The verdicts of a chapter's claims (`CHAPTER_CLAIMS`)."""
    return _verdicts(CHAPTER_CLAIMS[chapter], data, profile, seed, synth)


def _verdicts(keys, data: Path, profile: str | None, seed: int, synth: Path | None) -> list:
    """The verdicts of the claims `keys`, the seed models' measures read once for all of them."""
    per_seed = seed_measures(data, profile, seed) if set(keys) & set(SEED_CLAIMS) else None
    return [verdict(c, data, profile, seed, synth, per_seed) for c in keys]


def claims(data: Path, profile: str | None = None, seed: int = 0, synth: Path | None = None) -> Study:
    """Every claim of both papers: our measure, the paper's, the verdict computed from the numbers by its
    criterion (`bgrepro.book.verdicts.CLAIMS`) and the reason; `records["verdicts"]` holds the verdicts and
    `numbers["verdict_summary"]` says how many of each, in words."""
    judged = _verdicts([c for chapter in CHAPTER_CLAIMS.values() for c in chapter], data, profile, seed, synth)
    table = pd.DataFrame([{"claim": j.claim, "title": CLAIMS[j.claim].title, "measure": j.measure, "ours": j.ours,
                           "paper": j.paper, "verdict": j.verdict, "why": j.reason} for j in judged])
    counts = table["verdict"].value_counts()
    parts = [f"{int(counts[v])} {v}" for v in VERDICTS if counts.get(v, 0)]
    summary = f"Of {len(table)} claims, " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1
                                              else parts[0]) + "."
    return Study(table, {"verdict_summary": summary, "n_claims": len(table)}, records={"verdicts": judged})


def criteria_rows() -> list[dict]:
    """Each claim's criterion, in the words fixed in `bgrepro.book.verdicts` (for the claims page)."""
    return [{"claim": f"{c.key} {c.title}", "criterion": c.criterion} for c in CLAIMS.values()]


def history_rows() -> list[dict]:
    """The criteria changed after numbers had been seen: old, new, why and when (`verdicts.HISTORY`)."""
    return [{"claims": c, "date": d, "before": old, "now": new, "why": why} for c, d, old, new, why in HISTORY]


def paper_numbers() -> tuple[list[dict], list[str]]:
    """The papers' numbers the book sets ours beside, per model with their source (rows), and the notes that
    say which source was chosen where two differ."""
    rows, notes = [], []
    for model, group in paper.NUMBERS.groupby("model", sort=False):
        values = "; ".join(f"{'BG-Gap' if q == 'bg_gap' else title(q)} {v:g}" for q, v in zip(group["quantity"],
                                                                                            group["value"]))
        rows.append({"model": model, "numbers (%)": values,
                     "source": "; ".join(dict.fromkeys(paper.SOURCES[k] for k in group["source"]))})
        notes += [f"{model}: {n}" for n in dict.fromkeys(group["note"]) if n]
    return rows, notes


def coverage(data: Path) -> Study:
    """Which of the papers' numbers have a counterpart in this run, and why the others have none: the table,
    and the sentence the landing page says it with (`coverage`)."""
    in9 = layout.data_kind(data) == "in9"
    weights = "resnet50" in available_pretrained()
    rows = [
        ("Table 2, models trained on IN-9L", True, "our nets trained on Original stand beside them"),
        ("Table 2, ImageNet-pretrained models", in9 and bool(available_pretrained()),
         "needs IN-9's photographs and ImageNet weights (the real-photo chapter measures three other ImageNet models "
         "on real photos with masks made by RPS)"),
        ("Fig. 2 and Table 5, background-only models", True, ""),
        ("Fig. 5 and Table 5, models trained on Original and on Mixed-Rand", True, ""),
        ("the challenge accuracy of the IN-9L ResNet-50", True, ""),
        ("the challenge accuracy of the ImageNet ResNet-50", in9 and weights,
         "needs IN-9's photographs and the ImageNet ResNet-50's weights"),
        ("Fig. 7, the share of images that need their background", True,
         "the total only: the paper draws the categories as bars"),
        ("Fig. 8, the slopes", False, "the paper draws the lines and gives no values"),
        ("the RPS paper's MaxBoxAccV2 and PxAP tables", False,
         "no text of the paper with its numbers was reachable, and its repository holds none"),
    ]
    table = pd.DataFrame(rows, columns=["the papers' numbers", "ours beside them here", "note"])
    missing = [f"{what} ({why})" for what, here, why in rows if not here]
    sentence = (f"It sets ours beside {sum(h for _, h, _ in rows)} of the {len(rows)} groups of numbers the papers "
                "report" + (f"; {len(missing)} have no counterpart here: " + "; ".join(missing) if missing else "")
                + ".")
    return Study(table, {"coverage": sentence})


def official_archives() -> pd.DataFrame:
    """The official IN-9 archives `make reproduce DATA=in9` fetches (`data/in9.json`): what each holds in the paper's
    words, its file and the sha256 it is checked against."""
    from ..data.download import default_manifest

    archives = pd.DataFrame(json.loads(default_manifest("in9").read_text())["archives"])
    parts = [name.partition("-") for name in archives["name"]]
    archives["holds"] = [f"{'training' if split == 'train' else 'test'} set"
                         + (f", {title(variant)}" if variant else "s, every variant") for split, _, variant in parts]
    archives["sha256"] = archives["sha256"].fillna("(recorded on first download, enforced after)")
    return archives[["holds", "filename", "sha256"]]


def what_ran(data: Path, profile: str | None = None) -> str:
    """In plain words: what this build of the book ran (profile, data), whether the full profile and the official
    IN-9 have been run for it, and where the GPU measurements come from."""
    p = get_profile(profile)
    kind = layout.data_kind(data)
    data_words = {"synthetic": "the synthetic IN-9", "in9": "the official IN-9"}.get(
        kind, f"the data in the folder {Path(data).name}")
    ran = f"This build of the book ran the {p.name} profile on {data_words}."
    if p.name != "full" or kind != "in9":
        missing = [what for what, done in (("the full profile", p.name == "full"), ("the official IN-9", kind == "in9"))
                   if not done]
        ran += (f" {' and '.join(missing).capitalize()} {'have' if len(missing) > 1 else 'has'} not been run for "
                "these pages: every number of the paper's scale on them is the paper's, not ours.")
    measured = gpu_measurements()
    if measured:
        prov = measured.get("provenance", {})
        ran += (f" The GPU measurements below were taken by `bench/gpu.py` on one {prov.get('device', 'GPU')} "
                f"({prov.get('created', 'date unknown')[:10]}, commit {str(prov.get('commit', ''))[:7]}): stage "
                "rates, not a run of the book.")
    else:
        ran += " No GPU measurement is in this checkout (`bench/results/gpu.json`)."
    return ran


#: What a profile setting left empty means, in words (`Profile`'s comments); other empty settings show a dash.
_EMPTY_MEANS = {"real_per_class": "every photo", "real_models": "every model installed",
                "real_challenge_budget": "the device's budget", "rps_benchmark_per_class": "every photo",
                "challenge_pairs_per_class": "every foreground"}


def profile_settings(profile) -> pd.DataFrame:
    """A profile's settings by name (a page shows them in words, `chapter.WORDS`), an empty setting in words where it
    means something (`_EMPTY_MEANS`), else a dash."""
    def shown(key, value):
        if value is None or value == () or value == []:
            return _EMPTY_MEANS.get(key, "\u2014")
        return value

    return pd.DataFrame({"value": pd.Series({k: shown(k, v) for k, v in profile.as_dict().items()}, dtype=object)})


def profile_sizes() -> pd.DataFrame:
    """Per profile: images (train + test), image side, default model and epochs."""
    return pd.DataFrame({name: {"images (train + test)": NUM_CLASSES * (p.train_per_class + p.test_per_class),
                                "side (px)": p.image_size, "default model": p.arch, "epochs": p.epochs}
                         for name, p in PROFILES.items()})


__all__ = ["Study", "backgrounds_suffice", "challenge", "claims", "finegrained", "habitats", "localization",
           "localization_examples", MIXED_RAND, "profile_sizes", "progress", "saliency", "saliency_examples",
           "two_models"]


def gpu_measurements(path: Path = layout.GPU_RESULTS) -> dict | None:
    """The committed GPU benchmark results, or None where the file is not there (an installed package)."""
    return json.loads(Path(path).read_text()) if Path(path).exists() else None


def gpu_rates(measured: dict) -> pd.DataFrame:
    """Images (or maps) per second of each measured stage, on the GPU that measured it."""
    train = measured["train"]
    rows = {
        "training: bgrepro (set on the GPU)": train["images_per_second"],
        "training: bgrepro (streamed from the host)": train.get("streaming_images_per_second"),
        "training: ImageFolder + DataLoader": train["baseline_images_per_second"],
        "training: same step on random GPU tensors": train["gpu_only_images_per_second"],
        "Grad-CAM maps": measured.get("saliency", {}).get("maps_per_second"),
        "RPS estimation": measured.get("localize", {}).get("estimate_images_per_second"),
        "RPS maps": measured.get("localize", {}).get("map_images_per_second"),
        "challenge composites": measured.get("challenge", {}).get("composites_per_second"),
    }
    return pd.DataFrame({"per second": {k: v for k, v in rows.items() if v is not None}})


def full_budget(measured: dict, profile: str = "full") -> pd.DataFrame:
    """Per chapter: the models it trains at `profile` (`chapter_models`: every seed, the generator study's too) and
    the minutes the measured rate gives for those of the measured architecture (their epochs over their training
    images, decoding included, the measured decoding time scaled by the images); other architectures' rates are not
    measured and are listed, not guessed."""
    p = get_profile(profile)
    train = measured["train"]

    def minutes(m) -> float:
        images = NUM_CLASSES * m.train_per_class
        decoding = train["decode_seconds"] * images / train["images"]
        return (m.epochs * images / train["images_per_second"] + decoding) / 60

    rows, name = {}, registry.model_name(train["arch"])
    for chapter, models in chapter_models(p).items():
        timed = [m for m in models if m.arch == train["arch"]]
        rows[chapter] = {"models trained": len(models), f"{name} models": len(timed),
                         f"{name} training (min)": round(sum(minutes(m) for m in timed), 1),
                         "not measured": ", ".join(sorted({registry.model_name(m.arch) for m in models
                                                           if m.arch != train["arch"]})) or "-"}
    return pd.DataFrame(rows).T
