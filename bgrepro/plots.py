"""Figure helpers shared by the book, the report and the command line: each takes what it draws (arrays, tables,
summaries), never a folder to read."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt  # headless machines fall back to Agg; notebooks keep their inline backend
import numpy as np
import pandas as pd

from . import layout
from .variants import MIXED_RAND, MIXED_SAME, ORIGINAL


def _finish(fig, out: Path | None, dpi: int = 110):
    fig.tight_layout(pad=0.3)
    if out is not None:
        fig.savefig(out, dpi=dpi)
    return fig


def top_backgrounds(summary: dict, image_of, per_class: int = 5, out: Path | None = None):
    """Paper Fig. 3: per class, the Only-BG-T backgrounds that fool the largest share of the other
    classes' foregrounds (titled with that share). `summary` is an all-pairs challenge summary; `image_of(id)`
    gives a background's image (uint8 H x W x 3)."""
    if "background_rates" not in summary:
        raise ValueError("the figure needs per-background counts: run the challenge with all_pairs")
    labels, rates, ids = (np.array(summary["background_labels"]), np.array(summary["background_rates"]),
                          summary["background_ids"])
    names = [layout.short_name(c) for c in summary["classes"]]
    fig, axes = plt.subplots(len(names), per_class, figsize=(per_class * 1.25, len(names) * 1.35), squeeze=False)
    for c, name in enumerate(names):
        mine = np.flatnonzero(labels == c)
        best = mine[np.argsort(-rates[mine], kind="stable")][:per_class]
        for k, ax in enumerate(axes[c]):
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= len(best):
                ax.axis("off")
                continue
            j = best[k]
            ax.imshow(image_of(ids[j]), interpolation="nearest")
            ax.set_title(f"{100 * rates[j]:.1f}%", fontsize=8, pad=2)
        axes[c, 0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    return _finish(fig, out)


def fooling_histogram(summary: dict, bins: int = 30, out: Path | None = None):
    """Paper Fig. 4: how many backgrounds fool what share of the other classes' foregrounds."""
    if "background_rates" not in summary:
        raise ValueError("the figure needs per-background counts: run the challenge with all_pairs")
    rates = 100 * np.array(summary["background_rates"])
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(rates, bins=bins, color="tab:red", alpha=0.8)
    ax.set_xlabel("foregrounds of other classes fooled by the background (%)")
    ax.set_ylabel("backgrounds")
    ax.set_title(f"{len(rates)} Only-BG-T backgrounds; median {np.median(rates):.1f}%", fontsize=9)
    return _finish(fig, out)


def map_grid(images, masks, maps: dict, captions: dict | None = None, boxes: dict | None = None,
             overlay: bool = True, mask_title: str = "mask", out: Path | None = None):
    """One row per image: the image (uint8 or float (N, 3, H, W)), its mask, then each named map
    ((N, H, W) in [0, 1]): over the image when `overlay`, alone on a fixed 0-1 scale otherwise.
    `captions[name][i]` is written under a map, `boxes[name][i]` (xmin, ymin, xmax, ymax or None)
    drawn on it."""
    n, names = len(images), list(maps)
    fig, axes = plt.subplots(n, 2 + len(names), figsize=(1.5 * (2 + len(names)), 1.5 * n), squeeze=False)
    for i in range(n):
        rgb = np.asarray(images[i]).transpose(1, 2, 0)
        rgb = rgb / 255 if rgb.dtype == np.uint8 else rgb
        axes[i, 0].imshow(rgb, interpolation="nearest")
        axes[i, 1].imshow(np.asarray(masks[i]), cmap="gray", interpolation="nearest")
        for k, name in enumerate(names):
            ax, heat = axes[i, 2 + k], np.asarray(maps[name][i], dtype=np.float64)
            if overlay:
                ax.imshow(rgb, interpolation="nearest")
                ax.imshow(heat / max(float(heat.max()), 1e-12), cmap="jet", alpha=0.5, interpolation="bilinear")
            else:
                ax.imshow(heat, cmap="jet", vmin=0, vmax=1)
            if captions is not None and name in captions:
                ax.set_xlabel(captions[name][i], fontsize=8)
            box = boxes[name][i] if boxes is not None and name in boxes else None
            if box is not None:
                ax.add_patch(plt.Rectangle((box[0] - 0.5, box[1] - 0.5), box[2] - box[0] + 1, box[3] - box[1] + 1,
                                           fill=False, color="white", lw=1))
    for ax, title in zip(axes[0], ["image", mask_title, *names]):
        ax.set_title(title, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    if names:  # what the colours of the maps mean
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        label = "map, scaled to its image's maximum" if overlay else "map value"
        bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap="jet"), ax=list(axes[:, 2:].flat), shrink=0.8,
                           pad=0.02, fraction=0.03)
        bar.set_label(label, fontsize=8)
        bar.ax.tick_params(labelsize=6)
    if out is not None:
        fig.savefig(out, dpi=110, bbox_inches="tight")
    return fig


