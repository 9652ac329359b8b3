"""A fine-grained look (paper Sec. 5): is the background needed for this image?

For every test image, the model's correctness on four versions of it: the foreground alone
(Only-FG), the background alone (Only-BG-T), both (Original), and the foreground on a random
other class's background (Mixed-Rand). All four variants of one image share its id.

The categories (mutually exclusive, in this order):

- **wrong on Original**: the model misclassifies the untouched image.
- **foreground suffices**: right on Original, on Only-FG and on Mixed-Rand: the object alone is
  enough, and a misleading background does not override it.
- **background overrides**: right on Original and on Only-FG, wrong on Mixed-Rand: the model knows
  the object, but another class's background wins.
- **needs a background**: right on Original and on Mixed-Rand but wrong on Only-FG: any natural
  background helps (the black of Only-FG does not), its own is not needed.
- **background needed**: right on Original, wrong on both Only-FG and Mixed-Rand: without its own
  background the image is lost.

The paper's two-way split, right on the foreground alone and/or the background alone ("both",
"foreground only", "background only", "neither"), is reported beside them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from .. import layout
from ..inference import Inference
from ..variants import MIXED_RAND, ONLY_BG_T, ONLY_FG, ORIGINAL
from .evaluate import correctness as per_variant

VARIANTS_USED = (ORIGINAL, ONLY_FG, ONLY_BG_T, MIXED_RAND)
CATEGORIES = ("foreground suffices", "needs a background", "background overrides", "background needed",
              "wrong on Original")
SPLIT_2X2 = ("both", "foreground only", "background only", "neither")


def correctness(model, root: Path, split: str = "val", device=None) -> pd.DataFrame:
    """One row per test image (indexed by id): its class and whether the model is right on each variant."""
    return correctness_table(per_variant(model, root, list(VARIANTS_USED), split, Inference.at(device)), root)


def correctness_table(scored, root: Path | str = "the data") -> pd.DataFrame:
    """The table of `correctness` from per-variant correctness (`evaluate.Correctness`: booleans, ids, labels)."""
    frames = {v: pd.Series(np.asarray(scored.correct[v]), index=scored.ids[v]) for v in VARIANTS_USED}
    table = pd.DataFrame(frames)
    missing = table.index[table.isna().any(axis=1)]
    if len(missing):
        raise ValueError(f"{root}: image {missing[0]!r} is not in every one of {', '.join(VARIANTS_USED)} "
                         f"({len(missing)} such ids); build all four variants from the same images")
    table = table.astype(bool)
    labels = pd.Series(np.asarray(scored.labels[ORIGINAL]), index=scored.ids[ORIGINAL])
    table.insert(0, "label", labels.reindex(table.index).astype(int))
    table.attrs["classes"] = list(scored.classes)
    return table


def shares(scored, root: Path | str = "the data") -> dict[str, float] | None:
    """Share (%) of the test images in each category, from per-variant correctness (`evaluate.Correctness`);
    None when a variant the categories need is missing."""
    if not set(VARIANTS_USED) <= scored.correct.keys():
        return None
    table = categorize(correctness_table(scored, root))
    return {k: float(v) for k, v in summary(table)["share %"].items()}


def categorize(table: pd.DataFrame) -> pd.DataFrame:
    """Add the `category` (see the module docstring) and `split_2x2` columns."""
    o, f, b, r = (table[v].to_numpy() for v in VARIANTS_USED)
    category = np.select(
        [~o, f & r, ~f & r, f & ~r, ~f & ~r],
        ["wrong on Original", "foreground suffices", "needs a background", "background overrides",
         "background needed"],
        default="",
    )
    split = np.select([f & b, f & ~b, ~f & b], list(SPLIT_2X2[:3]), default="neither")
    return table.assign(category=pd.Categorical(category, CATEGORIES), split_2x2=pd.Categorical(split, SPLIT_2X2))


def summary(table: pd.DataFrame, by_class: bool = False) -> pd.DataFrame:
    """Share (%) of images in each category, overall or per class (rows) ."""
    table = table if "category" in table else categorize(table)
    if not by_class:
        return (100 * table["category"].value_counts(normalize=True).reindex(list(CATEGORIES))).to_frame("share %")
    shares = pd.crosstab(table["label"], table["category"], normalize="index", dropna=False) * 100
    names = table.attrs.get("classes") or [str(i) for i in range(int(table["label"].max()) + 1)]
    shares.index = [layout.short_name(names[i]) for i in shares.index]
    return shares.reindex(columns=list(CATEGORIES), fill_value=0.0)


def stacked_bars(summaries: dict[str, pd.DataFrame], out: Path | None = None):
    """A stacked bar per model (or per class): the share of each category."""
    import matplotlib.pyplot as plt

    colours = ["#2b8cbe", "#a6bddb", "#fdae6b", "#e6550d", "#bdbdbd"]
    names = list(summaries)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(names), 3.6))
    bottom = np.zeros(len(names))
    labels = [textwrap.fill(n, 12) for n in names]  # long model names wrap instead of overlapping
    for category, colour in zip(CATEGORIES, colours):
        values = np.array([float(summaries[n].loc[category].iloc[0]) for n in names])
        ax.bar(labels, values, bottom=bottom, color=colour, label=category, width=0.6)
        for x, (v, b0) in enumerate(zip(values, bottom)):
            if v >= 6:
                ax.text(x, b0 + v / 2, f"{v:.0f}%", ha="center", va="center", fontsize=8)
        bottom += values
    ax.set_ylabel("test images (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig
