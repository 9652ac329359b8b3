"""Figure helpers shared by the notebooks and the CLI."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt  # headless machines fall back to Agg; notebooks keep their inline backend
import numpy as np

from . import layout
from .classes import HABITATS
from .io import read_image, read_mask


def synth_preview(root: Path, split: str = "val", per_class: int = 3, out: Path | None = None):
    """Grid of a synthetic dataset: one row per class; image (titled by habitat) and its mask."""
    from .synth import read_annotations

    rows = [r for r in read_annotations(root) if r["split"] == split]
    if not rows:
        raise ValueError(f"{root}: no images in split {split!r}")
    folders = dict(sorted({r["class_index"]: r["class_folder"] for r in rows}.items()))
    fig, axes = plt.subplots(
        len(folders), 2 * per_class, figsize=(2 * per_class * 1.25, len(folders) * 1.35), squeeze=False,
    )
    for row, (c, folder) in enumerate(folders.items()):
        mine = [r for r in rows if r["class_index"] == c][:per_class]
        for k in range(per_class):
            ax_img, ax_mask = axes[row, 2 * k], axes[row, 2 * k + 1]
            for ax in (ax_img, ax_mask):
                ax.set_xticks([])
                ax.set_yticks([])
            if k >= len(mine):
                ax_img.axis("off")
                ax_mask.axis("off")
                continue
            r = mine[k]
            image = read_image(layout.image_file(root, "original", split, f"{folder}/{r['id']}"))
            mask = read_mask(layout.mask_path(root, split, folder, r["id"]), image.shape[:2])
            ax_img.imshow(image, interpolation="nearest")
            x0, y0, x1, y1 = r["xmin"], r["ymin"], r["xmax"], r["ymax"]
            ax_img.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1,
                                           fill=False, color="yellow", lw=0.8))
            ax_img.set_title(HABITATS[r["habitat"]], fontsize=7, pad=2)
            ax_mask.imshow(mask, cmap="gray", interpolation="nearest")
            ax_mask.set_title("mask", fontsize=7, pad=2)
        axes[row, 0].set_ylabel(layout.short_name(folder), fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig


def habitat_gallery(size: int = 96, per_habitat: int = 4, seed: int = 0, out: Path | None = None):
    """Grid of freshly drawn backgrounds: one row per habitat."""
    from .synth_render import render_background

    fig, axes = plt.subplots(len(HABITATS), per_habitat, figsize=(per_habitat * 1.2, len(HABITATS) * 1.25),
                             squeeze=False)
    for h, name in enumerate(HABITATS):
        for k in range(per_habitat):
            rng = np.random.default_rng([seed, h, k])
            axes[h, k].imshow(render_background(h, size, rng))
            axes[h, k].set_xticks([])
            axes[h, k].set_yticks([])
        axes[h, 0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig


VARIANT_TITLES = {
    "original": "Original", "only_bg_b": "Only-BG-B", "only_bg_t": "Only-BG-T", "no_fg": "No-FG",
    "only_fg": "Only-FG", "mixed_same": "Mixed-Same", "mixed_rand": "Mixed-Rand", "mixed_next": "Mixed-Next",
}


def variants_figure(root: Path, image_id: str | None = None, split: str = "val", model=None,
                    out: Path | None = None):
    """The paper's Figure 1 layout: one image in all eight variants, labelled (from a built folder);
    with a trained `model`, each panel also shows the model's prediction (green when it is the
    foreground's class, red otherwise)."""
    import torch

    from .build import read_manifest
    from .evaluate import predict

    rows = [r for r in read_manifest(root) if r["split"] == split and r["variant"] in VARIANT_TITLES]
    if not rows:
        raise ValueError(f"{root}: the manifest lists no variant images in split {split!r}")
    if image_id is None:  # the first image whose Mixed-Same and Mixed-Rand backgrounds differ (they may coincide)
        backgrounds: dict[tuple, dict] = {}
        for r in rows:
            if r["variant"] in ("mixed_same", "mixed_rand"):
                backgrounds.setdefault((r["fg_id"], r["label"]), {})[r["variant"]] = r["bg_id"]
        differ = next((key for key, bg in backgrounds.items() if len(set(bg.values())) > 1), None)
        first = next((r for r in rows if differ and (r["fg_id"], r["label"]) == differ), rows[0])
    else:
        first = next((r for r in rows if (r["fg_id"] or r["bg_id"]) == image_id), None)
    if first is None:
        raise ValueError(f"{root}: no image {image_id!r} in split {split!r}")
    image_id, label = first["fg_id"] or first["bg_id"], first["label"]  # file names may repeat across classes
    mine = {r["variant"]: r for r in rows if (r["fg_id"] or r["bg_id"]) == image_id and r["label"] == label}
    images = {v: read_image(Path(root) / r["path"]) for v, r in mine.items()}
    predicted = {}
    if model is not None and images:
        classes = layout.class_folders(root)
        batch = torch.from_numpy(np.stack(list(images.values()))).permute(0, 3, 1, 2).contiguous()
        predicted = dict(zip(images, (classes[int(c)] for c in predict(model, batch, device="cpu"))))
        truth = classes[int(next(iter(mine.values()))["label"])]
    columns = 4  # two rows of four: readable in the page's column
    rows_n = -(-len(VARIANT_TITLES) // columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(columns * 1.9, rows_n * (2.25 if predicted else 2.05)),
                             squeeze=False)
    for ax, (variant, title) in zip(axes.flat, VARIANT_TITLES.items()):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
        if variant in images:
            ax.imshow(images[variant], interpolation="nearest")
        else:
            ax.text(0.5, 0.5, "not built", ha="center", va="center", fontsize=8, transform=ax.transAxes)
        if variant in predicted:
            ax.set_xlabel(layout.short_name(predicted[variant]), fontsize=8,
                          color="tab:green" if predicted[variant] == truth else "tab:red")
    fig.tight_layout(pad=0.3)
    if out is not None:
        fig.savefig(out, dpi=120)
    return fig