def backgrounds_suffice_figure(table, threshold: float = 40.0, out: Path | None = None):
    """Paper Fig. 2: background-only models on their own test set and on Original (the mean over seeds, with the 95%
    interval on Original where the table has it), with chance (`table["chance"]`) and the paper's threshold."""
    bars = table[["own test set", ORIGINAL]]
    low, high = "Original, 95% interval low", "Original, 95% interval high"
    errors = None
    if low in table and table[low].notna().all():  # the 95% interval over seeds on Original
        errors = pd.DataFrame({"own test set": 0.0, ORIGINAL: (table[high] - table[low]) / 2}, index=table.index)
    ax = bars.plot.bar(figsize=(6, 3.2), rot=0, color=["#9ecae1", "#3182bd"], yerr=errors, capsize=3)
    ax.axhline(float(table["chance"].iloc[0]), color="k", ls=":", lw=1, label="chance")
    ax.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"paper: > {threshold:.0f}% on Original")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8)
    return _finish(ax.figure, out)


def ours_beside_paper(ours, theirs, rows=(ORIGINAL, MIXED_SAME, MIXED_RAND), out: Path | None = None):
    """Like with like: our models trained on Original and on Mixed-Rand (`ours`: columns Original and Mixed-Rand),
    and the paper's two models trained on the same images with and without their backgrounds (`theirs`: the
    same two columns), on the given test sets, in two panels sharing the accuracy axis."""
    from .variants import title

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    names = {ORIGINAL: "trained on Original", MIXED_RAND: "trained on Mixed-Rand"}
    for ax, table, name in zip(axes, (ours, theirs), ("ours", "the paper's ResNet-50s (arXiv Table 5)")):
        shown = table.loc[list(rows), [ORIGINAL, MIXED_RAND]].rename(columns=names, index=title)
        shown.plot.bar(ax=ax, rot=0)
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8, loc="lower left")
        ax.tick_params(labelsize=9)
        ax.set_xlabel("test set", fontsize=9)
    axes[0].set_ylabel("accuracy (%)")
    return _finish(fig, out)


def per_class_bars(table, xlabel: str, out: Path | None = None):
    """Horizontal bars: one group per class (rows), one bar per model (columns)."""
    ax = table.plot.barh(figsize=(7, max(2.5, 0.38 * len(table))))
    ax.set_xlabel(xlabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _finish(ax.figure, out)


def accuracy_intervals(frame, resamples: int = 1000, seed: int = 0, out: Path | None = None):
    """Accuracy per test set and model with seaborn's 95% bootstrap intervals over test images (`frame`: one
    row per model, test set and image, with `accuracy (%)` its correctness, or its share of seeds right)."""
    import seaborn as sns

    sets = frame["test set"].nunique()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 * sets + 2), 3.4))
    sns.barplot(frame, x="test set", y="accuracy (%)", hue="model", errorbar=("ci", 95), n_boot=max(resamples, 1),
                seed=seed, ax=ax, capsize=0.15, err_kws={"linewidth": 1})
    ax.set_ylim(0, 100)
    ax.set_xlabel("")
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _finish(fig, out)


def gap_intervals(per_image, per_seed=None, resamples: int = 1000, seed: int = 0, out: Path | None = None):
    """The BG-Gap of each model: a bar with seaborn's paired 95% bootstrap interval (`per_image`: one row per
    model and image, `BG-Gap (points)` = its Mixed-Same minus its Mixed-Rand correctness, so that the mean is
    the BG-Gap and resampling images keeps the pairs), and one dot per seed (`per_seed`)."""
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 * per_image["model"].nunique() + 1.5), 3.2))
    sns.barplot(per_image, x="model", y="BG-Gap (points)", errorbar=("ci", 95), n_boot=max(resamples, 1), seed=seed,
                ax=ax, color="#9ecae1", capsize=0.2, err_kws={"linewidth": 1})
    if per_seed is not None and len(per_seed) > per_seed["model"].nunique():
        sns.stripplot(per_seed, x="model", y="BG-Gap (points)", ax=ax, color="#08519c", size=5, jitter=0.08)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("")
    ax.tick_params(axis="x", labelsize=8)
    return _finish(fig, out)


def seed_spread_figure(per_seed, metrics=("bg_gap", "challenge accuracy"), out: Path | None = None):
    """One panel per metric: each seed's value (dots) and the mean with one standard deviation (seaborn),
    per model (`per_seed`: one row per model and seed, as `experiments.seed_spread` gives)."""
    import seaborn as sns

    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        sns.pointplot(per_seed, x="model", y=metric, errorbar="sd", ax=ax, color="black", linestyle="none",
                      marker="_", markersize=18, capsize=0.15, err_kws={"linewidth": 1})
        sns.stripplot(per_seed, x="model", y=metric, hue="model", ax=ax, size=6, jitter=0.08, legend=False)
        ax.set_xlabel("")
        ax.set_ylabel("BG-Gap (points)" if metric == "bg_gap" else f"{metric} (%)")
        ax.tick_params(axis="x", labelsize=8)
    return _finish(fig, out)


