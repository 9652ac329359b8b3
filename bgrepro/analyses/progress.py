"""Benchmark progress (paper Sec. 4 of arXiv v1, Fig. 8): do better models use the foreground more?

A model zoo (the profile's architectures x training lengths, trained on Original; plus the
ImageNet-pretrained models whose weights are on disk) is evaluated on every variant. Each
variant's accuracy is plotted against accuracy on Original (the paper uses ImageNet accuracy; our
trained models have none) with a least-squares line per variant. The paper's finding: the
foreground-using variants (Mixed-Rand, Only-FG, Mixed-Same) rise faster than Only-BG-T, so the
BG-Gap shrinks as models improve.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..variants import MIXED_NEXT, MIXED_RAND, MIXED_SAME, NO_FG, ONLY_BG_B, ONLY_BG_T, ONLY_FG, ORIGINAL, title

PROGRESS_VARIANTS = (ONLY_BG_T, MIXED_SAME, MIXED_RAND, MIXED_NEXT, ONLY_FG, NO_FG, ONLY_BG_B)
#: The sets the paper says rise faster than Only-BG-T (Sec. 4: "models improve on classifying ONLY-BG-T at a
#: slower (absolute) rate than MIXED-RAND, MIXED-SAME and MIXED-NEXT"); each difference gets an interval.
FASTER_THAN_ONLY_BG_T = (MIXED_RAND, MIXED_SAME, MIXED_NEXT)


def linear_fits(table: pd.DataFrame, x: str = ORIGINAL) -> pd.DataFrame:
    """Per variant: slope and intercept of accuracy against `x`, and the correlation r."""
    if len(table) < 2:
        raise ValueError("a linear fit needs at least two models")
    fits = {}
    for variant in table.columns.drop(x):
        slope, intercept = np.polyfit(table[x], table[variant], 1)
        r = np.corrcoef(table[x], table[variant])[0, 1] if table[variant].std() > 0 else float("nan")
        fits[variant] = {"slope": slope, "intercept": intercept, "r": r}
    return pd.DataFrame(fits).T


def slope_intervals(table: pd.DataFrame, x: str = ORIGINAL, resamples: int = 2000, seed: int = 0,
                    level: float = 0.95) -> pd.DataFrame:
    """Per variant, a percentile bootstrap interval of its slope over models (models drawn with replacement,
    draws with a single distinct model skipped), and the same for each of `FASTER_THAN_ONLY_BG_T`'s slope minus
    Only-BG-T's (rows "mixed_rand - only_bg_t", ...)."""
    rng = np.random.default_rng(seed)
    xs = table[x].to_numpy(float)
    variants = list(table.columns.drop(x))
    compared = [v for v in FASTER_THAN_ONLY_BG_T if v in variants and ONLY_BG_T in variants]
    slopes = {v: [] for v in (*variants, *(difference_name(v) for v in compared))}
    for _ in range(resamples):
        pick = rng.integers(0, len(table), len(table))
        if np.ptp(xs[pick]) == 0:
            continue
        fitted = {v: np.polyfit(xs[pick], table[v].to_numpy(float)[pick], 1)[0] for v in variants}
        fitted.update({difference_name(v): fitted[v] - fitted[ONLY_BG_T] for v in compared})
        for v, slope in fitted.items():
            slopes[v].append(slope)
    tail = 100 * (1 - level) / 2
    rows = {v: np.percentile(s, [tail, 100 - tail]) for v, s in slopes.items() if s}
    return pd.DataFrame(rows, index=["ci95 low", "ci95 high"]).T


def difference_name(variant: str) -> str:
    """The row of `slope_intervals` for a variant's slope minus Only-BG-T's."""
    return f"{variant} - {ONLY_BG_T}"


def progress_figure(table: pd.DataFrame, fits: pd.DataFrame | None = None, x: str = ORIGINAL,
                    out: Path | None = None, errors: dict[str, dict[str, list[float]]] | None = None):
    """Accuracy on each variant against accuracy on `x`, one colour per variant, with its fitted line (its slope's
    interval in the legend where `fits` has one); `errors`: per model (row) and variant, the (below, above) extent
    of its accuracy's interval, drawn as error bars."""
    import matplotlib.pyplot as plt

    fits = linear_fits(table, x) if fits is None else fits
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    xs = np.linspace(table[x].min() - 1, table[x].max() + 1, 20)
    for k, variant in enumerate(fits.index):
        colour = f"C{k}"
        if errors:
            spans = np.array([errors.get(str(m), {}).get(variant, [0.0, 0.0]) for m in table.index]).T
            ax.errorbar(table[x], table[variant], yerr=spans, fmt="o", color=colour, ms=4, lw=0.8, capsize=2)
        else:
            ax.scatter(table[x], table[variant], color=colour, s=18)
        slope = fits.loc[variant, "slope"]
        span = (f" [{fits.loc[variant, 'ci95 low']:.2f}, {fits.loc[variant, 'ci95 high']:.2f}]"
                if "ci95 low" in fits.columns and pd.notna(fits.loc[variant, "ci95 low"]) else "")
        ax.plot(xs, slope * xs + fits.loc[variant, "intercept"], color=colour, lw=1,
                label=f"{title(variant)} (slope {slope:.2f}{span})")
    ax.set_xlabel(f"accuracy on {title(x)} (%)")
    ax.set_ylabel("accuracy on the variant (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig
