"""Fine-grained categories and benchmark-progress fits."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from bgrepro.analyses import finegrained
from bgrepro.analyses.progress import linear_fits, progress_figure
from bgrepro.book.experiments import zoo_table
from tests.conftest import load_model


def test_categories_follow_their_definitions():
    rows = [  # original, only_fg, only_bg_t, mixed_rand -> category, 2x2
        ((0, 1, 1, 1), "wrong on Original", "both"),
        ((1, 1, 0, 1), "foreground suffices", "foreground only"),
        ((1, 0, 1, 1), "needs a background", "background only"),
        ((1, 1, 1, 0), "background overrides", "both"),
        ((1, 0, 0, 0), "background needed", "neither"),
    ]
    table = pd.DataFrame([dict(zip(finegrained.VARIANTS_USED, map(bool, bits)), label=k)
                          for k, (bits, _, _) in enumerate(rows)])
    out = finegrained.categorize(table)
    assert list(out["category"]) == [r[1] for r in rows]
    assert list(out["split_2x2"]) == [r[2] for r in rows]
    shares = finegrained.summary(out)
    assert shares["share %"].sum() == pytest.approx(100)
    assert (shares["share %"] == 20).all()


def test_correctness_on_built_variants(tmp_path, tiny_variants, tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    table = finegrained.categorize(finegrained.correctness(model, tiny_variants))
    assert len(table) == 27 and set(table["label"]) == set(range(9))
    by_class = finegrained.summary(table, by_class=True)
    assert np.allclose(by_class.sum(axis=1), 100)
    fig = finegrained.stacked_bars({"tiny": finegrained.summary(table)})
    fig.savefig(tmp_path / "bars.png")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_variants, broken)
    next((broken / "mixed_rand" / "val" / "00_dog").iterdir()).unlink()
    with pytest.raises(ValueError, match="not in every one"):
        finegrained.correctness(model, broken)


def test_linear_fits_recover_known_lines():
    x = np.array([50.0, 60.0, 70.0, 80.0])
    table = pd.DataFrame({"original": x, "mixed_rand": 1.5 * x - 40, "only_bg_t": 0.2 * x + 10})
    fits = linear_fits(table)
    assert fits.loc["mixed_rand", "slope"] == pytest.approx(1.5)
    assert fits.loc["only_bg_t", "intercept"] == pytest.approx(10)
    assert fits.loc["mixed_rand", "r"] == pytest.approx(1)
    with pytest.raises(ValueError, match="two models"):
        linear_fits(table.iloc[:1])


def test_zoo_table_trains_the_profile_zoo(tmp_path, tiny_variants, monkeypatch):
    monkeypatch.setenv("BGREPRO_RESULTS", str(tmp_path / "results"))
    table = zoo_table(tiny_variants, "tiny", progress=False)
    assert list(table.index) == ["smallcnn_narrow (1 epoch)", "smallcnn_narrow (2 epochs)", "smallcnn (1 epoch)",
                                 "smallcnn (2 epochs)"]
    assert {"original", "only_bg_t", "mixed_rand", "only_fg"} <= set(table.columns)
    assert ((table >= 0) & (table <= 100)).all().all()
    progress_figure(table, out=tmp_path / "progress.png")
    assert (tmp_path / "progress.png").stat().st_size > 0
