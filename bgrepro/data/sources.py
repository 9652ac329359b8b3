"""Where images and their annotations come from: each source yields (image, label, box, mask, id).

- `SyntheticSource`: the embedded synthetic IN-9 (`bgrepro synth`).
- `IN9Source`: the official IN-9 release layout (`original/<split>/<class>/` + `fg_mask/`).
- `ImageNetSource`: ImageNet-style class folders + Pascal VOC bounding-box XMLs -> GrabCut masks,
  the paper's own procedure (resize 256, center crop 224, the four filters).
- `FolderSource`: any collection of class folders with masks (PNG/NPY) or a CSV of boxes.

A source lists `Record`s cheaply (paths only) and `load`s one into a `Sample` (pixels), so the
variant builder can load in parallel. Bad input raises one ValueError naming the file;
images that fail the paper's filters raise `composite.Rejected` and are counted, not fatal.
"""

from __future__ import annotations

import csv
import math
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import layout
from ..in9 import CLASS_FOLDERS, WNID_TO_IN9
from ..io import covers_image, mask_box, read_image, read_mask, read_table
from ..layout import Scan
from ..variants import IN9L, ORIGINAL
from . import composite
from .synth import read_annotations

IMAGE_SUFFIXES = layout.IMAGE_SUFFIXES
SPLITS = layout.SPLITS
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Record:
    """One source image, not yet loaded."""

    split: str
    id: str
    label: int
    image_path: Path
    mask_path: Path | None = None
    boxes: tuple[Box, ...] | None = None
    #: Pascal VOC XML with the boxes (ImageNet), read when the record is loaded.
    boxes_path: Path | None = None


@dataclass
class Sample:
    """One loaded image with its foreground: uint8 RGB (H, W, 3), inclusive box, bool mask (H, W)
    (None for a source without foregrounds, such as IN-9L)."""

    split: str
    id: str
    label: int
    image: np.ndarray
    box: Box | None
    mask: np.ndarray | None


images_in = layout.images_in


def _check_foreground(mask: np.ndarray, path: Path) -> None:
    if not mask.any():
        raise ValueError(f"{path}: mask is empty (no foreground pixel)")
    if mask.all():
        raise ValueError(f"{path}: mask covers the whole image (no background left)")


def _check_box(box: Sequence[int], shape: tuple[int, ...], path: Path) -> Box:
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = shape[:2]
    if not (0 <= x0 <= x1 < w and 0 <= y0 <= y1 < h):
        raise ValueError(f"{path}: box {(x0, y0, x1, y1)} lies outside the {w}x{h} image")
    return x0, y0, x1, y1


def _check_unique(records: list[Record]) -> list[Record]:
    """An image is its class and file stem: two files of one class folder with one stem are an error."""
    seen: dict[tuple[int, str], Path] = {}
    for r in records:
        if (r.label, r.id) in seen:
            raise ValueError(f"{r.image_path}: duplicate id {r.id!r} in its class folder (also "
                             f"{seen[r.label, r.id]}); file names must differ within a class")
        seen[r.label, r.id] = r.image_path
    return records


def class_dirs(split_dir: Path, classes: Sequence[str], allow_missing: bool = False) -> list[tuple[int, Path]]:
    """(label, folder) of the class folders of one split, checked against the expected class list."""
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: split folder not found")
    present = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [name for name in present if name not in classes]
    if unknown:
        raise ValueError(f"{split_dir / unknown[0]}: unknown class folder (expected one of {', '.join(classes)})")
    missing = [name for name in classes if name not in present]
    if missing and not allow_missing:
        raise FileNotFoundError(f"{split_dir / missing[0]}: missing class folder")
    return [(classes.index(name), split_dir / name) for name in classes if name in present]


