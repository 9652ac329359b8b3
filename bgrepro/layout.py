"""The on-disk layout of a dataset, in one place: every other module asks here for a path.

    <root>/<variant>/<split>/<class folder>/<file>     images of a variant (the official IN-9 layout)
    <root>/fg_mask/<split>/<class folder>/<stem>.npy   boolean foreground masks
    <root>/manifest.csv                                what `bgrepro build` wrote (its hash is the data's identity)
    <root>/build.json                                  the arguments it was built with
    <parent>/.<name>.partial/                          an output being written (renamed to <root> when done)

and the folder of a `bgrepro report` (REPORT_PARTS): OUT/report_args.json, OUT/masks/, OUT/localizer/,
OUT/data/ (a dataset as above), OUT/models/<run>/, OUT/report.json and OUT/report.html.

A dataset's classes are its class folders, sorted by name: any names, any number of them. An
image's identity is its class folder and its file name, so file names may repeat across classes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from . import in9
from .variants import ORIGINAL

#: Split folder names: training and test (the official release calls its test split `val`).
TRAIN, TEST = "train", "val"
SPLITS = (TRAIN, TEST)
#: The folder of foreground masks, beside the variant folders.
MASKS = "fg_mask"
MANIFEST = "manifest.csv"
BUILD_ARGS = "build.json"
#: bgrepro's mark on every output folder it makes: the command, its arguments and its inputs' identity
#: (`bgrepro.outputs`). A folder without it is the user's, and bgrepro never replaces or deletes it.
MARKER = ".bgrepro.json"
#: Beside the marker: every file the run that made the folder wrote (one relative path a line), so that a
#: file a user put into a bgrepro output is told apart and never replaced or deleted with it.
OWNED = ".bgrepro-files.txt"
#: File endings read as images.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


#: The parts of a `bgrepro report` folder: its arguments, the RPS masks and w* (only for photos without masks
#: or boxes), the built variants, the models it trains, and the report itself.
REPORT_PARTS = {"args": "report_args.json", "masks": "masks", "localizer": "localizer", "data": "data",
                "models": "models", "json": "report.json", "html": "report.html", "listing": "images.csv"}


RESULTS_ENV = "BGREPRO_RESULTS"
#: The GPU benchmark's committed results (bench/gpu.py on a lent GPU), beside the package in a checkout.
GPU_RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "gpu.json"


def results_dir() -> Path:
    """bgrepro's own results folder: the book's records and runs, eval records, decoded-set caches
    ($BGREPRO_RESULTS, else ./results)."""
    return Path(os.environ.get(RESULTS_ENV, "results"))


def report_path(out: Path, part: str, run: str | None = None) -> Path:
    """A part of a report folder (see REPORT_PARTS); with `run`, that trained model's run folder."""
    path = Path(out) / REPORT_PARTS[part]
    return path / run if run else path


def variant_dir(root: Path, variant: str) -> Path:
    """The folder of one variant (all its splits)."""
    return Path(root) / variant


def split_dir(root: Path, variant: str, split: str) -> Path:
    """The folder of one variant's split."""
    return Path(root) / variant / split


def image_path(root: Path, variant: str, split: str, folder: str, stem: str, ext: str) -> Path:
    """Where the image `<folder>/<stem>` of a variant's split is written (`ext` without the dot)."""
    return split_dir(root, variant, split) / folder / f"{stem}.{ext}"


def build_state_path(root: Path, split: str, folder: str, stem: str) -> Path:
    """Where `bgrepro build` keeps what it learnt of one source image (what makes a build resumable)."""
    return Path(root) / ".build" / split / folder / f"{stem}.json"


def mask_path(root: Path, split: str, folder: str, stem: str) -> Path:
    """The foreground mask of the image `<folder>/<stem>.*` of a split."""
    return Path(root) / MASKS / split / folder / f"{stem}.npy"


def staging_dir(root: Path) -> Path:
    """Where an output folder is written before it is renamed into place (a hidden sibling)."""
    root = Path(root)
    return root.parent / f".{root.name}.partial"


def manifest_path(root: Path) -> Path:
    """A built dataset's manifest."""
    return Path(root) / MANIFEST


