"""Which backgrounds move which classes: accuracy per group (foreground class, background class) of a mixed test
set, the worst group, and per class the background class that hurts it most.

A group is every composite of one test set whose foreground comes from class f and whose background from class
b; `bgrepro build` records both in the manifest (`fg_class`, `bg_class`), so the groups are read, never
guessed. Definitions, spelled out (the spurious-correlation literature's worst-group accuracy, with groups by
background class instead of by attribute):

- a group's accuracy is the mean correctness over its test images, unweighted; its 95% interval is Wilson's
  score interval over those images (for correctness averaged over seeds, the same formula on the mean: a
  conservative interval, as the variance of a share in [0, 1] is at most p (1 - p));
- a group of fewer than `SMALL_GROUP` images is marked `small` and kept in every table and figure; the worst
  group and each class's most harmful background are chosen among the groups that are not small (among all,
  marked, when every group is small);
- the worst group is the one of lowest accuracy, ties broken by class order; the worst-group accuracy is its
  accuracy, with its interval;
- per foreground class, the harm of a background class is the accuracy on the class's own backgrounds (its
  Mixed-Same accuracy, the same foregrounds on backgrounds of their own class; the own-class group of the set
  where there is no Mixed-Same) minus the accuracy of the group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.build import read_manifest
from ..layout import short_name
from ..variants import MIXED, MIXED_RAND, MIXED_SAME
from .evaluate import Correctness

#: Groups with fewer test images are marked small (their interval is wider than about +-30 points).
SMALL_GROUP = 10
_Z95 = 1.959963984540054


def wilson(hits: float, n: int, z: float = _Z95) -> tuple[float, float]:
    """Wilson's score interval (95% by default) of a proportion of `hits` in `n`."""
    if n <= 0:
        raise ValueError("a proportion of no images has no interval")
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Group:
    """The composites of one test set with a foreground of class `foreground` on a background of class
    `background`: how many, the share a model got right, and its 95% interval."""

    foreground: str
    background: str
    n: int
    accuracy: float
    ci95: tuple[float, float]
    small: bool

    def to_json(self) -> dict:
        return {"foreground": self.foreground, "background": self.background, "n": self.n,
                "accuracy": self.accuracy, "ci95": list(self.ci95), "small": self.small}


@dataclass(frozen=True)
class Harm:
    """The background class that hurts one foreground class most: its group, the accuracy on the class's own
    backgrounds, where that comes from, and the drop (own - group)."""

    group: Group
    own: float
    own_from: str

    @property
    def drop(self) -> float:
        return self.own - self.group.accuracy

    def to_json(self) -> dict:
        return {"background": self.group.background, "accuracy": self.group.accuracy, "n": self.group.n,
                "small": self.group.small, "own_accuracy": self.own, "own_from": self.own_from, "drop": self.drop}


@dataclass(frozen=True)
class GroupMatrix:
    """Every non-empty group of one mixed test set (foreground class x background class)."""

    variant: str
    classes: tuple[str, ...]
    groups: tuple[Group, ...]
    #: Mean correctness over the set's images.
    accuracy: float
    #: The most harmful background class of each foreground class (None where it has no other-class group).
    harms: dict[str, Harm | None]

    @property
    def worst(self) -> Group:
        """The group of lowest accuracy among those that are not small (among all when every one is)."""
        return _lowest(self.groups)

    def to_json(self) -> dict:
        return {"variant": self.variant, "classes": list(self.classes), "accuracy": self.accuracy,
                "small_group": SMALL_GROUP, "interval": "95% Wilson score interval over the group's test images",
                "worst": self.worst.to_json(), "groups": [g.to_json() for g in self.groups],
                "hardest_background": {c: (h.to_json() if h else None) for c, h in self.harms.items()}}


def _lowest(groups) -> Group:
    large = [g for g in groups if not g.small]
    return min(large or groups, key=lambda g: g.accuracy)  # min keeps the first of a tie: class order


def composite_classes(rows: list[dict], variant: str, split: str = "val") -> dict[str, tuple[int, int]]:
    """{image id ("<class folder>/<stem>"): (foreground class, background class)} of a mixed set, from the
    rows of a build's manifest (`build.read_manifest`)."""
    out = {}
    for row in rows:
        if row["variant"] == variant and row["split"] == split and row.get("bg_class", "") != "":
            path = Path(row["path"])
            out[f"{path.parent.name}/{path.stem}"] = (int(row["fg_class"]), int(row["bg_class"]))
    return out


