"""Each claim's verdict is computed from the numbers by its fixed criterion, and flips when the numbers
cross it; a claim about several models is judged on all of them, never on the best."""

from __future__ import annotations

import pytest

from bgrepro.book import verdicts as v


def test_claim_1_is_judged_on_every_background_only_model():
    chance = 100 / 9
    assert v.claim_1({"Only-BG-B": 41.0, "Only-BG-T": 42.1, "No-FG": 40.0}, chance).verdict == v.REPRODUCED
    # the numbers: the best of three (42.1) passes the bar, the others do not -> partly, not a pass
    partly = v.claim_1({"Only-BG-B": 39.3, "Only-BG-T": 42.1, "No-FG": 26.6}, chance)
    assert partly.verdict == v.PARTLY and "Only-BG-B, No-FG" in partly.reason
    assert v.claim_1({"Only-BG-B": 39.3, "Only-BG-T": 42.1, "No-FG": 11.0}, chance).verdict == v.NOT_REPRODUCED


@pytest.mark.parametrize("value, verdict", [(6.0, v.REPRODUCED), (5.99, v.PARTLY), (0.01, v.PARTLY),
                                            (0.0, v.NOT_REPRODUCED), (-3.0, v.NOT_REPRODUCED)])
def test_claim_2_flips_at_the_papers_smallest_gap_and_at_zero(value, verdict):
    assert v.claim_2(value).verdict == verdict


def test_claims_3_to_5_flip_at_their_criteria():
    assert v.claim_3(49.9).verdict == v.REPRODUCED and v.claim_3(50.0).verdict == v.NOT_REPRODUCED
    assert v.claim_4a(2.0, 10.0).verdict == v.REPRODUCED
    assert v.claim_4a(2.1, 10.0).verdict == v.PARTLY and v.claim_4a(5.0, 10.0).verdict == v.PARTLY
    assert v.claim_4a(5.1, 10.0).verdict == v.NOT_REPRODUCED
    assert v.claim_4a(1.0, 0.5).verdict == v.NOT_REPRODUCED  # no gap to remove in the first place
    assert v.claim_4a(-20.0, 10.0).verdict == v.NOT_REPRODUCED  # overshooting is not removing
    assert v.claim_1({"Only-BG-B": float("nan")}, 11.1).verdict == v.NO_COUNTERPART
    assert v.claim_4b(86.3, 85.4).verdict == v.REPRODUCED and v.claim_4b(85.4, 86.3).verdict == v.NOT_REPRODUCED
    assert v.claim_4c(30.0, 30.1).verdict == v.REPRODUCED and v.claim_4c(30.1, 30.0).verdict == v.NOT_REPRODUCED
    assert v.claim_4c(None, 30.0).verdict == v.NO_COUNTERPART
    assert v.claim_5(50.1).verdict == v.REPRODUCED and v.claim_5(22.4).verdict == v.NOT_REPRODUCED


def test_claim_6_needs_every_slope_rising_and_a_sure_difference():
    rising = {"only_bg_t": 0.2, "mixed_rand": 0.9, "only_fg": 0.7}
    assert v.claim_6(rising, [0.3, 1.1], 6).verdict == v.REPRODUCED
    assert v.claim_6(rising, [-0.1, 1.1], 6).verdict == v.PARTLY  # the interval includes 0
    falling = {"only_bg_t": -0.42, "only_bg_b": -0.47, "mixed_rand": 0.9}  # the smoke slopes
    judged = v.claim_6(falling, [0.5, 1.6], 6)
    assert judged.verdict == v.PARTLY and "only_bg_t, only_bg_b fall" in judged.reason
    assert v.claim_6({"only_bg_t": 0.9, "mixed_rand": 0.2}, [-1.0, -0.1], 6).verdict == v.NOT_REPRODUCED
    assert v.claim_6(rising, [0.3, 1.1], 3).verdict == v.NO_COUNTERPART


def test_the_rps_claim_needs_a_self_supervised_backbone():
    better = ({"maxboxaccv2": 60.0, "pxap": 55.0}, {"maxboxaccv2": 50.0, "pxap": 50.0})
    assert v.claim_rps(*better, self_supervised=True, backbone="DINO ResNet-50").verdict == v.REPRODUCED
    assert v.claim_rps(*better, self_supervised=False, backbone="a supervised trunk").verdict == v.NO_COUNTERPART
    mixed = ({"maxboxaccv2": 60.0, "pxap": 45.0}, {"maxboxaccv2": 50.0, "pxap": 50.0})
    assert v.claim_rps(*mixed, self_supervised=True, backbone="x").verdict == v.PARTLY
    assert v.claim_rps(*reversed(better), self_supervised=True, backbone="x").verdict == v.NOT_REPRODUCED


def test_every_claim_has_a_statement_and_a_criterion_and_a_sentence_says_the_verdict():
    assert set(v.STATEMENTS) == set(v.CRITERIA)
    sentence = v.claim_5(22.4).sentence()
    assert sentence.startswith("Claim 5") and "not reproduced" in sentence and "22.4%" in sentence


def test_progress_slope_intervals_cover_the_fitted_slope():
    import numpy as np
    import pandas as pd

    from bgrepro.analyses.progress import linear_fits, slope_intervals

    rng = np.random.default_rng(0)
    original = np.linspace(50, 90, 8)
    table = pd.DataFrame({"original": original, "mixed_rand": 1.2 * original - 20 + rng.normal(0, 1, 8),
                          "only_bg_t": 0.1 * original + 10 + rng.normal(0, 1, 8)})
    ci = slope_intervals(table, resamples=500)
    fits = linear_fits(table)
    for variant in ("mixed_rand", "only_bg_t"):
        assert ci.loc[variant, "ci95 low"] <= fits.loc[variant, "slope"] <= ci.loc[variant, "ci95 high"]
    assert ci.loc["mixed_rand - only_bg_t", "ci95 low"] > 0.5


def test_the_imagenet_half_says_why_it_is_missing_and_how_to_get_it(tiny_variants, tmp_path):
    from bgrepro.book.chapter import imagenet_note
    from bgrepro.in9 import CLASS_FOLDERS
    from bgrepro.layout import data_kind

    assert data_kind(tiny_variants) == "synthetic"
    official = tmp_path / "in9"  # the official sets as `data fetch` unpacks them: no build record
    for folder in CLASS_FOLDERS:
        (official / "original" / "val" / folder).mkdir(parents=True)
    assert data_kind(official) == "in9" and data_kind(tmp_path) is None
    text = imagenet_note(tiny_variants, (), "Table 2's ImageNet half").data
    assert "no counterpart" in text and "synthetic" in text and "ImageNet weights" in text and "--pretrained" in text
    assert "no counterpart" in imagenet_note(tiny_variants, ("resnet50",), "x").data  # weights, but not IN-9
    only_weights = imagenet_note(official, (), "x").data  # IN-9, no weights: only the weights are missing
    assert "ImageNet weights" in only_weights and "photographs" not in only_weights
    assert "computed here" in imagenet_note(official, ("resnet50",), "x").data