def data_identity(root: Path | str | None) -> str | None:
    """sha256 of a dataset's manifest (or a synthetic source's annotations) and of the identity of the inputs
    it was built from (its marker's `inputs`): what its records are keyed by. Photos edited in place give
    the same manifest, but not the same inputs."""
    if not root:
        return None
    for name in (MANIFEST, "annotations.csv"):
        path = Path(root) / name
        if path.exists():
            digest = hashlib.sha256(path.read_bytes())
            try:
                inputs = json.loads((Path(root) / MARKER).read_text()).get("inputs")
            except (OSError, ValueError, AttributeError):
                inputs = None
            if inputs:
                digest.update(json.dumps(inputs, sort_keys=True).encode())
            return digest.hexdigest()
    return None


def images_in(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files of a folder (and, with `recursive`, of its subfolders), sorted."""
    folder = Path(folder)
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in files if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not hidden(p, folder))


#: Why an entry among the photos is not read (the reason codes of `unused_entries`, in rejections.csv).
UNUSED_REASONS = {"not_an_image": "a file of a format bgrepro does not read as a photo",
                  "not_a_file": "not a regular file (a FIFO, a device, a socket or a broken link)",
                  "subfolder": "a folder inside a class folder (its contents are not read)",
                  "not_in_a_class": "a file beside the class folders, not in one"}


def unused_entries(folder: Path) -> list[tuple[Path, str, str]]:
    """The visible entries of a folder of photos that `images_in` does not return, each with its reason code
    (`UNUSED_REASONS`) and what it is in words, so that nothing is skipped without a word. Hidden entries are
    never data and are not listed."""
    out = []
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            out.append((path, "subfolder", UNUSED_REASONS["subfolder"]))
        elif not path.is_file():
            out.append((path, "not_a_file", UNUSED_REASONS["not_a_file"]))
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            out.append((path, "not_an_image", f"{path.suffix or 'no extension'}: not a format bgrepro reads as a "
                        f"photo ({', '.join(IMAGE_SUFFIXES)}); convert it to PNG or JPEG"))
    return out


def hidden(path: Path, root: Path) -> bool:
    """Whether a part of `path` below `root` is hidden: `.DS_Store`, macOS's `._photo.jpg` twins,
    `.ipynb_checkpoints/`, bgrepro's own markers and staging folders. Hidden files are never data."""
    return any(part.startswith(".") for part in Path(path).relative_to(root).parts)


def class_folders(root: Path, variant: str = ORIGINAL) -> tuple[str, ...]:
    """A dataset's classes: the class folders of a variant over every split, sorted by name."""
    names = sorted({p.name for split in SPLITS if split_dir(root, variant, split).is_dir()
                    for p in split_dir(root, variant, split).iterdir() if p.is_dir() and not p.name.startswith(".")})
    if not names:
        raise FileNotFoundError(f"{Path(root) / variant}: no class folders (expected {variant}/<split>/<class>/)")
    return tuple(names)


def short_name(folder: str) -> str:
    """A class folder's name for tables and figures: without a leading index such as IN-9's `00_`."""
    return re.sub(r"^\d+_", "", folder) or folder


def image_file(root: Path, variant: str, split: str, image_id: str) -> Path:
    """The file of the image `<class folder>/<stem>` (an ImageSet id) in a variant's split."""
    folder = split_dir(root, variant, split) / Path(image_id).parent
    matches = sorted(p for p in folder.glob(f"{glob_escape(Path(image_id).name)}.*")
                     if p.suffix.lower() in IMAGE_SUFFIXES)
    if not matches:
        raise FileNotFoundError(f"{folder}: no image {Path(image_id).name!r}")
    return matches[0]


def glob_escape(text: str) -> str:
    """`text` with glob's special characters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def data_kind(data) -> str | None:
    """What a dataset was made from: its build's source kind (`synthetic`, `in9`, `folder`, ...), `in9` for the
    official IN-9 sets as `bgrepro data fetch` unpacks them (no build record, IN-9's class folders), else None."""
    if (Path(data) / BUILD_ARGS).is_file():
        try:
            return json.loads((Path(data) / BUILD_ARGS).read_text())["source"]["kind"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
    try:
        return "in9" if class_folders(data) == tuple(in9.CLASS_FOLDERS) else None
    except (OSError, ValueError):
        return None