class Source:
    """Base class: a named collection of labelled images with foregrounds."""

    name = "source"
    #: Class folder names, in label order (IN-9's for the sources that are IN-9 by nature).
    classes: tuple[str, ...] = ()
    #: Photographs (output JPEG by default) or lossless renderings (PNG).
    photo = True
    #: Whether its samples have a foreground (box and mask); IN-9L's do not (Original only).
    foregrounds = True

    def splits(self) -> list[str]:
        """Splits this source has."""
        raise NotImplementedError

    def describe(self) -> dict:
        """What an output built from this source depends on: its kind, folders (absolute) and settings."""
        out: dict = {"kind": self.name}
        for key in ("root", "boxes_root", "boxes_file", "masks", "fg_masks", "variant", "resize", "crop",
                    "val_fraction", "split_seed",
                    "missing_masks"):
            value = getattr(self, key, None)
            if value is not None:
                out[key] = str(Path(value).resolve()) if isinstance(value, Path) else value
        return out

    def inputs(self) -> dict[str, Path]:
        """The folders and files this source reads, by option (what no output may overlap)."""
        options = {"root": "--in", "boxes_root": "--boxes", "boxes_file": "--boxes", "masks": "--masks"}
        return {option: Path(getattr(self, key)) for key, option in options.items()
                if getattr(self, key, None) is not None}

    def records(self, split: str) -> list[Record]:
        """Every image of a split, in a fixed order."""
        raise NotImplementedError

    def class_folder(self, split: str, label: int) -> Path:
        """Where the images of a class and split are (for messages): the source's folder unless it says more."""
        return Path(getattr(self, "root", ".")) / split / self.classes[label]

    def skipped(self) -> list[dict]:
        """What among the source's files is not an image it reads, each as a rejection (split, id, label, path,
        reason, detail): nothing a user put among the photos is left out without a word."""
        return []

    def load(self, record: Record) -> Sample:
        """Pixels, box and mask of one record (ValueError naming the file on bad input)."""
        image = read_image(record.image_path)
        mask = read_mask(record.mask_path, image.shape[:2])
        _check_foreground(mask, record.mask_path)
        box = _check_box(record.boxes[0], image.shape, record.image_path) if record.boxes else mask_box(mask)
        return Sample(record.split, record.id, record.label, image, box, mask)


class SyntheticSource(Source):
    """The embedded synthetic IN-9 written by `bgrepro synth`.

    `fg_masks="exact"` uses the generator's exact masks; `"grabcut"` derives them from the boxes
    with GrabCut (5 iterations, >= 10% of the box), as the paper had to for IN-9.
    """

    name = "synthetic"
    classes = CLASS_FOLDERS
    photo = False

    def __init__(self, root: Path, fg_masks: str = "exact") -> None:
        if fg_masks not in ("exact", "grabcut"):
            raise ValueError(f"fg_masks must be exact or grabcut, got {fg_masks!r}")
        self.root = Path(root)
        self.fg_masks = fg_masks
        self._rows = read_annotations(self.root)

    def load(self, record: Record) -> Sample:
        sample = super().load(record)
        if self.fg_masks == "grabcut":
            sample.mask = composite.grabcut_mask(sample.image, sample.box)
            box_pixels = (sample.box[2] - sample.box[0] + 1) * (sample.box[3] - sample.box[1] + 1)
            if sample.mask.sum() < 0.1 * box_pixels:
                raise composite.Rejected("grabcut_too_small", f"GrabCut kept {sample.mask.sum() / box_pixels:.0%}"
                                         " of the box (min 10%)")
        return sample

    def splits(self) -> list[str]:
        return [s for s in SPLITS if any(r["split"] == s for r in self._rows)]

    def records(self, split: str) -> list[Record]:
        out = []
        for r in self._rows:
            if r["split"] != split:
                continue
            folder = CLASS_FOLDERS[r["class_index"]]
            image = layout.image_file(self.root, ORIGINAL, split, f"{folder}/{r['id']}")
            mask = layout.mask_path(self.root, split, folder, r["id"])
            box = (r["xmin"], r["ymin"], r["xmax"], r["ymax"])
            out.append(Record(split, r["id"], r["class_index"], image, mask, (box,)))
        return _check_unique(out)


class IN9Source(Source):
    """The official IN-9 layout: `<root>/<variant>/<split>/<class>/<image>` plus `fg_mask/`.

    The box of an image is the tight box of its foreground mask (the release ships no boxes).
    """

    name = "in9"
    classes = CLASS_FOLDERS

    def __init__(self, root: Path, variant: str = ORIGINAL) -> None:
        self.root = Path(root)
        self.variant = variant
        if not layout.variant_dir(self.root, variant).is_dir():
            raise FileNotFoundError(f"{layout.variant_dir(self.root, variant)}: no '{variant}' folder "
                                    f"(is {root} an IN-9 release?)")

    def splits(self) -> list[str]:
        return [s for s in SPLITS if layout.split_dir(self.root, self.variant, s).is_dir()]

    def class_folder(self, split: str, label: int) -> Path:
        return layout.split_dir(self.root, self.variant, split) / self.classes[label]

    def records(self, split: str) -> list[Record]:
        out = []
        for label, folder in class_dirs(layout.split_dir(self.root, self.variant, split), self.classes):
            for path in images_in(folder):
                mask = layout.mask_path(self.root, split, folder.name, path.stem)
                out.append(Record(split, path.stem, label, path, mask))
        return _check_unique(out)

    def load(self, record: Record) -> Sample:
        if not record.mask_path.exists():
            raise FileNotFoundError(f"{record.mask_path}: no foreground mask for {record.image_path}")
        return super().load(record)


def parse_voc_boxes(path: Path, image_shape: tuple[int, ...] | None = None) -> tuple[Box, ...]:
    """Bounding boxes of a Pascal VOC XML (as ImageNet ships them), rescaled to the image if needed."""
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as err:
        raise ValueError(f"{path}: unreadable bounding-box XML ({err})") from None
    root = tree.getroot()
    sx = sy = 1.0
    size = root.find("size")
    if image_shape is not None and size is not None:
        w, h = float(size.findtext("width", "0")), float(size.findtext("height", "0"))
        if w > 0 and h > 0:
            sx, sy = image_shape[1] / w, image_shape[0] / h
    boxes = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        try:
            x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise ValueError(f"{path}: malformed <bndbox>") from None
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            raise ValueError(f"{path}: <bndbox> coordinates must be finite numbers")
        boxes.append((int(round(x0 * sx)), int(round(y0 * sy)), int(round(x1 * sx)), int(round(y1 * sy))))
    return tuple(boxes)


#: The side at which GrabCut and the paper's filters run (the paper's crop), whatever the output size.
WORKING_SIDE = 224


def _shrink(image: np.ndarray, box: Box, mask: np.ndarray, side: int) -> tuple[np.ndarray, Box, np.ndarray]:
    """A square working-size sample brought down to side x side: the image by area averaging, the mask
    by the majority of the pixels it covers, the inclusive box scaled outward (never empty)."""
    import cv2

    scale = side / image.shape[0]
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA) >= 0.5
    x0, y0, x1, y1 = box
    small_box = (int(np.floor(x0 * scale)), int(np.floor(y0 * scale)),
                 min(side - 1, max(int(np.ceil((x1 + 1) * scale)) - 1, int(np.floor(x0 * scale)))),
                 min(side - 1, max(int(np.ceil((y1 + 1) * scale)) - 1, int(np.floor(y0 * scale)))))
    if not small_mask.any():  # a sliver of a foreground: keep its most covered pixel
        small_mask.flat[int(np.argmax(cv2.resize(mask.astype(np.float32), (side, side),
                                                 interpolation=cv2.INTER_AREA)))] = True
    return small, small_box, small_mask


#: The paper's filters for photos with boxes: the box covers at most 90% of the crop, at least half of
#: the box lies in the crop, GrabCut keeps at least 10% of the box.
PAPER_FILTERS = {"max_box_fraction": 0.9, "min_inside_fraction": 0.5, "min_foreground_fraction": 0.1}