def group_matrix(scored: Correctness, root: Path, variant: str = MIXED_RAND, split: str = "val",
                 rows: list[dict] | None = None) -> GroupMatrix:
    """The groups of one mixed test set from per-image correctness (`evaluate.correctness`) and the manifest
    (its `rows` when already read); ValueError naming the manifest where it does not describe the scored
    images."""
    classes = tuple(scored.classes)
    pairs = composite_classes(read_manifest(root) if rows is None else rows, variant, split)
    ids, hits = scored.ids[variant], np.asarray(scored.correct[variant], dtype=np.float64)
    missing = [i for i in ids if i not in pairs]
    if missing:
        raise ValueError(f"{root / 'manifest.csv'}: no foreground and background class for {len(missing)} of the "
                         f"{len(ids)} {variant} test images (e.g. {missing[0]}); rebuild the data with bgrepro build")
    fg = np.array([pairs[i][0] for i in ids])
    bg = np.array([pairs[i][1] for i in ids])
    if any(classes[f] != i.split("/", 1)[0] for f, i in zip(fg, ids)):
        raise ValueError(f"{root / 'manifest.csv'}: its foreground classes do not match the class folders")
    groups = []
    for f in range(len(classes)):
        for b in range(len(classes)):
            inside = hits[(fg == f) & (bg == b)]
            if len(inside):
                groups.append(Group(classes[f], classes[b], len(inside), float(inside.mean()),
                                    wilson(float(inside.sum()), len(inside)), len(inside) < SMALL_GROUP))
    own = _own_accuracy(scored, variant, groups)
    harms = {}
    for c in classes:
        others = [g for g in groups if g.foreground == c and g.background != c]
        harms[c] = Harm(_lowest(others), *own[c]) if others and own.get(c) else None
    return GroupMatrix(variant, classes, tuple(groups), float(hits.mean()), harms)


def _own_accuracy(scored: Correctness, variant: str, groups: list[Group]) -> dict[str, tuple[float, str] | None]:
    """Per class, its accuracy on its own class's backgrounds: Mixed-Same's where it was scored, else the set's
    own-class group."""
    if MIXED_SAME in scored.correct and variant != MIXED_SAME:
        hits, labels = np.asarray(scored.correct[MIXED_SAME], dtype=np.float64), scored.labels[MIXED_SAME]
        return {c: (float(hits[labels == k].mean()), MIXED_SAME) if (labels == k).any() else None
                for k, c in enumerate(scored.classes)}
    return {g.foreground: (g.accuracy, variant) for g in groups if g.foreground == g.background}


def group_matrices(scored: Correctness, root: Path, split: str = "val") -> dict[str, GroupMatrix]:
    """The group matrix of every mixed set scored whose composites the manifest describes; {} for data without a
    manifest (the official release does not record where a background came from)."""
    if not (Path(root) / "manifest.csv").exists():
        return {}
    rows = read_manifest(root)
    return {v: group_matrix(scored, root, v, split, rows) for v in MIXED if v in scored.correct}


def as_json(scored: Correctness, root: Path, split: str = "val") -> dict[str, dict]:
    """`group_matrices` as strict JSON (fractions), by variant: what an evaluation record holds."""
    return {v: m.to_json() for v, m in group_matrices(scored, root, split).items()}


def worst_group_line(matrix: dict) -> str:
    """The worst group of a matrix (`GroupMatrix.to_json()`, fractions) in words, e.g. "dog on fish
    backgrounds: 31.0% [22.1, 41.5] of 58 images (the set's mean 70.2%)"."""
    w = matrix["worst"]
    small = ", a small group" if w["small"] else ""
    return (f"{short_name(w['foreground'])} on {short_name(w['background'])} backgrounds: "
            f"{100 * w['accuracy']:.1f}% [{100 * w['ci95'][0]:.1f}, {100 * w['ci95'][1]:.1f}] of {w['n']} "
            f"image{'' if w['n'] == 1 else 's'}{small} (the set's mean {100 * matrix['accuracy']:.1f}%)")


def frames(matrix: dict, scale: float = 100.0):
    """(accuracy x `scale`, image count) tables, foreground classes (rows) x background classes (columns), of a
    matrix's JSON (`GroupMatrix.to_json`: fractions, so scale 100 gives %; scale 1 for one already in %); NaN
    where a group has no image."""
    import pandas as pd

    names = [short_name(c) for c in matrix["classes"]]
    accuracy = pd.DataFrame(np.nan, index=names, columns=names)
    count = pd.DataFrame(0, index=names, columns=names)
    for g in matrix["groups"]:
        f, b = short_name(g["foreground"]), short_name(g["background"])
        accuracy.loc[f, b], count.loc[f, b] = scale * g["accuracy"], g["n"]
    for frame in (accuracy, count):
        frame.index.name, frame.columns.name = "foreground class", "background class"
    return accuracy, count
