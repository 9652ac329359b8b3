"""The eight test sets of the paper in one table: every stage reads a variant's name, title and make-up here.

A new variant is one row of `VARIANTS` (and, if it is made by a new transformation, one function in
`composite`): the build, the loaders, the analyses, the figures, the report and the book read the table.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The folder names of the official release (what every other module spells through these constants).
ORIGINAL, ONLY_BG_B, ONLY_BG_T, NO_FG = "original", "only_bg_b", "only_bg_t", "no_fg"
ONLY_FG, MIXED_SAME, MIXED_RAND, MIXED_NEXT = "only_fg", "mixed_same", "mixed_rand", "mixed_next"
#: A further test set evaluated beside the variants when present (IN-9L's val split; not a variant).
IN9L = "in9l"


@dataclass(frozen=True)
class Variant:
    """One test set of the paper (its Table 1)."""

    #: Its folder name in the official layout.
    name: str
    #: The paper's name.
    title: str
    #: Whether it keeps the image's own foreground.
    foreground: bool
    #: Whether it has a natural background (its own, part of it, or another image's).
    background: bool
    #: Where a mixed variant's background comes from: an image of the same class, a random one, the next
    #: class's (class c -> c + 1 mod K); None for the variants made from one image.
    pairing: str | None
    #: How it is made, in words (the paper's Table 1).
    made: str


VARIANTS: tuple[Variant, ...] = (
    Variant(ORIGINAL, "Original", True, True, None, "the image as it is"),
    Variant(ONLY_BG_B, "Only-BG-B", False, True, None, "the foreground's box filled black"),
    Variant(ONLY_BG_T, "Only-BG-T", False, True, None,
            "the foreground's box filled by tiling the largest strip of the image outside it"),
    Variant(NO_FG, "No-FG", False, True, None, "the foreground (GrabCut's mask) filled black"),
    Variant(ONLY_FG, "Only-FG", True, False, None, "the foreground on black"),
    Variant(MIXED_SAME, "Mixed-Same", True, True, "same", "the foreground on the Only-BG-T of an image of its class"),
    Variant(MIXED_RAND, "Mixed-Rand", True, True, "random", "the foreground on the Only-BG-T of a random image"),
    Variant(MIXED_NEXT, "Mixed-Next", True, True, "next",
            "the foreground on the Only-BG-T of an image of the next class"),
)
#: Folder names, in the paper's order.
NAMES: tuple[str, ...] = tuple(v.name for v in VARIANTS)
BY_NAME: dict[str, Variant] = {v.name: v for v in VARIANTS}
#: The paper's name of each variant, for tables, figures and reports.
TITLES: dict[str, str] = {v.name: v.title for v in VARIANTS} | {IN9L: "IN-9L"}
#: Made from one image, and made by pasting a foreground on another image's background.
SINGLE: tuple[str, ...] = tuple(v.name for v in VARIANTS if v.pairing is None)
MIXED: tuple[str, ...] = tuple(v.name for v in VARIANTS if v.pairing is not None)
#: The variants without the foreground (the background-only training sets of the paper's Fig. 2).
BACKGROUND_ONLY: tuple[str, ...] = tuple(v.name for v in VARIANTS if not v.foreground)
#: The variants that show the image's own foreground (the test sets of the paper's Fig. 5).
WITH_FOREGROUND: tuple[str, ...] = tuple(v.name for v in VARIANTS if v.foreground)


def title(name: str) -> str:
    """The paper's name of a variant (or of IN-9L); other names as they are."""
    return TITLES.get(name, name)


def parse(text: str) -> tuple[str, ...]:
    """'all' or a comma list of variant names, in the paper's order (ValueError naming an unknown one)."""
    if text.strip() == "all":
        return NAMES
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown or not names:
        bad = unknown[0] if unknown else text
        raise ValueError(f"unknown variant {bad!r}; choose all or from {', '.join(NAMES)}")
    return tuple(v for v in NAMES if v in names)


__all__ = ["Variant", "VARIANTS", "NAMES", "BY_NAME", "TITLES", "SINGLE", "MIXED", "BACKGROUND_ONLY",
           "WITH_FOREGROUND", "title", "parse", "ORIGINAL", "ONLY_BG_B", "ONLY_BG_T", "NO_FG", "ONLY_FG",
           "MIXED_SAME", "MIXED_RAND", "MIXED_NEXT", "IN9L"]