def _finish(fig, out: Path | None, dpi: int = 110):
    fig.tight_layout(pad=0.3)
    if out is not None:
        fig.savefig(out, dpi=dpi)
    return fig


def _variant_image(root: Path, variant: str, split: str, image_id: str) -> np.ndarray:
    return read_image(layout.image_file(root, variant, split, image_id))


def top_backgrounds(summary: dict, root: Path, split: str = "val", per_class: int = 5, out: Path | None = None):
    """Paper Fig. 3: per class, the Only-BG-T backgrounds that fool the largest share of the other
    classes' foregrounds (titled with that share). `summary` is an all-pairs challenge summary."""
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
            ax.imshow(_variant_image(root, "only_bg_t", split, ids[j]), interpolation="nearest")
            ax.set_title(f"{100 * rates[j]:.1f}%", fontsize=7, pad=2)
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
                ax.set_xlabel(captions[name][i], fontsize=7)
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
        bar.set_label(label, fontsize=7)
        bar.ax.tick_params(labelsize=6)
    if out is not None:
        fig.savefig(out, dpi=110, bbox_inches="tight")
    return fig


def habitat_matrices(root: Path, correlation: float, split: str = "train", out: Path | None = None):
    """The designed class x habitat distribution at `correlation` beside the one realised in a
    synthetic dataset's split (from its annotations.csv)."""
    from .synth import habitat_distribution, read_annotations

    designed = habitat_distribution(correlation)
    rows = [r for r in read_annotations(root) if r["split"] == split]
    names = [layout.short_name(f) for _, f in sorted({(r["class_index"], r["class_folder"]) for r in rows})]
    realised = np.zeros(designed.shape)
    for row in rows:
        realised[row["class_index"], row["habitat"]] += 1
    realised /= np.maximum(realised.sum(axis=1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, matrix, title in zip(axes, (designed, realised),
                                 (f"designed, R = {correlation}", f"realised ({split} split)")):
        ax.imshow(matrix, cmap="Greens", vmin=0, vmax=1)
        ax.set_xticks(range(len(HABITATS)), HABITATS, rotation=60, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(title, fontsize=9)
    return _finish(fig, out)


def backgrounds_suffice_figure(table, threshold: float = 40.0, out: Path | None = None):
    """Paper Fig. 2: background-only models on their own test set and on Original, with chance
    (`table["chance"]`) and the paper's threshold."""
    ax = table[["own test set", "original"]].plot.bar(figsize=(6, 3.2), rot=0, color=["#9ecae1", "#3182bd"])
    ax.axhline(float(table["chance"].iloc[0]), color="k", ls=":", lw=1, label="chance")
    ax.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"paper: > {threshold:.0f}% on Original")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=7)
    return _finish(ax.figure, out)


def ours_beside_paper(ours, official, rows=("original", "mixed_same", "mixed_rand"), out: Path | None = None):
    """Two bar panels sharing the accuracy axis: our Original- and Mixed-Rand-trained models, and the
    paper's official ResNet-50s, on the given test variants."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    rows = list(rows)
    ours.loc[rows, ["original", "mixed_rand"]].rename(
        columns={"original": "trained on Original", "mixed_rand": "trained on Mixed-Rand"}).plot.bar(ax=axes[0], rot=0)
    official.loc[rows, ["ResNet-50 (IN-9L)", "ResNet-50 (IN-9 Mixed-Rand)"]].plot.bar(ax=axes[1], rot=0)
    for ax, title in zip(axes, ("ours", "paper (official ResNet-50s)")):
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    axes[0].set_ylabel("accuracy (%)")
    return _finish(fig, out)


def claims_figure(claims, out: Path | None = None):
    """Every claim and its verdict at a glance: one row per claim, coloured by verdict."""
    order = ["reproduced", "partly reproduced", "not reproduced", "no counterpart at this scale"]
    colours = ["#1b7f3b", "#d4a72c", "#b42318", "#999999"]
    fig, ax = plt.subplots(figsize=(6.5, 0.38 * len(claims) + 0.9))
    y = list(range(len(claims)))[::-1]
    for row, ypos in zip(claims.itertuples(), y):
        k = order.index(row.verdict)
        ax.barh(ypos, 1, left=k, color=colours[k])
        ax.text(k + 0.5, ypos, row.verdict, ha="center", va="center", fontsize=7, color="white")
    ax.set_yticks(y, [f"claim {c}" for c in claims["claim"]])
    ax.set_xticks([])
    ax.set_xlim(0, len(order))
    ax.set_title("Verdict per claim (computed from the numbers)", fontsize=9)
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