class _PhotoSource(Source):
    """Photos with boxes (GrabCut) or masks, brought to one size as the paper does (256 -> 224).
    `filters` (the paper's by default) are the thresholds of `composite.extract_foreground`."""

    resize = 256
    crop = 224
    filters = PAPER_FILTERS

    def set_filters(self, **changes: float | None) -> None:
        """Override some of the paper's thresholds (None keeps the paper's); each must be in [0, 1]."""
        filters = dict(PAPER_FILTERS)
        for key, value in changes.items():
            if key not in PAPER_FILTERS:
                raise ValueError(f"unknown filter {key!r}; choose from {', '.join(PAPER_FILTERS)}")
            if value is not None:
                if not (math.isfinite(value) and 0 <= value <= 1):
                    raise ValueError(f"--{key.replace('_', '-')} must be in [0, 1], got {value}")
                filters[key] = float(value)
        self.filters = filters

    def describe(self) -> dict:
        out = super().describe()
        if self.filters != PAPER_FILTERS:
            out["filters"] = dict(self.filters)
        return out

    def _prepare(self, record: Record, image: np.ndarray, boxes: tuple[Box, ...] | None,
                 mask: np.ndarray | None) -> Sample:
        if mask is not None:
            _check_foreground(mask, record.mask_path)
            cropped, _ = composite.resize_center_crop(image, [], self.resize, self.crop)
            m8, _ = composite.resize_center_crop(mask.astype(np.uint8) * 255, [], self.resize, self.crop)
            crop_mask = m8 > 127
            if not crop_mask.any():
                raise composite.Rejected("box_outside_crop", f"{record.mask_path}: foreground outside the center crop")
            box = mask_box(crop_mask)
            if covers_image(box, crop_mask.shape):
                raise composite.Rejected("box_too_large", f"{record.mask_path}: the foreground's box is the whole "
                                         "crop (no background strip for Only-BG-T)")
            return Sample(record.split, record.id, record.label, cropped, box, crop_mask)
        for box in boxes:
            _check_box(box, image.shape, record.image_path)
        # GrabCut and the paper's filters run at a working resolution of at least 224 px whatever the output
        # size (at 64 px GrabCut kept nothing of many boxes); image, box and mask are then brought down
        factor = -(-WORKING_SIDE // self.crop)  # the output's crop window at a whole multiple of its resolution
        cropped, box, mask = composite.extract_foreground(image, list(boxes), resize=self.resize, crop=self.crop,
                                                          factor=factor, **self.filters)
        if factor > 1:
            cropped, box, mask = _shrink(cropped, box, mask, self.crop)
        return Sample(record.split, record.id, record.label, cropped, box, mask)


class ImageNetSource(_PhotoSource):
    """ImageNet in its own layout, built the paper's way (resize 256, crop 224, GrabCut in the boxes).

    A split folder holds wnid class folders (any subset: the 370 wnids under an IN-9 synset are
    mapped to IN-9 by WordNet ancestry, the rest skipped) or IN-9 class folders, or, as ImageNet's
    val folder ships, the images themselves: their class then comes from `LOC_val_solution.csv`
    (ImageId, PredictionString "wnid xmin ymin xmax ymax ...", with the boxes) found in the root, one of
    its three parents (Kaggle's layout) or the box folder, or from the object names of each image's VOC
    XML. Box XMLs are looked up as `<boxes>/<class>/<stem>.xml`, `<boxes>/<split>/<class>/<stem>.xml`,
    `<boxes>/<split>/<stem>.xml` or `<boxes>/<stem>.xml` (ILSVRC's `Annotations/CLS-LOC` tree is such a
    folder).

    `in9l=True` builds IN-9L: every image of the 370 classes, no box needed, Original only.
    """

    name = "imagenet"
    classes = CLASS_FOLDERS
    SOLUTION = "LOC_val_solution.csv"

    def __init__(self, root: Path, boxes: Path | None = None, in9l: bool = False) -> None:
        self.root = Path(root)
        self.boxes_root = Path(boxes) if boxes is not None else None
        self.in9l = in9l
        self.foregrounds = not in9l
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: ImageNet folder not found")
        if self.boxes_root is None and not in9l:
            raise ValueError("an ImageNet source needs `boxes` DIR (the bounding-box XML folder), or `in9l`")
        if self.boxes_root is not None and not self.boxes_root.is_dir():
            raise FileNotFoundError(f"{self.boxes_root}: bounding-box folder not found")

    def describe(self) -> dict:
        return {**super().describe(), IN9L: self.in9l}

    def splits(self) -> list[str]:
        return [s for s in SPLITS if (self.root / s).is_dir()]

    def _class_map(self, split_dir: Path) -> list[tuple[int, Path]]:
        dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        names = [p.name for p in dirs]
        if names and all(n in CLASS_FOLDERS for n in names):
            return class_dirs(split_dir, CLASS_FOLDERS)
        odd = next((n for n in names if not re.fullmatch(r"n\d{8}", n)), None)
        if odd is not None:
            raise ValueError(f"{split_dir / odd}: unknown class folder; expected ImageNet wnid folders "
                             "(n01440764, ...) or IN-9 class folders")
        return [(WNID_TO_IN9[d.name], d) for d in dirs if d.name in WNID_TO_IN9]

    def _xml(self, split: str, folder: str, stem: str) -> Path | None:
        if self.boxes_root is None:
            return None
        for cand in (self.boxes_root / folder / f"{stem}.xml", self.boxes_root / split / folder / f"{stem}.xml",
                     self.boxes_root / split / f"{stem}.xml", self.boxes_root / f"{stem}.xml"):
            if cand.exists():
                return cand
        return None

    def _solution(self) -> dict[str, tuple[str, tuple[Box, ...]]]:
        """ImageId -> (wnid, boxes) from LOC_val_solution.csv, or {} when there is none."""
        # the Kaggle layout keeps it beside ILSVRC/, three levels above Data/CLS-LOC/
        for folder in (self.root, *list(self.root.resolve().parents)[:3], self.boxes_root):
            path = folder / self.SOLUTION if folder is not None else None
            if path is not None and path.is_file():
                break
        else:
            return {}
        out = {}
        with open(path, newline="") as f:
            for n, row in enumerate(csv.DictReader(f), start=2):
                try:
                    parts = row["PredictionString"].split()
                    wnids = parts[0::5]
                    coords = [float(v) for v in parts[1:] if not re.fullmatch(r"n\d{8}", v)]
                    boxes = tuple(tuple(int(round(c)) for c in coords[k:k + 4]) for k in range(0, len(coords), 4))
                    if not wnids or len(coords) != 4 * len(wnids) or not all(map(math.isfinite, coords)):
                        raise ValueError
                except (KeyError, AttributeError, ValueError):
                    raise ValueError(f"{path}: line {n} is not 'ImageId,wnid xmin ymin xmax ymax ...'") from None
                out[row["ImageId"]] = (wnids[0], boxes)
        return out

    def _flat_records(self, split: str, files: list[Path]) -> list[Record]:
        """A split folder of images with no class folders (ImageNet's val): classes from the solution CSV
        or from the object names of the XMLs."""
        solution = self._solution()
        out = []
        for path in files:
            boxes = None
            if path.stem in solution:
                wnid, boxes = solution[path.stem]
                xml = None
            else:
                xml = self._xml(split, "", path.stem)
                if xml is None:
                    raise ValueError(f"{path}: no class for this image (no row in {self.SOLUTION} and no box XML "
                                     "with an object name)")
                wnid = _voc_object_name(xml)
            if wnid in WNID_TO_IN9:
                out.append(Record(split, path.stem, WNID_TO_IN9[wnid], path,
                                  boxes=None if self.in9l else boxes, boxes_path=None if self.in9l else xml))
        return out

    def records(self, split: str) -> list[Record]:
        split_dir = self.root / split
        listing = layout.scan(split_dir)
        if listing.images:
            out = self._flat_records(split, listing.strict())
        else:
            Scan([], layout.beside_classes(split_dir)).strict()  # nothing beside the class folders
            out = [Record(split, path.stem, label, path,
                          boxes_path=None if self.in9l else self._xml(split, folder.name, path.stem))
                   for label, folder in self._class_map(split_dir) for path in images_in(folder)]
        if out and not self.in9l and not any(r.boxes_path or r.boxes for r in out):
            raise FileNotFoundError(f"{self.boxes_root}: no bounding-box XML for any of the {len(out)} images of "
                                    f"split {split!r} (looked for <class>/<stem>.xml, <split>/<class>/<stem>.xml, "
                                    f"<split>/<stem>.xml and <stem>.xml, and {self.SOLUTION})")
        return _check_unique(out)

    def load(self, record: Record) -> Sample:
        image = read_image(record.image_path)
        if self.in9l:
            cropped, _ = composite.resize_center_crop(image, [], self.resize, self.crop)
            return Sample(record.split, record.id, record.label, cropped, None, None)
        boxes = record.boxes or (parse_voc_boxes(record.boxes_path, image.shape) if record.boxes_path else ())
        return self._prepare(record, image, boxes, None)


def _voc_object_name(path: Path) -> str:
    """The first object's name (a wnid in ImageNet's XMLs) of a Pascal VOC file."""
    try:
        name = ET.parse(path).getroot().findtext("object/name")
    except (ET.ParseError, OSError) as err:
        raise ValueError(f"{path}: unreadable bounding-box XML ({err})") from None
    if not name:
        raise ValueError(f"{path}: no <object><name> to take the image's class from")
    return name.strip()


def read_box_csv(path: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """A CSV of boxes, one row a box: the image's path relative to its folder (column `path`, or `file` as ImageNet's
    box tables name it) and `xmin, ymin, xmax, ymax` in its pixels; {relative path: its boxes}. One error naming the
    file, and the line, for anything else."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: box CSV not found")
    table: dict[str, list[tuple[float, float, float, float]]] = {}
    columns, rows = read_table(path)
    key = "path" if "path" in columns or "file" not in columns else "file"
    need = {key, "xmin", "ymin", "xmax", "ymax"}
    if not need <= set(columns):
        missing = ", ".join(sorted(need - set(columns)))
        raise ValueError(f"{path}: box CSV needs columns {', '.join(sorted(need))} (missing: {missing}; found: "
                         f"{', '.join(columns[:8]) or 'none'})")
    for line, row in enumerate(rows, start=2):
        if any(row.get(k) in (None, "") for k in need):
            missing = next(k for k in (key, "xmin", "ymin", "xmax", "ymax") if row.get(k) in (None, ""))
            raise ValueError(f"{path}:{line}: the row has no {missing}")
        try:
            values = [float(row[k].strip().replace(",", ".")) for k in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            raise ValueError(f"{path}:{line}: box coordinates must be numbers") from None
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{path}:{line}: box coordinates must be finite numbers")
        x0, y0, x1, y1 = (int(v) for v in values)
        if x0 < 0 or y0 < 0 or x1 < x0 or y1 < y0:
            raise ValueError(f"{path}:{line}: box {(x0, y0, x1, y1)} is not xmin <= xmax, ymin <= ymax, >= 0")
        table.setdefault(Path(row[key]).as_posix(), []).append(tuple(values))
    return table


class FolderSource(_PhotoSource):
    """Any collection: `<root>[/<split>]/<class>/<image>` with masks or boxes.

    Masks: a mirror tree `<masks>[/<split>]/<class>/<stem>.png|.npy` (non-zero = foreground); an
    image without a mask is an error, or a `no_mask` rejection with `missing_masks="reject"` (for
    automatic masks such as `bgrepro localize --write-masks`, which writes none where it finds no object).
    Boxes: a CSV with columns `path, xmin, ymin, xmax, ymax` (path relative to root; an image with
    several rows has several boxes and is rejected as IN-9 does). Classes are the sorted class folder
    names. `train/` and `val/` are splits when they hold class folders (a class folder named `train`,
    holding images, stays a class); without them everything is the `val` (test) split, or, with
    `val_fraction`, a seeded split stratified by class: that share of each class is `val`, the rest
    `train`, with at least two images a side for a class of four or more (Mixed-Same pairs two images of
    a class), one for a class of two or three.
    """

    name = "folder"

    def __init__(self, root: Path, masks: Path | None = None, boxes: Path | None = None,
                 size: int = 224, resize: int | None = None, missing_masks: str = "error",
                 val_fraction: float | None = None, split_seed: int = 0) -> None:
        self.root = Path(root)
        if val_fraction is not None and not (math.isfinite(val_fraction) and 0 < val_fraction < 1):
            raise ValueError(f"`val_fraction` must be between 0 and 1, got {val_fraction}")
        self.val_fraction, self.split_seed = val_fraction, split_seed
        if missing_masks not in ("error", "reject"):
            raise ValueError(f"missing_masks must be error or reject, got {missing_masks!r}")
        self.missing_masks = missing_masks
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: image folder not found")
        if (masks is None) == (boxes is None):
            raise ValueError("a folder source needs exactly one of `masks` (a mask folder) or `boxes` (a CSV)")
        self.masks = Path(masks) if masks else None
        self.crop = size
        self.resize = resize or round(size * 256 / 224)
        self.boxes_file = Path(boxes) if boxes else None
        self.box_table = ({rel: [tuple(int(v) for v in box) for box in found]
                          for rel, found in read_box_csv(self.boxes_file).items()} if boxes else None)
        split_dirs = self._split_dirs()
        names = sorted({p.name for d in split_dirs.values() for p in d.iterdir()
                        if p.is_dir() and not p.name.startswith(".")})
        if not names:
            raise FileNotFoundError(f"{self.root}: no class folders")
        self.classes = tuple(names)
        if val_fraction is not None and split_dirs != {"val": self.root}:
            raise ValueError(f"{self.root}: has train/ or val/ split folders already; `val_fraction` is for "
                             "a folder of class folders only")
        self._assigned = self._stratified_split() if val_fraction is not None else None

    def _split_dirs(self) -> dict[str, Path]:
        def is_split(folder: Path) -> bool:  # holds class folders, not images: a class named `train` stays one
            return folder.is_dir() and not layout.scan(folder).images and any(p.is_dir() and not p.name.startswith(".")
                                                                     for p in folder.iterdir())

        nested = {s: self.root / s for s in SPLITS if is_split(self.root / s)}
        return nested or {"val": self.root}

    def _stratified_split(self) -> dict[Path, str]:
        """Each image's split: per class, a seeded shuffle of its sorted files, the first share `val`."""
        assigned = {}
        for _, folder in class_dirs(self.root, self.classes):
            files = layout.scan(folder).images  # the rest is named by `skipped`
            random.Random(f"{self.split_seed}/{folder.name}").shuffle(files)
            # at least two a side where the class has four (Mixed-Same pairs images of one class), else one
            least = 2 if len(files) >= 4 else 1 if len(files) >= 2 else 0
            n_val = min(max(round(len(files) * self.val_fraction), least), len(files) - least) if files else 0
            assigned.update({p: "val" if k < n_val else "train" for k, p in enumerate(files)})
        return assigned

    def splits(self) -> list[str]:
        if self._assigned is not None:
            return [s for s in SPLITS if s in set(self._assigned.values())]
        return list(self._split_dirs())

    def records(self, split: str) -> list[Record]:
        split_dir = self.root if self._assigned is not None else self._split_dirs()[split]
        nested = split_dir != self.root
        out = []
        for label, folder in class_dirs(split_dir, self.classes):
            for path in layout.scan(folder).images:  # the rest is named by `skipped`
                if self._assigned is not None and self._assigned[path] != split:
                    continue
                rel = path.relative_to(self.root)
                if self.masks is not None:
                    base = self.masks / (Path(split) if nested else Path()) / folder.name
                    found = [base / f"{path.stem}{ext}" for ext in (".png", ".npy")]
                    mask = next((m for m in found if m.exists()), found[0])
                    out.append(Record(split, path.stem, label, path, mask_path=mask))
                else:
                    boxes = self.box_table.get(rel.as_posix())
                    if boxes is None:
                        raise ValueError(f"{path}: no row for {rel.as_posix()} in the box CSV")
                    out.append(Record(split, path.stem, label, path, boxes=tuple(boxes)))
        return _check_unique(out)

    def class_folder(self, split: str, label: int) -> Path:
        base = self.root if self._assigned is not None else self._split_dirs().get(split, self.root / split)
        return base / self.classes[label]

    def skipped(self) -> list[dict]:
        nested = self._assigned is None and self._split_dirs() != {"val": self.root}
        out = []
        for split, split_dir in (self._split_dirs().items() if nested else [("", self.root)]):
            out += [_unused(split, "", u.path, u.reason, u.detail) for u in layout.beside_classes(split_dir)]
            for label, folder in class_dirs(split_dir, self.classes, allow_missing=True):
                out += [_unused(split, label, u.path, u.reason, u.detail) for u in layout.scan(folder).unread]
        if nested:  # beside train/ and val/
            out += [_unused("", "", path, "not_in_a_class", layout.UNUSED_REASONS["not_in_a_class"])
                    for path in sorted(self.root.iterdir())
                    if not path.name.startswith(".") and path not in self._split_dirs().values()]
        return out

    def load(self, record: Record) -> Sample:
        image = read_image(record.image_path)
        if record.mask_path is not None:
            if self.missing_masks == "reject" and not record.mask_path.exists():
                raise composite.Rejected("no_mask", f"{record.mask_path}: no mask (e.g. RPS found no object)")
            return self._prepare(record, image, None, read_mask(record.mask_path, image.shape[:2]))
        return self._prepare(record, image, record.boxes, None)


def _unused(split: str, label, path: Path, reason: str, detail: str) -> dict:
    """A file that is not read, as a rejection record (the form `build` writes into rejections.csv)."""
    return {"status": "rejected", "split": split, "id": path.stem, "label": label, "path": str(path),
            "reason": reason, "detail": f"{path}: {detail}"}


@dataclass(frozen=True)
class SourceOptions:
    """What `open_source` opens a source with, beside its kind and folder (each for the kinds that take it)."""

    #: imagenet: the folder of Pascal VOC box XMLs; folder: a CSV of boxes (or `masks`, a mirror tree of masks).
    boxes: Path | None = None
    masks: Path | None = None
    #: folder: the output side; what an image without a mask is ("error", or "reject": left out as no_mask).
    size: int = 224
    missing_masks: str = "error"
    #: folder without train/ and val/: this share of each class is the test split, seeded by `split_seed`.
    val_fraction: float | None = None
    split_seed: int = 0
    #: synthetic: the generator's exact masks, or GrabCut's from the boxes ("grabcut").
    fg_masks: str = "exact"
    #: imagenet: IN-9L (every image of the 370 classes, no box needed, Original only).
    in9l: bool = False
    #: imagenet and folder: thresholds of the paper's filters (None keeps the paper's).
    filters: dict[str, float | None] | None = None


def open_source(kind: str, path: Path, **options) -> Source:
    """A source by its kind (synthetic, in9, imagenet or folder) and folder, with `SourceOptions`."""
    opts = SourceOptions(**options)
    changed = {k: v for k, v in (opts.filters or {}).items() if v is not None}
    if changed and kind not in ("imagenet", "folder"):
        raise ValueError(f"`{next(iter(changed))}` goes with an imagenet or folder source")
    if opts.in9l and kind != "imagenet":
        raise ValueError("`in9l` goes with an imagenet source")
    if opts.val_fraction is not None and kind != "folder":
        raise ValueError("`val_fraction` goes with a folder source")
    if kind == "synthetic":
        return SyntheticSource(path, fg_masks=opts.fg_masks)
    if kind == "in9":
        return IN9Source(path)
    if kind == "imagenet":
        source = ImageNetSource(path, opts.boxes, in9l=opts.in9l)
        source.set_filters(**changed)
        return source
    if kind == "folder":
        source = FolderSource(path, masks=opts.masks, boxes=opts.boxes, size=opts.size,
                              missing_masks=opts.missing_masks, val_fraction=opts.val_fraction,
                              split_seed=opts.split_seed)
        source.set_filters(**changed)
        return source
    raise ValueError(f"unknown source {kind!r}; choose synthetic, in9, imagenet or folder")
