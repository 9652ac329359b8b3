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
from dataclasses import dataclass
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


def generated_data(study: str, *parts: str) -> Path:
    """Data the book makes for a study of its own (the sensitivity study's synthetic sets at other habitat
    strengths), inside bgrepro's results folder: never beside a user's data."""
    return results_dir().joinpath("data", study, *parts)


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


#: Why an entry among the photos is not read (the reason codes of `scan`, in rejections.csv).
UNUSED_REASONS = {"not_an_image": "a file of a format bgrepro does not read as a photo",
                  "not_a_file": "not a regular file (a FIFO, a device, a socket, a broken link or a link loop)",
                  "subfolder": "a folder inside a class folder (its contents are not read)",
                  "not_in_a_class": "a file beside the class folders, not in one"}


@dataclass(frozen=True)
class Unread:
    """A visible entry among the photos that is not read as an image: its path, reason code (`UNUSED_REASONS`)
    and what it is in words."""

    path: Path
    reason: str
    detail: str

    def line(self) -> str:
        """The entry as one line for the user: its path and what it is."""
        return f"{self.path}: {self.detail}"


@dataclass(frozen=True)
class Scan:
    """What one look at a folder of photos found: the image files, sorted, and every other visible entry with
    why it is not read, so that nothing a user put there is skipped without a word."""

    images: list[Path]
    unread: list[Unread]

    def strict(self) -> list[Path]:
        """The images, or one error naming the first entry that is not read (and how many more there are)."""
        if self.unread:
            first, more = self.unread[0], len(self.unread) - 1
            raise ValueError(f"{first.line()}{f' (and {more} more such entries)' if more else ''}; a folder of "
                             "images holds only readable images: remove it or move it away")
        return self.images


def _entry(path: Path) -> tuple[str, str] | None:
    """(reason, detail) of an entry that is not an image file, None for an image file. A link is followed: a
    broken link or a link loop is not a file."""
    if path.is_dir():
        return "subfolder", UNUSED_REASONS["subfolder"]
    if not path.is_file():
        what = ("a broken link or a link loop" if path.is_symlink()
                else "not a regular file (a FIFO, a device or a socket)")
        return "not_a_file", f"{what}; it cannot be read as a photo"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return "not_an_image", (f"{path.suffix or 'no extension'}: not a format bgrepro reads as a photo "
                                f"({', '.join(IMAGE_SUFFIXES)}); convert it to PNG or JPEG")
    return None


def scan(folder: Path, recursive: bool = False) -> Scan:
    """The image files of a folder (and, with `recursive`, of its subfolders; links to folders are not walked)
    and every other visible entry with its reason. Hidden entries (`hidden`) are never data and are not listed."""
    folder = Path(folder)
    if recursive:
        entries = []
        for top, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            entries += [Path(top) / name for name in files if not name.startswith(".")]
            entries += [Path(top) / d for d in dirs if (Path(top) / d).is_symlink()]  # not walked, so not read
    else:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    images, unread = [], []
    for path in sorted(entries):
        why = _entry(path)
        if why is None:
            images.append(path)
        else:
            unread.append(Unread(path, *why))
    return Scan(images, unread)


def beside_classes(folder: Path) -> list[Unread]:
    """The visible entries of a folder of class folders that are not folders (a photo or a note beside the
    classes, a broken link): not in any class, so not read."""
    return [Unread(p, "not_in_a_class", UNUSED_REASONS["not_in_a_class"]) for p in sorted(Path(folder).iterdir())
            if not p.name.startswith(".") and not p.is_dir()]


def images_in(folder: Path, recursive: bool = False) -> list[Path]:
    """The image files of a folder (and, with `recursive`, of its subfolders), sorted; one error naming an entry
    that is not a readable image file (a broken link, a folder named like a photo, a text file), since a result
    computed on fewer images than the folder holds must not pass without a word. `scan` lists them instead."""
    return scan(folder, recursive).strict()


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