def challenge_against_clean(per_seed, paper_points: dict[str, tuple[float, float]] | None = None,
                            out: Path | None = None):
    """Claim 3 against its control: each seed model's challenge accuracy (%) against its clean accuracy on Original,
    one marker per kind of model (`per_seed`: columns model, Original, challenge accuracy, independent-error level);
    the level independent errors would give as a small grey marker under each; the paper's models (`paper_points`:
    name -> (clean, challenge)) as stars, and 50% (half the foregrounds fooled) as a line."""
    fig, ax = plt.subplots(figsize=(6.2, 3.4))
    for (model, rows), marker in zip(per_seed.groupby("model", sort=False), ("o", "^", "s", "D")):
        ax.scatter(rows[ORIGINAL], rows["challenge accuracy"], marker=marker, s=40, label=f"ours, {model}")
        if "independent-error level" in rows:
            ax.scatter(rows[ORIGINAL], rows["independent-error level"], marker=marker, s=14, color="0.6")
    for name, (clean, chal) in (paper_points or {}).items():
        ax.scatter([clean], [chal], marker="*", s=120, color="tab:red")
        ax.annotate(name, (clean, chal), textcoords="offset points", xytext=(-4, 6), fontsize=7, ha="right")
    ax.axhline(50, color="k", ls=":", lw=1, label="half the foregrounds fooled")
    ax.scatter([], [], marker="o", s=14, color="0.6", label="independent errors would leave")
    ax.set_xlabel("clean accuracy on Original (%)")
    ax.set_ylabel("challenge accuracy (%)")
    ax.set_ylim(-3, 103)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _finish(fig, out)


def sensitivity_figure(table, lines: dict[str, tuple[float, str]], titles: dict[str, str], default: float,
                       out: Path | None = None):
    """One panel per claim: its number (mean over seeds, with the 95% interval) against the habitat strength R, the
    paper's number as a dashed line, the chapters' R as a dotted one; claim 3's panel also shows its control
    (`table`: rows of strength, claim, measure, mean, 95% interval low/high, as `sensitivity.study` gives)."""
    claims = list(dict.fromkeys(table["claim"]))
    fig, axes = plt.subplots(1, len(claims), figsize=(2.6 * len(claims), 2.9), squeeze=False)
    for ax, claim in zip(axes[0], claims):
        for k, (_, rows) in enumerate(table[table["claim"] == claim].groupby("measure", sort=False)):
            low, high = rows["95% interval, low"], rows["95% interval, high"]
            errors = None if low.isna().any() else [rows["mean"] - low, high - rows["mean"]]
            ax.errorbar(rows["strength"], rows["mean"], yerr=errors, marker="os"[k % 2], capsize=3, lw=1.2,
                        label="ours" if k == 0 else "control: Mixed-Rand-trained")
        value, label = lines[claim]
        ax.axhline(value, color="tab:red", ls="--", lw=1, label=label)
        ax.axvline(default, color="0.5", ls=":", lw=1)
        ax.set_title(f"claim {claim}", fontsize=9)
        ax.set_ylabel(titles[claim], fontsize=8)
        ax.set_xlabel("habitat strength R", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="best")
    return _finish(fig, out)


def group_heatmaps(panels: dict, small: int = 10, out: Path | None = None):
    """Accuracy (%) per (foreground class, background class) group, one heat map per panel, one above the other
    (side by side they were shrunk to half a page's width, their numbers to 4 pt) (`panels`: title -> (accuracy
    table, count table), as `analyses.groups.frames` gives); each cell shows its accuracy, a group of fewer than
    `small` images is marked with * and hatched, an empty one left blank."""
    import seaborn as sns

    n = len(panels)
    side = max(len(acc) for acc, _ in panels.values())
    fig, axes = plt.subplots(n, 1, figsize=(min(0.55 * side + 2.2, 7.5), min(0.5 * side + 1.6, 6.5) * n),
                             squeeze=False)
    axes = axes.T
    for ax, (name, (accuracy, count)) in zip(axes[0], panels.items()):
        text = accuracy.map(lambda v: "" if np.isnan(v) else f"{v:.0f}")
        text = text.where(~((count > 0) & (count < small)), text + "*")
        sns.heatmap(accuracy, ax=ax, vmin=0, vmax=100, cmap="RdYlGn", annot=text, fmt="", cbar=ax is axes[0, -1],
                    annot_kws={"fontsize": 8}, linewidths=0.5, linecolor="white",
                    cbar_kws={"label": "accuracy (%)"} if ax is axes[0, -1] else None)
        for (i, j), c in np.ndenumerate(count.to_numpy()):
            if 0 < c < small:
                ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, hatch="///", edgecolor="0.5", lw=0))
        ax.set_title(name, fontsize=10)
        ax.tick_params(labelsize=8)
        ax.tick_params(axis="y", labelrotation=0)
        ax.set_xlabel("background class", fontsize=9)
        ax.set_ylabel("foreground class", fontsize=9)
    return _finish(fig, out)
