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
