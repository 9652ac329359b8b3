"""Figures of the data as it is on disk: the synthetic IN-9 and its habitats, and one image in the eight variants
(the paper's Fig. 1), read from a built folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .. import layout
from .. import variants as V
from ..io import read_image, read_mask
from ..variants import MIXED_RAND, MIXED_SAME, ORIGINAL
from .build import read_manifest
from .synth import HABITATS, habitat_distribution, read_annotations
from .synth_render import render_background


def variant_image(root: Path, variant: str, split: str, image_id: str) -> np.ndarray:
    """The image `<class folder>/<stem>` of a variant's split (uint8 H x W x 3)."""
    return read_image(layout.image_file(root, variant, split, image_id))


def _finish(fig, out: Path | None, dpi: int = 110):
    fig.tight_layout(pad=0.3)
    if out is not None:
        fig.savefig(out, dpi=dpi)
    return fig


def variants_figure(root: Path, image_id: str | None = None, split: str = "val",
                    predict: Callable | None = None, out: Path | None = None):
    """The paper's Figure 1 layout: one image in all eight variants, labelled (from a built folder);
    with `predict` (uint8 images (N, 3, H, W) -> class indices: a trained model's), each panel also shows the
    prediction (green when it is the foreground's class, red otherwise)."""
    import torch

    rows = [r for r in read_manifest(root) if r["split"] == split and r["variant"] in V.TITLES]
    if not rows:
        raise ValueError(f"{root}: the manifest lists no variant images in split {split!r}")
    if image_id is None:
        first = _clearest_example(root, rows)
    else:
        first = next((r for r in rows if (r["fg_id"] or r["bg_id"]) == image_id), None)
    if first is None:
        raise ValueError(f"{root}: no image {image_id!r} in split {split!r}")
    image_id, label = first["fg_id"] or first["bg_id"], first["label"]  # file names may repeat across classes
    mine = {r["variant"]: r for r in rows if (r["fg_id"] or r["bg_id"]) == image_id and r["label"] == label}
    images = {v: read_image(Path(root) / r["path"]) for v, r in mine.items()}
    predicted = {}
    if predict is not None and images:
        classes = layout.class_folders(root)
        batch = torch.from_numpy(np.stack(list(images.values()))).permute(0, 3, 1, 2).contiguous()
        predicted = dict(zip(images, (classes[int(c)] for c in predict(batch))))
        truth = classes[int(next(iter(mine.values()))["label"])]
    columns = 4  # two rows of four: readable in the page's column
    rows_n = -(-len(V.NAMES) // columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(columns * 1.9, rows_n * (2.25 if predicted else 2.05)),
                             squeeze=False)
    for ax, (variant, title) in zip(axes.flat, ((v, V.title(v)) for v in V.NAMES)):
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


def _clearest_example(root: Path, rows: list[dict], candidates: int = 64) -> dict:
    """The manifest row of the image whose Mixed-Same and Mixed-Rand composites differ most (their foreground is
    the same pixels, so the difference is the backgrounds'), among the first `candidates` whose Mixed-Rand
    background comes from another class: the example in which the figure's point can be seen."""
    pairs: dict[tuple, dict] = {}
    for r in rows:
        if r["variant"] in (MIXED_SAME, MIXED_RAND):
            pairs.setdefault((r["fg_id"], r["label"]), {})[r["variant"]] = r
    eligible = [key for key, both in pairs.items()
                if len(both) == 2 and both[MIXED_RAND]["bg_class"] != both[MIXED_RAND]["label"]][:candidates]
    best, score = None, -1.0
    for key in eligible:
        same, rand = (read_image(Path(root) / pairs[key][v]["path"]).astype(np.float32)
                      for v in (MIXED_SAME, MIXED_RAND))
        difference = float(np.abs(same - rand).mean()) if same.shape == rand.shape else 0.0
        if difference > score:
            best, score = key, difference
    return next((r for r in rows if best and (r["fg_id"], r["label"]) == best), rows[0])


def habitat_matrices(root: Path, correlation: float, split: str = "train", out: Path | None = None):
    """The designed class x habitat distribution at `correlation` beside the one realised in a
    synthetic dataset's split (from its annotations.csv)."""
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
        ax.set_xticks(range(len(HABITATS)), [h.replace("_", " ") for h in HABITATS], rotation=60, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_title(title, fontsize=9)
    return _finish(fig, out)


def synth_preview(root: Path, split: str = "val", per_class: int = 3, out: Path | None = None):
    """Grid of a synthetic dataset: one row per class; image (titled by habitat) and its mask."""
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
            image = read_image(layout.image_file(root, ORIGINAL, split, f"{folder}/{r['id']}"))
            mask = read_mask(layout.mask_path(root, split, folder, r["id"]), image.shape[:2])
            ax_img.imshow(image, interpolation="nearest")
            x0, y0, x1, y1 = r["xmin"], r["ymin"], r["xmax"], r["ymax"]
            ax_img.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1,
                                           fill=False, color="yellow", lw=0.8))
            ax_img.set_title(HABITATS[r["habitat"]].replace("_", " "), fontsize=8, pad=2)
            ax_mask.imshow(mask, cmap="gray", interpolation="nearest")
            ax_mask.set_title("mask", fontsize=8, pad=2)
        axes[row, 0].set_ylabel(layout.short_name(folder), fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig


def habitat_gallery(size: int = 96, per_habitat: int = 4, seed: int = 0, out: Path | None = None):
    """Grid of freshly drawn backgrounds: one row per habitat."""
    fig, axes = plt.subplots(len(HABITATS), per_habitat, figsize=(per_habitat * 1.2, len(HABITATS) * 1.25),
                             squeeze=False)
    for h, name in enumerate(HABITATS):
        for k in range(per_habitat):
            rng = np.random.default_rng([seed, h, k])
            axes[h, k].imshow(render_background(h, size, rng))
            axes[h, k].set_xticks([])
            axes[h, k].set_yticks([])
        axes[h, 0].set_ylabel(name.replace("_", " "), fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig


__all__ = ["variant_image", "variants_figure", "habitat_matrices", "synth_preview", "habitat_gallery"]
