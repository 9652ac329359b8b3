"""The class-by-background matrix (issue 32): known answers from a hand-built manifest and predictions."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from bgrepro.analyses.evaluate import Correctness
from bgrepro.analyses.groups import SMALL_GROUP, frames, group_matrices, group_matrix, wilson, worst_group_line
from bgrepro.data.build import MANIFEST_COLUMNS

CLASSES = ["00_cat", "01_dog", "02_eel"]
#: (foreground class, background class, images, right): the Mixed-Rand test set, group by group.
GROUPS = [(0, 1, 12, 3), (0, 2, 2, 0), (1, 0, 10, 9), (1, 1, 3, 3), (2, 0, 10, 5)]
#: Mixed-Same (the same foregrounds on backgrounds of their own class): right per class, of 14, 13 and 10.
SAME_RIGHT = {0: 11, 1: 13, 2: 6}


def _data(tmp_path):
    """A manifest of Mixed-Rand and Mixed-Same test composites and, for them, a model's per-image correctness."""
    rows, ids, correct, labels = [], {"mixed_rand": [], "mixed_same": []}, {"mixed_rand": [], "mixed_same": []}, \
        {"mixed_rand": [], "mixed_same": []}
    count = {0: 0, 1: 0, 2: 0}
    for fg, bg, n, right in GROUPS:
        for k in range(n):
            stem = f"img_{count[fg]}"
            count[fg] += 1
            rows.append(["mixed_rand", "val", f"mixed_rand/val/{CLASSES[fg]}/{stem}.png", fg, stem, fg, f"bg{k}", bg,
                         f"photos/{CLASSES[fg]}/{stem}.jpg", f"photos/{CLASSES[bg]}/bg{k}.jpg"])
            ids["mixed_rand"].append(f"{CLASSES[fg]}/{stem}")
            correct["mixed_rand"].append(k < right)
            labels["mixed_rand"].append(fg)
    for fg, n in count.items():
        for k in range(n):
            rows.append(["mixed_same", "val", f"mixed_same/val/{CLASSES[fg]}/img_{k}.png", fg, f"img_{k}", fg,
                         f"own{k}", fg, "", ""])
            ids["mixed_same"].append(f"{CLASSES[fg]}/img_{k}")
            correct["mixed_same"].append(k < SAME_RIGHT[fg])
            labels["mixed_same"].append(fg)
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows(rows)
    scored = Correctness({v: np.array(c) for v, c in correct.items()}, ids,
                         {v: np.array(label) for v, label in labels.items()}, CLASSES)
    return scored


def test_the_matrix_the_worst_group_and_its_interval_by_hand(tmp_path):
    scored = _data(tmp_path)
    m = group_matrix(scored, tmp_path, "mixed_rand")
    by_pair = {(g.foreground, g.background): g for g in m.groups}
    assert set(by_pair) == {("00_cat", "01_dog"), ("00_cat", "02_eel"), ("01_dog", "00_cat"), ("01_dog", "01_dog"),
                            ("02_eel", "00_cat")}  # empty groups are absent, not zero
    cat_on_dog = by_pair["00_cat", "01_dog"]
    assert (cat_on_dog.n, cat_on_dog.accuracy) == (12, 0.25)
    # Wilson's 95% interval of 3 in 12, worked by hand: centre (p + z^2/2n) / (1 + z^2/n) = 0.31063,
    # half-width z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n) = 0.22169
    assert cat_on_dog.ci95 == pytest.approx((0.08894, 0.53231), abs=1e-5)
    assert m.accuracy == pytest.approx(20 / 37)
    # the two-image group is lower (0%) but small: marked, kept, and not the worst group
    assert by_pair["00_cat", "02_eel"].small and by_pair["01_dog", "01_dog"].small and not cat_on_dog.small
    assert by_pair["00_cat", "02_eel"].ci95 == pytest.approx((0.0, 0.65762), abs=1e-5)
    assert m.worst == cat_on_dog
    # per class: the most harmful other-class background, against its own class's backgrounds (Mixed-Same)
    assert m.harms["00_cat"].group == cat_on_dog
    assert m.harms["00_cat"].own == pytest.approx(11 / 14) and m.harms["00_cat"].own_from == "mixed_same"
    assert m.harms["00_cat"].drop == pytest.approx(11 / 14 - 0.25)
    assert m.harms["02_eel"].drop == pytest.approx(0.6 - 0.5)
    assert m.harms["01_dog"].group.background == "00_cat"  # its own-class group is not a harm


def test_the_json_the_tables_and_the_words(tmp_path):
    scored = _data(tmp_path)
    matrices = group_matrices(scored, tmp_path)
    assert set(matrices) == {"mixed_rand", "mixed_same"}
    data = matrices["mixed_rand"].to_json()
    assert data["small_group"] == SMALL_GROUP and data["worst"]["n"] == 12
    accuracy, count = frames(data)
    assert accuracy.loc["cat", "dog"] == 25.0 and count.loc["cat", "eel"] == 2 and np.isnan(accuracy.loc["eel", "eel"])
    assert worst_group_line(data) == "cat on dog backgrounds: 25.0% [8.9, 53.2] of 12 images (the set's mean 54.1%)"


def test_every_group_small_still_names_a_worst_group_and_says_so(tmp_path):
    scored = _data(tmp_path)
    keep = [i for i, ident in enumerate(scored.ids["mixed_rand"]) if ident.startswith("02_eel")][:4]
    scored.ids["mixed_rand"] = [scored.ids["mixed_rand"][i] for i in keep]
    scored.correct["mixed_rand"] = scored.correct["mixed_rand"][keep]
    scored.labels["mixed_rand"] = scored.labels["mixed_rand"][keep]
    m = group_matrix(scored, tmp_path, "mixed_rand")
    assert m.worst.small and "a small group" in worst_group_line(m.to_json())


def test_a_manifest_that_does_not_describe_the_images_is_named(tmp_path):
    scored = _data(tmp_path)
    scored.ids["mixed_rand"][0] = "00_cat/not_built"
    with pytest.raises(ValueError, match="manifest.csv: no foreground and background class for 1 of the 37"):
        group_matrix(scored, tmp_path, "mixed_rand")
    assert group_matrices(scored, tmp_path / "elsewhere") == {}  # no manifest (the official release): no matrix


def test_wilson_known_values():
    assert wilson(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson(9, 10) == pytest.approx((0.59585, 0.98212), abs=1e-5)
    with pytest.raises(ValueError):
        wilson(0, 0)
