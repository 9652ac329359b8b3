"""The IN-9 label space and the synthetic habitats: names shared by every stage."""

from __future__ import annotations

#: Folder names of the official IN-9 release, in label order.
CLASS_FOLDERS: tuple[str, ...] = (
    "00_dog",
    "01_bird",
    "02_wheeled vehicle",
    "03_reptile",
    "04_carnivore",
    "05_insect",
    "06_musical instrument",
    "07_primate",
    "08_fish",
)

#: WordNet synset of each IN-9 class (the super-class of its ImageNet classes).
CLASS_SYNSETS: tuple[str, ...] = (
    "n02084071",
    "n01503061",
    "n04576211",
    "n01661091",
    "n02075296",
    "n02159955",
    "n03800933",
    "n02469914",
    "n02512053",
)

#: Short human names, for tables and figures.
CLASS_NAMES: tuple[str, ...] = tuple(f.split("_", 1)[1] for f in CLASS_FOLDERS)

NUM_CLASSES = len(CLASS_FOLDERS)

#: Background scenes of the synthetic IN-9, in habitat-index order.
HABITATS: tuple[str, ...] = (
    "sky",
    "water",
    "grass",
    "foliage",
    "sand_rock",
    "road",
    "indoor_wood",
    "flowers",
    "snow",
)

#: Official variant folder names, in the paper's order.
VARIANTS: tuple[str, ...] = (
    "original",
    "only_bg_b",
    "only_bg_t",
    "no_fg",
    "only_fg",
    "mixed_same",
    "mixed_rand",
    "mixed_next",
)


def class_index(folder: str) -> int:
    """Label of an official class folder name; ValueError for an unknown folder."""
    try:
        return CLASS_FOLDERS.index(folder)
    except ValueError:
        raise ValueError(
            f"unknown class folder {folder!r}; expected one of {', '.join(CLASS_FOLDERS)}"
        ) from None


def _expand(spec: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(out)


#: ImageNet-1k class indices (torchvision order) under each IN-9 class's WordNet synset.
IMAGENET_INDICES: tuple[tuple[int, ...], ...] = tuple(
    _expand(s)
    for s in (
        "151-170, 173-268",
        "7-24, 87-100, 127-146",
        "407-408, 428, 436, 444, 468, 511, 547, 555, 561, 565, 569, 573, 586, 603, 609, 612, 627, 656, 661, "
        "665, 670-671, 675, 690, 705, 717, 734, 751, 757, 791, 802-803, 817, 820, 829, 847, 864, 866-867, "
        "870, 880",
        "33-68",
        "269-280, 286-299, 356-362, 387-388",
        "300-326",
        "401-402, 420, 432, 486, 494, 513, 541, 546, 558, 566, 577, 579, 593-594, 641-642, 683-684, 687, 699, "
        "776, 822, 875, 881, 889",
        "365-384",
        "0-6, 389-397",
    )
)

#: IN-9 label of every ImageNet-1k class index, -1 for the 630 classes under no IN-9 synset.
IMAGENET_TO_IN9: tuple[int, ...] = tuple(
    next((c for c, idx in enumerate(IMAGENET_INDICES) if i in idx), -1) for i in range(1000)
)
